"""Training's compute half of a run: metrics, the fingerprint forest, the pipeline
(ensembles, conformal interval, resume, cancellation) and the model bundle.

No Django: these call training/compute directly, on small cuts of ESOL and Tox21
(tests/fixtures/training_pipeline/SOURCES.md)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from training.compute import bundle, metrics
from training.compute.datasets import parse_dataset
from training.compute.families import FitCallbacks, get_family
from training.compute.pipeline import PipelineCallbacks, RunSpec, conformal_widths, train_model
from training.compute.splits import Split, make_split

FIXTURES = Path(__file__).parent / "fixtures" / "training_pipeline"
ESOL_TARGET = "measured log solubility in mols per litre"
TOX_TARGETS = ["NR-AhR", "SR-ARE", "SR-MMP"]
# Small forests without descriptors keep the file fast; one test uses the descriptors.
FAST_RF = {"n_estimators": 20, "descriptors": False}


@pytest.fixture(scope="module")
def esol():
    data = (FIXTURES / "esol_200.csv").read_bytes()
    return parse_dataset(data, "esol_200.csv", "smiles", {ESOL_TARGET: "regression"})


@pytest.fixture(scope="module")
def tox():
    data = (FIXTURES / "tox21_150.csv").read_bytes()
    return parse_dataset(data, "tox21_150.csv", "smiles", dict.fromkeys(TOX_TARGETS, "classification"))


@pytest.fixture(scope="module")
def esol_split(esol):
    return make_split(esol, "random", (0.7, 0.2, 0.1), seed=0)


class Counter:
    """Counts the forests' fits by wrapping the family's fit."""

    def __init__(self, monkeypatch, family: str = "fingerprint_rf"):
        self.calls = 0
        cls = get_family(family)
        original = cls.fit

        def fit(model, *args, **kwargs):
            self.calls += 1
            return original(model, *args, **kwargs)

        monkeypatch.setattr(cls, "fit", fit)


# --- metrics ---------------------------------------------------------------------------------

def test_regression_metrics_mask_missing_labels_and_match_hand_computed_values():
    y = np.array([1.0, 2.0, np.nan, 4.0])
    pred = np.array([1.5, 2.0, 99.0, 3.0])
    m = metrics.regression_metrics(y, pred)
    assert m["n"] == 3
    assert m["rmse"] == pytest.approx(np.sqrt((0.25 + 0 + 1) / 3))
    assert m["mae"] == pytest.approx(0.5)
    assert m["spearman"] == pytest.approx(1.0)
    assert "reasons" not in m


def test_metrics_that_cannot_be_computed_are_none_with_a_reason():
    one_class = metrics.classification_metrics([1, 1, 1, np.nan], [0.9, 0.2, 0.7, 0.1])
    assert one_class["roc_auc"] is None and one_class["pr_auc"] is None and one_class["mcc"] is None
    assert "only class 1" in one_class["reasons"]["roc_auc"]
    assert one_class["accuracy"] == pytest.approx(2 / 3)
    constant = metrics.regression_metrics([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    assert constant["r2"] is None and "all equal" in constant["reasons"]["r2"]
    assert constant["rmse"] == pytest.approx(np.sqrt(2 / 3))
    empty = metrics.regression_metrics([np.nan, np.nan], [1.0, 2.0])
    assert empty["n"] == 0 and empty["rmse"] is None and empty["reasons"]["rmse"] == "no labelled rows"
    with pytest.raises(ValueError, match="0 or 1"):
        metrics.classification_metrics([0, 2], [0.1, 0.9])


def test_score_gives_per_target_metrics_and_the_mean_over_the_targets_that_have_them():
    y = np.array([[0, 1.0], [1, 1.0], [1, np.nan], [0, 1.0]])
    prob = np.array([[0.1, 0.8], [0.9, 0.7], [0.6, 0.5], [0.4, 0.3]])
    result = metrics.score(y, prob, ["classification"] * 2, ["a", "b"])
    assert result["per_target"]["a"]["roc_auc"] == pytest.approx(1.0)
    assert result["per_target"]["b"]["roc_auc"] is None          # one class among b's labels
    assert result["mean"]["roc_auc"] == pytest.approx(1.0)
    assert result["mean"]["n_targets"]["roc_auc"] == 1
    assert result["mean"]["accuracy"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert metrics.higher_is_better("roc_auc") and not metrics.higher_is_better(metrics.PRIMARY["regression"])
    assert not metrics.higher_is_better("loss")
    with pytest.raises(KeyError):
        metrics.higher_is_better("f1")


# --- the fingerprint forest -------------------------------------------------------------------

def test_forest_names_its_features_and_refuses_a_file_with_an_untrusted_type(esol, tmp_path):
    import skops.io

    cls = get_family("fingerprint_rf")
    assert cls.uses_epochs is False
    model = cls({"n_estimators": 10, "max_features": "sqrt"}, esol.tasks, seed=2)
    model.fit(esol.smiles[:100], esol.y[:100], [], np.zeros((0, 1)), FitCallbacks())
    names = [item["feature"] for item in model.feature_importances()]
    assert "MolLogP" in names[:5]     # logP drives solubility
    assert any(n.startswith("Morgan count bit ") and n.endswith("(radius ≤ 2)") for n in names)
    model.save(tmp_path / "forest")
    again = cls.load(tmp_path / "forest")
    np.testing.assert_array_equal(again.predict(esol.smiles[100:120]), model.predict(esol.smiles[100:120]))

    skops.io.dump({"payload": Untrusted()}, tmp_path / "forest" / "forest_0.skops")
    with pytest.raises(ValueError, match="not trusted.*Untrusted"):
        cls.load(tmp_path / "forest")


class Untrusted:
    pass


def test_forest_trains_one_forest_per_target_skipping_missing_labels(tox, monkeypatch):
    cls = get_family("fingerprint_rf")
    model = cls(FAST_RF, tox.tasks, seed=0)
    seen = []
    make_forest = cls._forest

    def recording_forest(self, task):
        forest = make_forest(self, task)
        fit = forest.fit
        forest.fit = lambda x, y: (seen.append((len(x), sorted(set(y.tolist())))), fit(x, y))[1]
        return forest

    monkeypatch.setattr(cls, "_forest", recording_forest)
    model.fit(tox.smiles[:120], tox.y[:120], [], np.zeros((0, 3)), FitCallbacks())
    labelled = (~np.isnan(tox.y[:120])).sum(axis=0).tolist()
    assert min(labelled) < 120                     # the fixture has missing labels in every target
    assert seen == [(n, [0, 1]) for n in labelled]
    assert len(model.forests) == 3
    assert [f.n_features_in_ for f in model.forests] == [2048] * 3
    prob = model.predict(tox.smiles[120:])
    assert prob.shape == (len(tox) - 120, 3) and ((prob >= 0) & (prob <= 1)).all()
    with pytest.raises(ValueError, match="fp_size must be between"):
        cls({"fp_size": 10}, tox.tasks)


def test_the_forest_takes_its_worker_count_from_the_environment(monkeypatch):
    from training.compute.families import fingerprint_rf

    cls = get_family("fingerprint_rf")
    assert cls(FAST_RF, ["regression"])._forest("regression").n_jobs == 1
    monkeypatch.setenv(fingerprint_rf.N_JOBS_ENV, "2")
    assert cls(FAST_RF, ["regression"])._forest("classification").n_jobs == 2
    monkeypatch.setenv(fingerprint_rf.N_JOBS_ENV, "many")
    with pytest.raises(ValueError, match="BIOFM_TRAINING_N_JOBS must be a whole number"):
        cls(FAST_RF, ["regression"])._forest("regression")


# --- the pipeline and the bundle ----------------------------------------------------------------

def test_an_ensemble_trains_saves_loads_and_predicts_the_same(esol, esol_split, tmp_path):
    phases = []
    spec = RunSpec("fingerprint_rf", FAST_RF, ensemble=3, seed=5, split=esol_split,
                   data={"name": "esol-200", "version": 1})
    model = train_model(esol, spec, PipelineCallbacks(on_phase=phases.append), tmp_path / "work")
    assert phases == ["training member 1/3", "training member 2/3", "training member 3/3", "testing"]
    card = model.card
    assert card["seeds"] == [5, 6, 7] and card["ensemble"] == 3
    assert card["split"]["method"] == "random" and card["split"]["n_test"] == len(esol_split.test)
    assert card["libraries"]["scikit-learn"] and card["libraries"]["rdkit"] and "torch" not in card["libraries"]
    assert card["data"] == {"name": "esol-200", "version": 1}
    test_rmse = model.metrics["per_target"][ESOL_TARGET]["rmse"]
    assert 0.3 < test_rmse < 2.0
    assert model.describe() == (f"Random forest on Morgan counts ×3, random test RMSE "
                                f"{model.metrics['mean']['rmse']:.2f}")

    records = model.split_predictions.records()
    assert len(records) == len(esol)
    assert {r["split"] for r in records} == {"train", "val", "test"}
    assert sum(r["split"] == "test" for r in records) == len(esol_split.test)

    smiles = [esol.smiles[i] for i in esol_split.train[:8]] + ["[Na+].[Cl-]"]
    before = model.predict(smiles)
    assert before.std is not None and (before.std > 0).any()
    assert before.max_similarity[:8] == pytest.approx(1.0) and before.in_domain[:8].all()
    assert before.max_similarity[8] < bundle.AD_THRESHOLD and not before.in_domain[8]
    assert before.interval[0] > 0 and "split-conformal" in before.interval_method

    saved = model.save(tmp_path / "saved")
    assert sorted(p.name for p in saved.iterdir()) == ["members", "model.json", "train_fps.safetensors"]
    assert json.loads((saved / "model.json").read_text())["card"]["seeds"] == [5, 6, 7]
    # Nothing that runs code on load: JSON, skops (loaded with a trusted-type list) and safetensors.
    assert {p.suffix for p in saved.rglob("*") if p.is_file()} == {".json", ".skops", ".safetensors"}
    unpacked = bundle.unpack(bundle.pack(saved), tmp_path / "unpacked")
    after = bundle.load_model(unpacked).predict(smiles)
    np.testing.assert_array_equal(after.mean, before.mean)
    np.testing.assert_array_equal(after.std, before.std)
    np.testing.assert_array_equal(after.max_similarity, before.max_similarity)
    assert after.interval == before.interval
    nothing = model.predict([])
    assert nothing.mean.shape == (0, 1) and nothing.std.shape == (0, 1) and nothing.in_domain.shape == (0,)


def test_conformal_half_width_is_the_stated_quantile_and_covers_new_rows():
    rng = np.random.default_rng(0)
    n = 199
    residual = rng.normal(size=(n, 1))
    out = conformal_widths(residual, np.zeros((n, 1)), ["regression"], 0.1)
    rank = int(np.ceil((n + 1) * 0.9))
    assert out["half_widths"][0] == pytest.approx(np.sort(np.abs(residual[:, 0]))[rank - 1])
    assert out["method"] == "90% split-conformal interval calibrated on the validation set (n=199)"
    fresh = np.abs(rng.normal(size=20000))
    assert 0.87 < (fresh <= out["half_widths"][0]).mean() < 0.95
    few = conformal_widths(np.ones((8, 2)), np.zeros((8, 2)), ["regression", "classification"], 0.1)
    assert few["half_widths"] == [None, None] and "8 labelled validation rows are too few" in few["notes"]["0"]
    assert "at least 9 are needed" in few["notes"]["0"]
    nine = conformal_widths(np.arange(9.0)[:, None], np.zeros((9, 1)), ["regression"], 0.1)
    assert nine["half_widths"] == [8.0]            # rank ceil(10 * 0.9) = 9: the largest residual


def test_a_second_run_on_the_same_workdir_retrains_only_the_unfinished_member(esol, esol_split, tmp_path,
                                                                              monkeypatch):
    fits = Counter(monkeypatch)
    spec = RunSpec("fingerprint_rf", FAST_RF, ensemble=2, seed=0, split=esol_split)

    class WorkerDied(Exception):
        pass

    def die_after_first(member):
        raise WorkerDied(member)

    with pytest.raises(WorkerDied) as stopped:
        train_model(esol, spec, PipelineCallbacks(on_member_done=die_after_first), tmp_path / "work")
    assert fits.calls == 1
    partial = stopped.value.partial_model          # what a cancelled job keeps
    assert partial.cancelled and len(partial.members) == 1 and partial.card["cancelled"]
    assert (tmp_path / "work" / "members" / "0" / "member.json").exists()

    resumed = train_model(esol, spec, PipelineCallbacks(), tmp_path / "work")
    assert fits.calls == 2                         # member 1 only
    assert resumed.card["seeds"] == [0, 1] and not resumed.cancelled
    fresh = train_model(esol, spec, PipelineCallbacks(), tmp_path / "fresh")
    np.testing.assert_array_equal(resumed.predict(esol.smiles[:5]).mean, fresh.predict(esol.smiles[:5]).mean)

    other = RunSpec("fingerprint_rf", FAST_RF, ensemble=2, seed=9, split=esol_split)
    with pytest.raises(ValueError, match="another run"):
        train_model(esol, other, PipelineCallbacks(), tmp_path / "work")


def test_an_error_of_the_training_itself_carries_no_model(tox, tmp_path):
    one_class = tox.subset([i for i in range(len(tox)) if tox.y[i, 2] != 1])
    split = make_split(one_class, "random", (0.8, 0.2, 0.0), seed=0)
    with pytest.raises(ValueError, match="target 3 has one class only") as failed:
        train_model(one_class, RunSpec("fingerprint_rf", FAST_RF, split=split), None, tmp_path)
    assert not hasattr(failed.value, "partial_model")


def test_without_a_test_set_there_are_no_test_metrics_and_the_model_says_so(tox, tmp_path):
    split = make_split(tox, "random", (0.8, 0.2, 0.0), seed=0)
    assert not split.test
    model = train_model(tox, RunSpec("fingerprint_rf", FAST_RF, split=split), None, tmp_path)
    assert model.metrics is None and "no test set" in model.card["metrics_note"]
    assert model.describe() == "Random forest on Morgan counts, no test metric (random split)"
    assert model.predict(tox.smiles[:3]).interval is None       # classification: no interval


def test_multitask_classification_scores_every_target(tox, tmp_path):
    split = make_split(tox, "random", (0.6, 0.2, 0.2), seed=1)
    model = train_model(tox, RunSpec("fingerprint_rf", FAST_RF, split=split), None, tmp_path)
    assert set(model.metrics["per_target"]) == set(TOX_TARGETS)
    # SR-MMP has one class only among its labelled test rows: no ROC-AUC, and out of the mean.
    assert model.metrics["per_target"]["SR-MMP"]["roc_auc"] is None
    assert model.metrics["mean"]["n_targets"] == {"roc_auc": 2, "pr_auc": 2, "accuracy": 3, "mcc": 2}
    assert model.describe() == ("Random forest on Morgan counts, random test ROC-AUC "
                                f"{model.metrics['mean']['roc_auc']:.2f} (mean of 2 of 3 targets)")
    assert model.card["conformal"] == "no conformal interval: no regression target"


def test_a_bad_split_is_refused_with_the_reason(esol, tmp_path):
    bad = Split(train=[0, 1], val=[1], test=[], method="random", sizes=(0.8, 0.2, 0.0), seed=0)
    with pytest.raises(ValueError, match="shares rows"):
        train_model(esol, RunSpec("fingerprint_rf", FAST_RF, split=bad), None, tmp_path)
    outside = Split(train=[0, 10_000], val=[], test=[], method="random", sizes=(1.0, 0.0, 0.0), seed=0)
    with pytest.raises(ValueError, match="row position 10000"):
        train_model(esol, RunSpec("fingerprint_rf", FAST_RF, split=outside), None, tmp_path)


# --- pack / unpack refusals ----------------------------------------------------------------------

def _zip(entries: dict[str, bytes], link: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (0o120777 << 16)
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


@pytest.mark.parametrize("entries, link, message", [
    ({"model.json": b"{}", "../escape.txt": b"x"}, None, "outside the model folder"),
    ({"model.json": b"{}", "/etc/cron.d/x": b"x"}, None, "outside the model folder"),
    ({"model.json": b"{}"}, "members/0/link", "is a link"),
    ({"members/0/config.json": b"{}"}, None, "model.json is missing"),
])
def test_unpack_refuses_an_unsafe_archive(tmp_path, entries, link, message):
    with pytest.raises(ValueError, match=message):
        bundle.unpack(_zip(entries, link), tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def test_a_bundle_of_an_unknown_family_is_refused(tmp_path):
    (tmp_path / "model.json").write_text(json.dumps({"format": bundle.FORMAT, "family": "gpt", "members": 1}))
    with pytest.raises(ValueError, match="unknown model family 'gpt'"):
        bundle.load_model(tmp_path)


def test_unpack_refuses_garbage_and_oversized_archives(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="not a zip"):
        bundle.unpack(b"PK not really", tmp_path / "out")
    monkeypatch.setattr(bundle, "MAX_UNPACKED_BYTES", 1000)
    with pytest.raises(ValueError, match="at most 1000"):
        bundle.unpack(_zip({"model.json": b"{}", "members/0/w": b"0" * 5000}), tmp_path / "out")


# --- a torch family through the same pipeline ----------------------------------------------------

TINY_DMPNN = {"max_epochs": 2, "message_hidden_dim": 100, "ffn_hidden_dim": 100, "batch_size": 16}


@pytest.fixture(scope="module")
def esol_small(esol):
    small = esol.subset(range(60))
    return small, make_split(small, "random", (0.7, 0.2, 0.1), seed=0)


def test_a_dmpnn_ensemble_reports_its_epochs_and_round_trips(esol_small, tmp_path):
    table, split = esol_small
    epochs = []
    spec = RunSpec("dmpnn", TINY_DMPNN, ensemble=2, seed=0, split=split)
    model = train_model(table, spec, PipelineCallbacks(on_epoch=lambda m, r: epochs.append((m, r.epoch))),
                        tmp_path / "work")
    assert epochs == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert [m["epochs"] for m in model.card["members"]] == [2, 2]
    assert model.card["val_metric"] == "rmse"
    assert model.card["val_metric_name"] == "validation RMSE (mean over targets)"
    assert model.describe().startswith("D-MPNN (Chemprop) ×2, random test RMSE ")
    assert {"torch", "chemprop"} <= set(model.card["libraries"]) and model.card["feature_importances"] is None
    before = model.predict(table.smiles[:6])
    assert (before.std > 0).all()
    after = bundle.load_model(bundle.unpack(bundle.pack(model.save(tmp_path / "saved")), tmp_path / "u"))
    np.testing.assert_allclose(after.predict(table.smiles[:6]).mean, before.mean, rtol=1e-6)


def test_a_cancelled_dmpnn_member_keeps_its_best_epoch_and_a_rerun_resumes_it(esol_small, tmp_path):
    table, split = esol_small
    spec = RunSpec("dmpnn", {**TINY_DMPNN, "max_epochs": 3}, ensemble=1, seed=3, split=split)

    class Cancelled(Exception):
        pass

    def cancel_at_epoch_3(member, report):
        if report.epoch == 3:
            raise Cancelled()

    with pytest.raises(Cancelled) as stopped:
        train_model(table, spec, PipelineCallbacks(on_epoch=cancel_at_epoch_3), tmp_path / "work")
    partial = stopped.value.partial_model
    assert partial.cancelled and len(partial.members) == 1 and partial.metrics is not None
    assert (tmp_path / "work" / "members" / "0" / "checkpoint" / "latest.json").exists()

    resumed_epochs = []
    resumed = train_model(table, spec, PipelineCallbacks(on_epoch=lambda m, r: resumed_epochs.append(r.epoch)),
                          tmp_path / "work")
    assert resumed_epochs == [3]                   # epochs 1-2 came from the checkpoint
    member = resumed.card["members"][0]
    assert member["resumed_from"] == 2 and member["epochs"] == 3
    assert member["seconds"] >= sum(r.seconds for r in resumed.members[0].fit_record.history)
    straight = train_model(table, spec, None, tmp_path / "straight")
    np.testing.assert_array_equal(resumed.predict(table.smiles[:6]).mean, straight.predict(table.smiles[:6]).mean)


def test_attentivefp_runs_multitask_classification_with_missing_labels(tox, tmp_path):
    table = tox.subset(range(80))
    split = make_split(table, "random", (0.6, 0.2, 0.2), seed=0)
    hparams = {"max_epochs": 2, "hidden_channels": 32, "batch_size": 32}
    model = train_model(table, RunSpec("attentivefp", hparams, split=split), None, tmp_path / "work")
    assert set(model.metrics["per_target"]) == set(TOX_TARGETS)
    assert {"torch", "torch-geometric"} <= set(model.card["libraries"])
    prob = bundle.load_model(model.save(tmp_path / "saved")).predict(table.smiles[:5])
    assert prob.std is None and prob.interval is None and ((prob.mean >= 0) & (prob.mean <= 1)).all()
    np.testing.assert_allclose(prob.mean, model.predict(table.smiles[:5]).mean, rtol=1e-6)


def test_the_family_names_the_web_process_knows_are_the_registered_ones():
    """Forms and clean_params read FAMILY_NAMES without importing any family
    (a page never imports torch); the registry is the truth."""
    import subprocess
    import sys

    from training.compute.families import FAMILY_NAMES, all_families

    assert sorted(FAMILY_NAMES) == sorted(f.name for f in all_families())
    code = ("import sys; from training.compute.families import FAMILY_NAMES\n"
            "from training.compute.families import fingerprint_rf, dmpnn, attentivefp\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'chemprop', 'torch_geometric', 'sklearn'))\n"
            "print(heavy); sys.exit(1 if heavy else 0)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, f"a family module imports a heavy library at import time: {done.stdout}{done.stderr[-1000:]}"


def test_the_forest_s_label_says_which_features_it_used():
    from training.compute.families import get_family

    forest = get_family("fingerprint_rf")
    assert forest({"descriptors": True}, ["regression"]).display_label() == "Random forest on Morgan counts + RDKit 2D"
    bare = forest({"descriptors": False}, ["regression"])
    assert bare.display_label() == "Random forest on Morgan counts" and "descriptor" not in bare.display_method()
