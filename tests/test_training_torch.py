"""The torch families (D-MPNN on chemprop, AttentiveFP on PyG) and their epoch loop:
training on regression and multi-task classification with missing labels, save/load,
early stopping and best weights, cancellation, checkpoints that resume exactly and hold
nothing but safetensors and JSON. CPU, tiny molecules, a few epochs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from training.compute.families import FitCallbacks, get_family
from training.compute.loop import FitResult, NoamSchedule, fit_torch

# 48 small molecules: a carbon chain of 1-8 atoms with one of six end groups.
GROUPS = ["", "O", "N", "C(=O)O", "Cl", "c1ccccc1"]
SMILES = [("C" * n) + g for g in GROUPS for n in range(1, 9)]
HEAVY_ATOMS = np.array([[n + {"": 0, "O": 1, "N": 1, "C(=O)O": 3, "Cl": 1, "c1ccccc1": 6}[g]]
                        for g in GROUPS for n in range(1, 9)], dtype=float)

TINY = {
    "dmpnn": {"message_hidden_dim": 100, "ffn_hidden_dim": 100, "batch_size": 8, "warmup_epochs": 0,
              "max_lr": 3e-3, "final_lr": 1e-3},
    "attentivefp": {"hidden_channels": 32, "batch_size": 8, "lr": 3e-3},
}
FAMILIES = sorted(TINY)


def split(y):
    order = np.random.default_rng(0).permutation(len(SMILES))
    train, val = order[:36], order[36:]
    return ([SMILES[i] for i in train], y[train], [SMILES[i] for i in val], y[val])


def classification_labels():
    """Two tasks (aromatic ring; contains oxygen) with every third label of the second missing."""
    y = np.array([[float("c1" in s), float("O" in s)] for s in SMILES])
    y[::3, 1] = np.nan
    return y


def train(name, tasks, y, epochs=3, seed=0, callbacks=None, **extra):
    family = get_family(name)({**TINY[name], "max_epochs": epochs, **extra}, tasks, seed=seed)
    family.fit(*split(y), callbacks or FitCallbacks())
    return family


@pytest.mark.parametrize("name", FAMILIES)
def test_regression_learns_an_easy_target(name):
    family = train(name, ["regression"], HEAVY_ATOMS, epochs=4)
    history = family.fit_record.history
    assert [r.epoch for r in history] == [1, 2, 3, 4]
    assert history[-1].train_loss < history[0].train_loss
    assert family.val_metric == "rmse" and family.val_metric_name.startswith("validation RMSE")
    pred = family.predict(SMILES)
    assert pred.shape == (len(SMILES), 1) and np.isfinite(pred).all()
    # predictions come back in the target's units, not standardised ones
    assert 2 < pred.mean() < 12


@pytest.mark.parametrize("name", FAMILIES)
def test_multitask_classification_with_missing_labels(name):
    y = classification_labels()
    family = train(name, ["classification", "classification"], y, epochs=2)
    prob = family.predict(SMILES)
    assert prob.shape == (len(SMILES), 2)
    assert ((prob > 0) & (prob < 1)).all()
    assert family.val_metric == "roc_auc" and family.val_metric_name.startswith("validation ROC-AUC")
    assert all(0 <= r.val_metric <= 1 for r in family.fit_record.history)
    assert all(np.isfinite(r.train_loss) for r in family.fit_record.history)


def test_mixed_tasks_and_no_validation_set():
    y = np.column_stack([HEAVY_ATOMS[:, 0], classification_labels()[:, 1]])
    family = get_family("dmpnn")({**TINY["dmpnn"], "max_epochs": 2}, ["regression", "classification"])
    family.fit(SMILES, y, [], np.empty((0, 2)), FitCallbacks())
    assert family.val_metric == "loss"
    # with nothing to validate on, the last epoch is the one kept
    assert family.fit_record.best_epoch == 2
    pred = family.predict(SMILES[:4])
    assert ((pred[:, 1] > 0) & (pred[:, 1] < 1)).all()


@pytest.mark.parametrize("name", FAMILIES)
def test_save_load_predicts_the_same(name, tmp_path):
    family = train(name, ["regression", "classification"],
                   np.column_stack([HEAVY_ATOMS[:, 0], classification_labels()[:, 0]]), epochs=2)
    family.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    assert_no_pickle(tmp_path)
    loaded = get_family(name).load(tmp_path)
    assert loaded.hparams == family.hparams and loaded.task_types == family.task_types
    np.testing.assert_array_equal(loaded.predict(SMILES), family.predict(SMILES))
    assert loaded.fit_record.best_epoch == family.fit_record.best_epoch


def test_load_refuses_another_familys_model(tmp_path):
    train("dmpnn", ["regression"], HEAVY_ATOMS, epochs=1).save(tmp_path)
    with pytest.raises(ValueError, match="attentivefp"):
        get_family("attentivefp").load(tmp_path)


class Killed(Exception):
    pass


def kill_at(epoch):
    def on_epoch(report):
        if report.epoch == epoch:
            raise Killed
    return on_epoch


@pytest.mark.parametrize("name", FAMILIES)
def test_resumed_run_equals_uninterrupted(name, tmp_path):
    """A worker dying in epoch 3 leaves the epoch-2 checkpoint; the rerun ends bit for bit where
    an uninterrupted 4-epoch run does (dropout on, so the RNG state must come back too)."""
    extra = {"dropout": 0.2}
    whole = train(name, ["regression"], HEAVY_ATOMS, epochs=4, seed=3, **extra)

    checkpoints = tmp_path / "checkpoint"
    seen = []
    with pytest.raises(Killed):
        train(name, ["regression"], HEAVY_ATOMS, epochs=4, seed=3,
              callbacks=FitCallbacks(on_epoch=kill_at(3), checkpoint_dir=checkpoints,
                                     on_checkpoint=seen.append), **extra)
    assert seen == [checkpoints, checkpoints]
    assert json.loads((checkpoints / "latest.json").read_text())["epoch"] == 2
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch-0002", "latest.json"]
    assert_no_pickle(checkpoints)

    reported = []
    resumed = train(name, ["regression"], HEAVY_ATOMS, epochs=4, seed=3,
                    callbacks=FitCallbacks(on_epoch=reported.append, checkpoint_dir=checkpoints), **extra)
    assert resumed.fit_record.resumed_from == 2
    assert [r.epoch for r in reported] == [3, 4]
    strip = lambda history: [(r.epoch, r.train_loss, r.val_loss, r.val_metric, r.best_epoch) for r in history]
    assert strip(resumed.fit_record.history) == strip(whole.fit_record.history)
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    np.testing.assert_array_equal(resumed.predict(SMILES), whole.predict(SMILES))


def test_checkpoint_of_another_configuration_is_not_resumed(tmp_path):
    checkpoints = tmp_path / "checkpoint"
    train("dmpnn", ["regression"], HEAVY_ATOMS, epochs=2, callbacks=FitCallbacks(checkpoint_dir=checkpoints))
    again = train("dmpnn", ["regression"], HEAVY_ATOMS, epochs=2, seed=1,
                  callbacks=FitCallbacks(checkpoint_dir=checkpoints))
    assert again.fit_record.resumed_from == 0 and len(again.fit_record.history) == 2


def test_a_finished_checkpoint_resumes_to_the_same_model(tmp_path):
    """A rerun after the last epoch was checkpointed (killed before the result was saved) trains nothing."""
    checkpoints = tmp_path / "checkpoint"
    first = train("dmpnn", ["regression"], HEAVY_ATOMS, epochs=2, callbacks=FitCallbacks(checkpoint_dir=checkpoints))
    reported = []
    again = train("dmpnn", ["regression"], HEAVY_ATOMS, epochs=2,
                  callbacks=FitCallbacks(on_epoch=reported.append, checkpoint_dir=checkpoints))
    assert reported == [] and again.fit_record.resumed_from == 2
    np.testing.assert_array_equal(again.predict(SMILES), first.predict(SMILES))


# -- the loop alone, with a scripted validation metric ---------------------------------------------

def linear_fit(val_metrics, callbacks, patience=10, higher_is_better=False):
    """A linear model on fixed data; val_fn replays `val_metrics`; snapshots[e] = the weights after
    epoch e. Returns the record, the weights the model was left with, the snapshots and the exception."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    x, y = torch.randn(32, 3), torch.randn(32, 1)
    snapshots, scripted = {}, iter(val_metrics)

    def val_fn(m):
        snapshots[len(snapshots) + 1] = {k: v.clone() for k, v in m.state_dict().items()}
        return 0.0, next(scripted)

    result, raised = FitResult(), None
    try:
        fit_torch(model, lambda epoch: [(x, y)], lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(), val_fn,
                  max_epochs=len(val_metrics), patience=patience, lr=0.1, seed=0, callbacks=callbacks,
                  higher_is_better=higher_is_better, record=result)
    except Killed as exc:
        raised = exc
    return result, model.state_dict(), snapshots, raised


