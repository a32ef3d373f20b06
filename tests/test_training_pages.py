"""The training run pages, the run history, the comparison and the model
registry, on records made directly (no worker): a running run's partial returns
the epochs so far and the time left, a finished one its metrics and plots,
registration numbers versions per name, the model card shows what it must, and
another user's ids are 404 everywhere."""

from __future__ import annotations

import io
import json
import re
import zipfile

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from accounts.models import Lab, Membership
from training import charts
from training.models import Dataset, ModelVersion, TrainingRun
from tests.test_viewer_browser import logged_in  # noqa: F401  (the logged-in Chromium page)
from workers.models import Job, JobFile

pytestmark = pytest.mark.django_db

ESOL = [{"name": "logS", "task": "regression"}]
CARD = {"family": "dmpnn", "label": "D-MPNN", "method": "Chemprop's directed message passing network",
        "hparams": {"max_epochs": 5, "hidden": 300}, "ensemble": 2, "seeds": [0, 1],
        "split": {"method": "scaffold", "sizes": [0.8, 0.1, 0.1], "seed": 0, "n_train": 80, "n_val": 10,
                  "n_test": 10},
        "metrics": {"per_target": {"logS": {"rmse": 0.712, "mae": 0.55, "r2": 0.81, "spearman": 0.9, "n": 10}},
                    "mean": {"rmse": 0.712, "mae": 0.55, "r2": 0.81, "spearman": 0.9}},
        "metrics_note": "test set of 10 rows", "targets": ["logS"], "tasks": ["regression"],
        "libraries": {"rdkit": "2026.09.1", "torch": "2.13.0", "chemprop": "2.2.4"},
        "training_seconds": 125.0, "cancelled": False}
DESCRIBE = "D-MPNN ×2, scaffold test RMSE 0.71"


def _dataset(owner, name="solubility-esol", targets=ESOL, version=1, **extra) -> Dataset:
    return Dataset.objects.create(owner=owner, lab=owner.profile.default_lab, name=name, version=version,
                                  content_hash="ab" * 32, targets=targets, n_rows=100, **extra)


def _epochs(members: int, per_member: int, seconds: float = 2.0) -> list[dict]:
    return [{"member": m, "epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e, "val_metric": 1.5 - 0.1 * e,
             "seconds": seconds, "best_epoch": e}
            for m in range(members) for e in range(1, per_member + 1)]