def same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_early_stopping_keeps_the_best_epoch():
    result, weights, snapshots, _ = linear_fit([1.0, 0.5, 0.7, 0.8, 0.9, 0.6], FitCallbacks(), patience=2)
    assert result.stopped == "early stopping"
    assert [r.epoch for r in result.history] == [1, 2, 3, 4]
    assert result.best_epoch == 2 and [r.best_epoch for r in result.history] == [1, 2, 2, 2]
    assert same(weights, snapshots[2]) and not same(weights, snapshots[4])


def test_higher_is_better_metric():
    result, weights, snapshots, _ = linear_fit([0.6, 0.9, 0.7], FitCallbacks(), higher_is_better=True)
    assert result.stopped == "max epochs" and result.best_epoch == 2
    assert same(weights, snapshots[2])


def test_cancellation_restores_the_best_weights_and_reraises(tmp_path):
    """on_epoch raising (a cancelled job) stops training, puts the best weights back in the model
    and propagates; the cancelled epoch is not checkpointed."""
    callbacks = FitCallbacks(on_epoch=kill_at(4), checkpoint_dir=tmp_path)
    result, weights, snapshots, raised = linear_fit([1.0, 0.4, 0.6, 0.5, 0.3], callbacks)
    assert isinstance(raised, Killed)
    assert result.stopped == "interrupted" and result.best_epoch == 2 and len(result.history) == 4
    assert same(weights, snapshots[2]) and not same(weights, snapshots[4])
    assert json.loads((tmp_path / "latest.json").read_text())["epoch"] == 3
    with safe_open(str(tmp_path / "epoch-0003" / "tensors.safetensors"), "pt") as f:
        assert torch.equal(f.get_tensor("best.weight"), snapshots[2]["weight"])
        assert torch.equal(f.get_tensor("model.weight"), snapshots[3]["weight"])


def test_divergence_is_an_error_naming_the_epoch():
    model = torch.nn.Linear(3, 1)
    x = torch.randn(8, 3)
    with pytest.raises(FloatingPointError, match="epoch 1: training diverged"):
        fit_torch(model, lambda epoch: [x], lambda m, b: m(b).mean() * float("nan"), lambda m: (None, None),
                  max_epochs=3, patience=3, lr=0.1, seed=0, callbacks=FitCallbacks())


def test_noam_schedule_warms_up_then_decays_to_final_lr():
    s = NoamSchedule(warmup_epochs=2, init_lr=1e-4, max_lr=1e-3, final_lr=1e-4)
    assert s.lr(0, 10, 5) == pytest.approx(1e-4)
    assert s.lr(10, 10, 5) == pytest.approx(5.5e-4)
    assert s.lr(20, 10, 5) == pytest.approx(1e-3)
    assert s.lr(50, 10, 5) == pytest.approx(1e-4)
    assert s.lr(30, 10, 5) < s.lr(25, 10, 5) < 1e-3


# -- input checks ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, bad", [("dmpnn", {"depth": 7}), ("dmpnn", {"aggregation": "max"}),
                                       ("attentivefp", {"dropout": 0.9}), ("attentivefp", {"heads": 2})])
def test_bad_hyperparameters_are_refused(name, bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        get_family(name)(bad, ["regression"])


@pytest.mark.parametrize("name", FAMILIES)
def test_unparsable_smiles_names_the_row(name):
    family = train(name, ["regression"], HEAVY_ATOMS, epochs=1)
    with pytest.raises(ValueError, match="row 2"):
        family.predict(["CCO", "C1CC", "CCN"])


@pytest.mark.parametrize("name", FAMILIES)
def test_molecules_without_bonds(name):
    """Single atoms and salts have no bonds to pass messages along; they still train and predict."""
    smiles = SMILES + ["C", "[Na+].[Cl-]", "O"]
    y = np.vstack([HEAVY_ATOMS, [[1.0], [2.0], [1.0]]])
    family = get_family(name)({**TINY[name], "max_epochs": 1}, ["regression"])
    family.fit(smiles, y, ["N", "[K+].[Br-]"], np.array([[1.0], [2.0]]), FitCallbacks())
    pred = family.predict(["C", "[Na+].[Cl-]", "[Xe]"])
    assert pred.shape == (3, 1) and np.isfinite(pred).all()


def test_classification_labels_must_be_binary():
    y = classification_labels()
    y[0, 0] = 2.0
    with pytest.raises(ValueError, match="0 or 1"):
        train("dmpnn", ["classification", "classification"], y, epochs=1)


def assert_no_pickle(directory: Path):
    """Every file opens as safetensors or JSON; none is a pickle (protocol 2+ starts with 0x80)."""
    files = [p for p in directory.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert not path.read_bytes().startswith(b"\x80"), path
        if path.suffix == ".safetensors":
            with safe_open(str(path), "pt") as f:
                assert list(f.keys())
        else:
            assert path.suffix == ".json", path
            json.loads(path.read_text())