def _bundle(card=CARD) -> bytes:
    """A packed model as training.compute.bundle lays it out: model.json (config + card) and members."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("model.json", json.dumps({"format": 1, "family": card["family"], "card": card}))
        zf.writestr("members/0/model.safetensors", b"\x00" * 16)
    return out.getvalue()


def _run(owner, dataset, *, status="running", epochs=None, ensemble=2, family="dmpnn", hparams=None,
         metrics=None, result=None, model_zip=False, split=None, lab=None, shared=False, started_ago=60):
    now = timezone.now()
    job = Job.objects.create(
        kind="training.train", owner=owner, lab=lab or owner.profile.default_lab, shared=shared, status=status,
        title=f"{family} on {dataset.name}", params={"dataset_id": dataset.pk, "family": family},
        started_at=now - timezone.timedelta(seconds=started_ago),
        finished_at=now if status in ("succeeded", "failed", "cancelled") else None, result=result or {})
    run = TrainingRun.objects.create(
        job=job, dataset=dataset, family=family, hparams=hparams or {"max_epochs": 5}, ensemble=ensemble,
        split=split or {"method": "scaffold", "sizes": [0.8, 0.1, 0.1], "seed": 0, "n_test": 10},
        epochs=epochs if epochs is not None else [], metrics=metrics or {})
    if model_zip:
        jf = JobFile(job=job, name="model.zip", content_type="application/zip")
        data = _bundle()
        jf.file.save("model.zip", ContentFile(data), save=False)
        jf.size = len(data)
        jf.save()
    return run


def _finished(owner, dataset, **extra):
    y = [float(v) for v in np.linspace(-4, 0, 10)]
    pred = [v + 0.3 for v in y]
    result = {"metrics": CARD["metrics"], "describe": DESCRIBE, "card": CARD, "method": DESCRIBE,
              "test_predictions": {"logS": {"y": y, "pred": pred}},
              "importances": [{"feature": "MolLogP", "importance": 0.4, "method": "mean decrease in impurity"},
                              {"feature": "Morgan count bit 12 (radius ≤ 2)", "importance": 0.1}]}
    return _run(owner, dataset, status=extra.pop("status", "succeeded"), epochs=_epochs(2, 5),
                metrics=CARD["metrics"], result=result, model_zip=True, **extra)


def _json_script(content: bytes, element_id: str):
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', content.decode(), re.S)
    assert match, f"no {element_id} on the page"
    return json.loads(match.group(1))


@pytest.fixture
def group(user, other_user):
    lab = Lab.objects.create(name="Solubility group", slug="solubility-group")
    Membership.objects.create(lab=lab, user=user, role=Membership.Role.OWNER)
    Membership.objects.create(lab=lab, user=other_user)
    return lab


# ---------------------------------------------------------------- live monitoring

def test_the_partial_returns_the_epochs_so_far_and_an_upper_bound_of_the_time_left(alice_client, user):
    dataset = _dataset(user)
    # Member 1 finished 5 epochs, member 2 is at epoch 2 of at most 5; 2 s per epoch.
    run = _run(user, dataset, epochs=_epochs(1, 5) + [e | {"member": 1} for e in _epochs(1, 2)])
    response = alice_client.get(reverse("training:run_live", args=[run.job_id]) + "?was=running")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'hx-trigger="every 2s"' in body  # still polling
    curves = _json_script(response.content, "run-curves-data")
    metric_traces = [t for t in curves["metric"]["data"] if t["mode"] == "lines+markers"]
    assert [t["name"] for t in metric_traces] == ["member 1", "member 2"]
    assert metric_traces[1]["x"] == [1, 2]
    assert len(curves["loss"]["data"]) == 4  # train and validation loss per member
    assert 'id="run-model">member 2<' in body and 'id="run-epoch">2<' in body
    # At most 3 epochs left (member 2 stops at 5), 2 s each: an upper bound, said as one.
    assert "at most 6 s left" in body and "early stopping may end it sooner" in body
    assert "running for 1 min" in body

    # A new epoch recorded by the worker shows at the next poll.
    run.epochs = run.epochs + [_epochs(1, 3)[-1] | {"member": 1}]
    run.save()
    curves = _json_script(alice_client.get(reverse("training:run_live", args=[run.job_id])).content,
                          "run-curves-data")
    assert [t for t in curves["metric"]["data"] if t["name"] == "member 2"][0]["x"] == [1, 2, 3]


def test_the_run_page_draws_the_curves_again_after_a_reload(alice_client, user):
    run = _run(user, _dataset(user), epochs=_epochs(2, 3))
    page = alice_client.get(reverse("training:run_detail", args=[run.job_id]))
    assert page.status_code == 200
    curves = _json_script(page.content, "run-curves-data")
    assert sum(len(t["x"]) for t in curves["loss"]["data"]) == 12
    assert curves["metric"]["layout"]["yaxis"]["title"]["text"] == "Validation RMSE"
    body = page.content.decode()
    assert 'id="loss-chart"' in body and 'id="metric-chart"' in body and "training_runs.js" in body
    assert "Register this model" not in body  # not while it runs


def test_an_ended_run_stops_polling_and_has_the_page_reload(alice_client, user):
    run = _finished(user, _dataset(user))
    response = alice_client.get(reverse("training:run_live", args=[run.job_id]) + "?was=running")
    assert response["HX-Refresh"] == "true"
    assert "hx-trigger" not in response.content.decode()
    assert "left" not in response.content.decode().split('id="run-state"')[1].split("</p>")[0]


def test_progress_bound_counts_the_members_not_started():
    state = charts.progress(_epochs(1, 2, seconds=3.0), ensemble=3, max_epochs=10, running=True)
    assert (state.model, state.epoch, state.epochs_left_at_most) == ("member 1", 2, 8 + 2 * 10)
    assert state.seconds_left_at_most == pytest.approx(3.0 * 28)
    # 3-fold cross-validation of 2 members: fold 2's first member at epoch 4; 1 + 2 models to come.
    folded = [e | {"fold": f} for f in (0, 1) for e in _epochs(2 if f == 0 else 1, 4 if f else 10)]
    state = charts.progress(folded, ensemble=2, max_epochs=10, running=True, folds=3)
    assert (state.model, state.epoch, state.epochs_left_at_most) == ("fold 2 member 1", 4, 6 + 3 * 10)
    names = [t["name"] for t in charts.metric_figure(folded, "rmse")["data"] if t["mode"] == "lines+markers"]
    assert names == ["fold 1 member 1", "fold 1 member 2", "fold 2 member 1"]
    assert charts.progress([], ensemble=1, max_epochs=10, running=True).time_left == ""
    assert charts.progress(_epochs(1, 2), 1, 10, running=False).seconds_left_at_most is None


# ---------------------------------------------------------------- results

def test_a_finished_regression_run_shows_metrics_parity_plot_features_and_downloads(alice_client, user):
    run = _finished(user, _dataset(user))
    page = alice_client.get(reverse("training:run_detail", args=[run.job_id]))
    body = page.content.decode()
    table = body.split('id="metrics-table"')[1].split("</table>")[0]
    for label, value in (("RMSE", "0.712"), ("MAE", "0.550"), ("R²", "0.810"), ("Spearman ρ", "0.900")):
        assert label in table and value in table
    parity = _json_script(page.content, "result-plot-0-data")
    assert parity["data"][0]["x"][0] == -4.0 and parity["data"][0]["y"][0] == pytest.approx(-3.7)
    assert parity["data"][1]["name"] == "y = x"
    assert "RMSE 0.712" in parity["layout"]["title"]["text"]
    features = _json_script(page.content, "importances-data")
    assert features["data"][0]["y"][-1] == "MolLogP"  # the most important at the top
    assert reverse("job_download", args=[run.job_id, "model.zip"]) in body
    assert "Register this model" in body and DESCRIBE in body


def test_roc_points_match_scikit_learn():
    from sklearn.metrics import auc, roc_curve

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    prob = np.round(rng.random(60) * 0.5 + y * 0.3, 1)  # rounded: tied scores
    fpr, tpr = charts.roc_points(list(y), list(prob))
    ref_fpr, ref_tpr, _ = roc_curve(y, prob, drop_intermediate=False)
    assert np.allclose(fpr, ref_fpr) and np.allclose(tpr, ref_tpr)
    assert np.trapezoid(tpr, fpr) == pytest.approx(auc(ref_fpr, ref_tpr))
    assert charts.roc_points([1, 1], [0.2, 0.9]) == ([], [])  # one class only: no curve


def test_a_classification_run_shows_a_roc_curve(alice_client, user):
    dataset = _dataset(user, name="bbbp", targets=[{"name": "p_np", "task": "classification"}])
    metrics = {"per_target": {"p_np": {"roc_auc": 0.75, "pr_auc": 0.8, "accuracy": 0.7, "mcc": 0.4}},
               "mean": {"roc_auc": 0.75, "pr_auc": 0.8, "accuracy": 0.7, "mcc": 0.4}}
    run = _run(user, dataset, status="succeeded", epochs=_epochs(1, 3), ensemble=1, metrics=metrics,
               result={"test_predictions": {"p_np": {"y": [0, 1, 0, 1], "pred": [0.1, 0.8, 0.6, 0.4]}}})
    page = alice_client.get(reverse("training:run_detail", args=[run.job_id]))
    roc = _json_script(page.content, "result-plot-0-data")
    assert roc["data"][0]["x"] == [0.0, 0.0, 0.5, 0.5, 1.0] and roc["data"][0]["y"] == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert "ROC-AUC 0.750" in roc["layout"]["title"]["text"]
    body = page.content.decode()
    assert "ROC-AUC" in body and "MCC" in body and "RMSE" not in body.split('id="metrics-table"')[1]
    assert _json_script(page.content, "run-curves-data")["metric"]["layout"]["yaxis"]["title"]["text"] \
        == "Validation ROC-AUC"


# ---------------------------------------------------------------- history and comparison

def test_the_history_lists_every_run_and_sorts_by_column(alice_client, user):
    dataset = _dataset(user)
    rmse = {"a": 0.9, "b": 0.6, "c": None}
    runs = {}
    for name, family in (("a", "dmpnn"), ("b", "fingerprint_rf"), ("c", "attentivefp")):
        metrics = {"mean": {"rmse": rmse[name]}} if rmse[name] is not None else {}
        runs[name] = _run(user, dataset, family=family, status="succeeded" if metrics else "running",
                          metrics=metrics, ensemble={"a": 5, "b": 1, "c": 3}[name],
                          hparams={"max_epochs": 5, "dropout": {"a": 0.0, "b": 0.1, "c": 0.2}[name]})
    _run(user, _dataset(user, name="other", version=1))  # another dataset's run is not listed
    url = reverse("training:dataset_runs", args=[dataset.pk])

    def order(sort):
        rows = alice_client.get(url, {"sort": sort} if sort else {}).context["rows"]
        return [next(k for k, r in runs.items() if r.pk == row["run"].pk) for row in rows]

    assert order(None) == ["c", "b", "a"]        # newest first
    assert order("metric") == ["b", "a", "c"]    # best RMSE first; no test metric last
    assert order("-metric") == ["a", "b", "c"]
    assert order("family") == ["c", "a", "b"]
    assert order("-ensemble") == ["a", "c", "b"]
    assert order("drop table") == ["c", "b", "a"]  # an unknown sort is the default
    body = alice_client.get(url).content.decode()
    assert "dropout=0.1" in body and "scaffold, 0.8/0.1/0.1, seed 0" in body and "0.600" in body
    assert body.count('name="runs"') == 3
    # The header of the current column flips it.
    assert 'href="?sort=-metric"' in alice_client.get(url, {"sort": "metric"}).content.decode()
    assert url in alice_client.get(dataset.get_absolute_url()).content.decode()  # linked from the dataset


def test_compare_overlays_the_runs_of_one_dataset(alice_client, user, other_user):
    dataset = _dataset(user)
    a = _run(user, dataset, epochs=_epochs(1, 3), hparams={"max_epochs": 5, "dropout": 0.0})
    b = _run(user, dataset, epochs=_epochs(2, 4), family="attentivefp", hparams={"max_epochs": 5, "dropout": 0.2})
    page = alice_client.get(reverse("training:compare"), {"runs": [a.job_id, b.job_id]})
    assert page.status_code == 200
    figure = _json_script(page.content, "compare-data")
    assert [t["name"] for t in figure["data"]] == ["A: dmpnn · member 1", "B: attentivefp · member 1",
                                                   "B: attentivefp · member 2"]
    assert figure["data"][0]["line"]["color"] != figure["data"][1]["line"]["color"]
    assert [h["name"] for h in page.context["hparams"] if h["differs"]] == ["dropout"]
    # Runs of two datasets, a single run, another user's run: refused.
    c = _run(user, _dataset(user, name="lipo"))
    assert alice_client.get(reverse("training:compare"), {"runs": [a.job_id, c.job_id]}).status_code == 400
    assert alice_client.get(reverse("training:compare"), {"runs": [a.job_id]}).status_code == 400
    theirs = _run(other_user, _dataset(other_user))
    assert alice_client.get(reverse("training:compare"), {"runs": [a.job_id, theirs.job_id]}).status_code == 404


# ---------------------------------------------------------------- the registry

def test_register_makes_v1_then_v2_with_the_bundle_and_card(alice_client, user):
    run = _finished(user, _dataset(user))
    url = reverse("training:run_register", args=[run.job_id])
    first = alice_client.post(url, {"name": "solubility-esol", "lab": user.profile.default_lab.pk})
    model = ModelVersion.objects.get(owner=user, version=1)
    assert first.status_code == 302 and first["Location"] == model.get_absolute_url()
    assert model.display_name == f"solubility-esol v1 ({DESCRIBE})"
    assert model.bundle.read() == run.job.files.get(name="model.zip").file.read()
    assert model.card["dataset"] == {"id": run.dataset.pk, "name": "solubility-esol", "version": 1,
                                     "content_hash": "ab" * 32, "rows": 100}
    assert model.targets == [{"name": "logS", "task": "regression"}] and model.run == run
    alice_client.post(url, {"name": "  solubility-esol ", "lab": user.profile.default_lab.pk})
    assert ModelVersion.objects.get(owner=user, version=2).display_name == f"solubility-esol v2 ({DESCRIBE})"
    alice_client.post(url, {"name": "other name", "lab": user.profile.default_lab.pk})
    assert ModelVersion.objects.get(name="other name").version == 1
    page = alice_client.get(run.get_absolute_url()).content.decode()
    assert "solubility-esol v2 (" in page and "solubility-esol v1 (" in page


def test_the_card_is_read_from_the_bundle_when_the_result_has_none(alice_client, user):
    run = _finished(user, _dataset(user))
    run.job.result = {k: v for k, v in run.job.result.items() if k not in ("card", "describe")}
    run.job.save()
    alice_client.post(reverse("training:run_register", args=[run.job_id]), {"name": "esol"})
    model = ModelVersion.objects.get()
    assert model.card["libraries"] == CARD["libraries"] and model.display_name == "esol v1"


def test_a_cancelled_run_that_kept_a_model_registers_marked_cancelled(alice_client, user):
    run = _finished(user, _dataset(user), status="cancelled")
    page = alice_client.get(run.get_absolute_url()).content.decode()
    assert 'id="run-cancelled"' in page and "Register this model" in page
    alice_client.post(reverse("training:run_register", args=[run.job_id]), {"name": "esol"})
    model = ModelVersion.objects.get()
    assert model.card["cancelled"] is True and "Cancelled after 10 epochs" in model.card["cancelled_note"]
    card = alice_client.get(model.get_absolute_url()).content.decode()
    assert 'id="model-cancelled"' in card
    assert "cancelled run" in alice_client.get(reverse("training:model_list")).content.decode()


def test_what_cannot_be_registered_says_why(alice_client, user):
    dataset = _dataset(user)
    running = _run(user, dataset)
    response = alice_client.post(reverse("training:run_register", args=[running.job_id]), {"name": "x"})
    assert response.status_code == 400 and "once it has ended" in response.content.decode()
    no_model = _run(user, dataset, status="cancelled", epochs=[])
    response = alice_client.post(reverse("training:run_register", args=[no_model.job_id]), {"name": "x"})
    assert response.status_code == 400 and "kept no model" in response.content.decode()
    done = _finished(user, dataset)
    response = alice_client.post(reverse("training:run_register", args=[done.job_id]), {"name": "a\x07b"})
    assert response.status_code == 400 and "printable" in response.content.decode()
    assert not ModelVersion.objects.exists()


def test_the_model_card_shows_data_split_hyperparameters_metrics_time_and_libraries(alice_client, user):
    run = _finished(user, _dataset(user))
    alice_client.post(reverse("training:run_register", args=[run.job_id]), {"name": "esol"})
    model = ModelVersion.objects.get()
    page = alice_client.get(model.get_absolute_url())
    body = page.content.decode()
    assert f"esol v1 ({DESCRIBE})" in body
    assert "solubility-esol v1" in body and "ab" * 32 in body and run.dataset.get_absolute_url() in body
    assert "scaffold 0.8/0.1/0.1, seed 0 (80 train / 10 validation / 10 test rows)" in body
    assert "hidden=300" in body and "max_epochs=5" in body
    assert "0.712" in body and "R²" in body and "test set of 10 rows" in body
    assert "2 min 5 s of training" in body
    assert "chemprop 2.2.4" in body and "rdkit 2026.09.1" in body
    assert "ensemble of 2 (seeds 0, 1)" in body and "directed message passing" in body
    download = alice_client.get(reverse("training:model_bundle", args=[model.pk]))
    assert download.status_code == 200 and b"".join(download.streaming_content) == _bundle()
    assert 'filename="esol-v1.zip"' in download["Content-Disposition"]


def test_another_users_ids_are_404_everywhere(client, user, other_user):
    theirs = _finished(other_user, _dataset(other_user))
    client.force_login(other_user)
    client.post(reverse("training:run_register", args=[theirs.job_id]), {"name": "bob's"})
    model = ModelVersion.objects.get()
    client.force_login(user)
    for url in (reverse("training:run_detail", args=[theirs.job_id]),
                reverse("training:run_live", args=[theirs.job_id]),
                reverse("training:dataset_runs", args=[theirs.dataset.pk]),
                reverse("training:model_detail", args=[model.pk]),
                reverse("training:model_bundle", args=[model.pk]),
                reverse("api:training_model", args=[model.pk])):
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("training:run_register", args=[theirs.job_id]), {"name": "mine"}).status_code == 404
    assert "bob's" not in client.get(reverse("training:model_list")).content.decode()
    assert client.get(reverse("api:training_models")).json() == []
    assert ModelVersion.objects.count() == 1


def test_models_shared_with_a_lab_are_seen_by_its_members_only(client, user, other_user, group, make_user):
    dataset = _dataset(user)
    run = _finished(user, dataset, lab=group, shared=True)
    client.force_login(user)
    client.post(reverse("training:run_register", args=[run.job_id]),
                {"name": "shared-esol", "lab": group.pk, "shared": "on"})
    client.post(reverse("training:run_register", args=[run.job_id]), {"name": "private-esol", "lab": group.pk})
    shared = ModelVersion.objects.get(name="shared-esol")
    private = ModelVersion.objects.get(name="private-esol")
    assert shared.lab == group and shared.shared and private.lab == group and not private.shared

    client.force_login(other_user)  # Bob, in the lab
    client.cookies.pop("messages", None)  # Alice's flash messages, not shown to Bob
    listing = client.get(reverse("training:model_list")).content.decode()
    assert "shared-esol v1" in listing and "private-esol" not in listing
    card = client.get(shared.get_absolute_url())
    assert card.status_code == 200 and "Shared with Solubility group" in card.content.decode()
    assert client.get(private.get_absolute_url()).status_code == 404
    # Bob sees the shared run but registering its model is Alice's call.
    assert client.get(run.get_absolute_url()).status_code == 200
    assert "Only the run's owner" in client.get(run.get_absolute_url()).content.decode()
    assert client.post(reverse("training:run_register", args=[run.job_id]), {"name": "x"}).status_code == 404
    assert [m["name"] for m in client.get(reverse("api:training_models")).json()] == ["shared-esol"]

    client.force_login(make_user("carol@example.org"))  # not in the lab
    assert client.get(shared.get_absolute_url()).status_code == 404
    assert "shared-esol" not in client.get(reverse("training:model_list")).content.decode()


def test_the_api_lists_models_and_gives_a_card(api, user):
    run = _finished(user, _dataset(user))
    api.force_login(user)
    api.post(reverse("training:run_register", args=[run.job_id]), {"name": "esol"})
    api.logout()
    model = ModelVersion.objects.get()
    listing = api.get(reverse("api:training_models"))
    assert listing.status_code == 200
    item = listing.json()[0]
    assert item["id"] == model.pk and item["display_name"] == f"esol v1 ({DESCRIBE})" and item["version"] == 1
    assert item["targets"] == [{"name": "logS", "task": "regression"}]
    detail = api.get(reverse("api:training_model", args=[model.pk])).json()
    assert detail["card"]["dataset"]["content_hash"] == "ab" * 32
    assert detail["card"]["metrics"]["mean"]["rmse"] == 0.712
    assert detail["bundle_sha256"] == model.bundle_sha256 and detail["bundle_url"].endswith("/bundle.zip")
    assert api.get(reverse("api:training_model", args=[model.pk + 1])).status_code == 404


def test_the_curves_name_the_metric_the_run_stopped_on():
    # As recorded by the run, else as the torch families choose: a mix of tasks stops on the loss.
    assert charts.validation_metric([{"metric": "loss"}], {}, ["regression"]) == "loss"
    assert charts.validation_metric([], {"val_metric_name": "roc_auc"}, ["regression"]) == "roc_auc"
    assert charts.validation_metric([], {}, ["classification", "classification"]) == "roc_auc"
    assert charts.validation_metric([], {}, ["regression", "classification"]) == "loss"
    assert charts.test_metric(["classification", "regression"]) == "roc_auc"


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_in_the_browser_the_curves_grow_then_the_model_is_registered(live_server, logged_in):
    page, _, user, errors = logged_in
    run = _run(user, _dataset(user), epochs=_epochs(1, 3), ensemble=1)
    page.goto(live_server.url + run.get_absolute_url())
    points = "document.getElementById('metric-chart').data[0].x.length"
    page.wait_for_function(f"{points} === 3", timeout=20_000)
    run.epochs = _epochs(1, 5)
    run.save()
    page.wait_for_function(f"{points} === 5", timeout=20_000)  # the next poll redraws in place
    assert page.locator("#loss-chart .main-svg").count() >= 1
    done = _finished(user, run.dataset)  # its results and model file, moved onto this run
    done.job.files.update(job=run.job)
    Job.objects.filter(pk=run.job_id).update(status="succeeded", finished_at=timezone.now(), result=done.job.result)
    TrainingRun.objects.filter(pk=run.pk).update(metrics=done.metrics)
    page.wait_for_selector("#metrics-table", timeout=20_000)  # the page reloaded with the results
    page.wait_for_selector("#result-plot-0 .main-svg", timeout=20_000)
    page.fill("#register input[name=name]", "esol-browser")
    page.click("#register button[type=submit]")
    page.wait_for_url("**/training/models/*/")
    assert page.inner_text("#model-name") == f"esol-browser v1 ({DESCRIBE})"
    assert not errors, errors


def test_a_real_dmpnn_run_shows_its_curves_results_and_registers(alice_client, user):
    """The runner's own records (h5's training.train, run in this process) drive the pages."""
    from tests.conftest import run_job_now
    from tests.training_fixtures import TINY_DMPNN, esol_csv, make_dataset
    from training.registry import card_from_bundle
    from training.runs import submit_run

    dataset = make_dataset(user, esol_csv(40), {"logS": "regression"})
    job = submit_run(user, {"dataset_id": dataset.pk, "family": "dmpnn", "hparams": {**TINY_DMPNN, "max_epochs": 2}})
    assert run_job_now(job) == "succeeded", Job.objects.get(pk=job.pk).error_detail
    job.refresh_from_db()
    page = alice_client.get(reverse("training:run_detail", args=[job.pk]))
    curves = _json_script(page.content, "run-curves-data")
    assert [t["x"] for t in curves["metric"]["data"] if t["mode"] == "lines+markers"] == [[1, 2]]
    assert curves["metric"]["layout"]["yaxis"]["title"]["text"] == "Validation RMSE"
    body = page.content.decode()
    rmse = job.result["metrics"]["per_target"]["logS"]["rmse"]
    assert f"{rmse:.3f}" in body.split('id="metrics-table"')[1].split("</table>")[0]
    parity = _json_script(page.content, "result-plot-0-data")
    assert len(parity["data"][0]["x"]) == job.result["card"]["split"]["n_test"]
    for name in ("model.zip", "predictions.csv", "split.csv", "metrics.json", "epochs.csv"):
        assert reverse("job_download", args=[job.pk, name]) in body
    # The card inside the packed bundle is the one the result carries (registration falls back to it).
    assert card_from_bundle(job.files.get(name="model.zip").file.read()) == job.result["card"]
    alice_client.post(reverse("training:run_register", args=[job.pk]), {"name": "esol-dmpnn"})
    model = ModelVersion.objects.get()
    assert model.display_name == f"esol-dmpnn v1 ({job.result['describe']})"
    card = alice_client.get(model.get_absolute_url()).content.decode()
    assert "chemprop" in card and "torch" in card and dataset.content_hash in card
