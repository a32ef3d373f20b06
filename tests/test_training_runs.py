"""Training runs as jobs (training.train): the parameters checked once, the
runner in-process and on a real Celery worker (epochs written live, a killed
worker resumes from the saved state, a cancel keeps the best model), the API.

Tiny data: the first rows of ESOL and BBBP from training/data, forests of 20
trees and D-MPNNs of 100 hidden units."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import signal
import zipfile
from pathlib import Path

import psutil
import pytest
from django.conf import settings
from django.core.files.base import ContentFile

from tests.conftest import run_job_now
from tests.processes import WorkerProcess, flush_redis, wait_until
from tests.test_viewer_browser import logged_in  # noqa: F401  (a fixture: Chromium, signed in)
from tests.training_fixtures import FOREST, TINY_DMPNN, bbbp_csv, esol_csv, make_dataset
from training.models import Dataset, TrainingRun
from training.runs import submit_run
from workers import checkpoints, lifecycle
from workers.errors import ParamsError
from workers.models import Job, Status

@pytest.fixture
def esol(user):
    return make_dataset(user, esol_csv(), {"logS": "regression", "mw": "regression"}, keep=("set",))


def train_params(dataset, **extra) -> dict:
    return {"dataset_id": dataset.pk, "family": "fingerprint_rf", "hparams": FOREST, **extra}


# ---------------------------------------------------------------- clean_params

@pytest.mark.django_db
def test_defaults_are_filled_and_cleaning_twice_changes_nothing(esol):
    from workers import kinds

    kind = kinds.get("training.train")
    once = kind.clean({"dataset_id": str(esol.pk), "family": "dmpnn", "hparams": {"depth": "4"},
                       "split": {"sizes": "0.7, 0.2, 0.1", "method": "scaffold"}, "ensemble": "3",
                       "targets": ["mw", "logS"]})
    p = once.params
    assert p["targets"] == ["logS", "mw"]  # the dataset's order
    assert p["hparams"]["depth"] == 4 and p["hparams"]["max_epochs"] == 50  # the family's defaults filled in
    assert p["split"] == {"method": "scaffold", "sizes": [0.7, 0.2, 0.1], "seed": 0, "column": None}
    assert p["ensemble"] == 3 and p["folds"] == 0 and p["seed"] == 0
    assert kind.clean(json.loads(json.dumps(p))).params == p
    assert once.facts["dataset"]["name"] == "esol-mini"
    assert "D-MPNN" in kind.summarize_params(p, once.facts) and "×3" in kind.summarize_params(p, once.facts)


@pytest.mark.django_db
@pytest.mark.parametrize("change, field, text", [
    ({"dataset_id": "x"}, "dataset_id", "Choose a dataset"),
    ({"dataset_id": 999999}, "dataset_id", "No dataset with id 999999"),
    ({"targets": ["nope"]}, "targets", "“nope” is not a target"),
    ({"family": "svm"}, "family", "Unknown model family"),
    ({"hparams": {"n_trees": 5}}, "hparams.n_trees", "no hyperparameter “n_trees”"),
    ({"hparams": {"n_estimators": 0}}, "hparams.n_estimators", "between"),
    ({"split": {"sizes": [0.5, 0.2, 0.2]}}, "split.sizes", "sum to 1"),
    ({"family": "dmpnn", "hparams": {}, "split": {"sizes": [0.9, 0, 0.1]}}, "split.sizes", "validation set"),
    ({"split": {"method": "column"}}, "split.column", "kept columns: set"),
    ({"split": {"method": "column", "column": "mw"}}, "split.column", "“mw” is not a column"),
    ({"split": {"method": "stratified"}}, "split.method", "classification target"),
    ({"split": {"method": "wild"}}, "split.method", "Unknown split"),
    ({"ensemble": 11}, "ensemble", "from 1 to 10"),
    ({"ensemble": 1.5}, "ensemble", "whole number"),
    ({"folds": 2}, "folds", "at least 3 folds"),
    ({"folds": 5, "split": {"method": "column", "column": "set"}}, "split.method", "random or scaffold"),
])
def test_errors_name_the_field(esol, user, change, field, text):
    with pytest.raises(ParamsError) as err:
        lifecycle.submit(user, "training.train", {**train_params(esol), **change})
    assert err.value.field == field
    assert text in err.value.message
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_another_users_dataset_is_refused_as_a_missing_one(esol, other_user):
    with pytest.raises(ParamsError) as err:
        lifecycle.submit(other_user, "training.train", train_params(esol))
    missing = Dataset.objects.order_by("-pk").first().pk + 1000
    with pytest.raises(ParamsError) as gone:
        lifecycle.submit(other_user, "training.train", {**train_params(esol), "dataset_id": missing})
    assert err.value.field == gone.value.field == "dataset_id"
    assert err.value.message == gone.value.message.replace(str(missing), str(esol.pk))
    # Shared with a lab the other user is in, it is theirs to use.
    from accounts.models import Membership

    Membership.objects.create(user=other_user, lab=esol.owner.profile.default_lab)
    esol.lab, esol.shared = esol.owner.profile.default_lab, True
    esol.save()
    assert submit_run(other_user, train_params(esol)).training_run.dataset_id == esol.pk


# ---------------------------------------------------------------- the runner in-process

def read_csv(job, name) -> list[dict]:
    return list(csv.DictReader(io.StringIO(job.files.named(name).file.read().decode())))


@pytest.mark.django_db(transaction=True)
def test_forest_run_in_process_writes_its_results(esol, user, no_broker):
    job = submit_run(user, train_params(esol, split={"method": "column", "column": "set"}, ensemble=2))
    assert TrainingRun.objects.get(job=job).family == "fingerprint_rf"  # listed before a worker starts it
    assert run_job_now(job) == Status.SUCCEEDED, Job.objects.get(pk=job.pk).error_detail
    job.refresh_from_db()
    run = job.training_run
    result = job.result
    assert set(result["metrics"]["per_target"]) == {"logS", "mw"}
    assert run.metrics == result["metrics"] and result["metrics"]["mean"]["rmse"] > 0
    assert "×2" in result["describe"] and "esol-mini v1" in result["method"] and esol.content_hash[:12] in result["method"]
    assert run.epochs == [] and run.split["method"] == "column"
    assert sorted(job.files.values_list("name", flat=True)) == [
        "epochs.csv", "metrics.json", "model.zip", "predictions.csv", "split.csv"]
    # The split as the file's own column said, row by row.
    split = read_csv(job, "split.csv")
    file_rows = list(csv.DictReader(io.StringIO(esol_csv().decode())))
    assert len(split) == esol.n_rows
    for line in split:
        assert line["set"] == file_rows[int(line["row"]) - 1]["set"]
    predictions = read_csv(job, "predictions.csv")
    assert len(predictions) == 2 * esol.n_rows and {p["split"] for p in predictions} == {"train", "val", "test"}
    assert all(p["std"] != "" for p in predictions)  # two members: their sd
    assert len(result["test_predictions"]["logS"]["y"]) == sum(1 for s in split if s["set"] == "test")
    assert result["importances"] and result["importances"][0]["feature"]
    metrics = json.loads(job.files.named("metrics.json").file.read())
    assert metrics["metrics"]["mean"]["rmse"] == pytest.approx(result["metrics"]["mean"]["rmse"])
    # The bundle loads and predicts.
    from training.compute.bundle import load_model, unpack

    model = load_model(unpack(job.files.named("model.zip").file.read(), Path(settings.MEDIA_ROOT) / "m"))
    assert model.predict(["CCO"]).mean.shape == (1, 2)
    # The run's saved state went when it ended.
    assert not checkpoints.restore(job.pk, Path(settings.MEDIA_ROOT) / "none")


@pytest.mark.django_db(transaction=True)
def test_the_job_page_shows_the_trained_model(alice_client, esol, user, no_broker):
    job = submit_run(user, train_params(esol))
    run_job_now(job)
    page = alice_client.get(Job.objects.get(pk=job.pk).get_absolute_url())
    assert page.status_code == 200
    text = page.content.decode()
    assert "Random forest" in text and "esol-mini v1" in text and "rmse" in text and "model.zip" in text
    assert f'href="/training/runs/{job.pk}/"' in text


@pytest.mark.django_db(transaction=True)
def test_cross_validation_trains_one_model_per_fold(esol, user, no_broker):
    # Submitted as POST /api/v1/jobs does: the kind files the run under its dataset all the same.
    job = lifecycle.submit(user, "training.train", train_params(esol, folds=3, targets=["logS"]))
    assert TrainingRun.objects.get(job=job).split["folds"] == 3
    assert run_job_now(job) == Status.SUCCEEDED, Job.objects.get(pk=job.pk).error_detail
    job.refresh_from_db()
    result = job.result
    assert len(result["fold_metrics"]) == 3 and result["metrics"]["folds"] == 3
    rmses = [m["per_target"]["logS"]["rmse"] for m in result["fold_metrics"]]
    assert result["metrics"]["per_target"]["logS"]["rmse"] == pytest.approx(sum(rmses) / 3)
    assert result["metrics"]["sd"]["rmse"] > 0 and "3-fold cross-validation" in result["method"]
    split = read_csv(job, "split.csv")
    tested = sorted(int(s["row"]) for s in split if s["set"] == "test")
    assert tested == sorted(int(s["row"]) for s in split if s["fold"] == "1")  # every row tested once
    predictions = read_csv(job, "predictions.csv")
    assert {p["fold"] for p in predictions} == {"1", "2", "3"} and len(predictions) == 3 * esol.n_rows
    assert job.training_run.split["folds"] == 3 and len(job.training_run.split["sets"]) == 3
    rerun = lifecycle.rerun(job, user)
    assert rerun.training_run.dataset_id == esol.pk and rerun.training_run.epochs == []


@pytest.mark.django_db(transaction=True)
def test_a_forest_ensemble_cancelled_between_members_keeps_the_members_done(esol, user, no_broker, monkeypatch):
    from workers.runtime import DbJobContext

    job = submit_run(user, train_params(esol, ensemble=3))
    calls = []

    def cancel_once_a_member_is_done(self):
        calls.append(1)
        return len(calls) > 2  # loading, saving member 1's state; then its progress report sees the cancel

    monkeypatch.setattr(DbJobContext, "cancel_requested", cancel_once_a_member_is_done)
    assert run_job_now(job) == Status.CANCELLED
    job.refresh_from_db()
    assert job.result["cancelled"] and job.result["card"]["ensemble"] == 1 and job.result["ensemble"] == 3
    assert job.files.named("model.zip") is not None and job.files.count() == 5
    assert job.training_run.metrics["mean"]["rmse"] > 0


# ---------------------------------------------------------------- form and API

@pytest.mark.django_db
def test_the_form_starts_a_run_and_puts_errors_on_their_fields(alice_client, esol, no_broker):
    from django.urls import reverse

    url = reverse("training:run_new")
    page = alice_client.get(url, {"dataset": esol.pk})
    assert page.status_code == 200 and b"n_estimators" in page.content and b"depth" in page.content
    form = {"dataset": esol.pk, "targets": "logS", "family": "fingerprint_rf", "hparams": '{"n_estimators": 20}',
            "split_method": "scaffold", "train_size": 0.8, "val_size": 0.1, "test_size": 0.1, "split_seed": 3,
            "split_column": "", "folds": 0, "ensemble": 2, "seed": 1, "title": ""}
    for change, field, text in [({"hparams": "{depth"}, "hparams", "Not JSON"),
                                ({"hparams": '{"depth": 3}'}, "hparams", "no hyperparameter “depth”"),
                                ({"test_size": 0.3}, "train_size", "sum to 1"),
                                ({"split_method": "column"}, "split_column", "kept columns: set"),
                                ({"ensemble": 20}, "ensemble", "from 1 to 10")]:
        page = alice_client.post(url, {**form, **change})
        assert page.status_code == 400
        assert text in " ".join(page.context["form"].errors.get(field, [])), (field, page.context["form"].errors)
    assert not Job.objects.exists()
    page = alice_client.post(url, form)
    job = Job.objects.get()
    assert page.status_code == 302 and page["Location"] == reverse("training:run_detail", args=[job.pk])
    assert job.params["split"] == {"method": "scaffold", "sizes": [0.8, 0.1, 0.1], "seed": 3, "column": None}
    assert job.params["targets"] == ["logS"] and job.params["ensemble"] == 2 and job.queue == "gpu"
    assert TrainingRun.objects.get(job=job).dataset_id == esol.pk
    # Train again from that run's settings.
    again = alice_client.get(url, {"from": job.pk})
    assert again.context["form"].initial["split_seed"] == 3 and again.context["form"].initial["ensemble"] == 2


@pytest.mark.django_db
def test_api_starts_a_run_and_another_users_run_is_a_404(api, esol, other_user, client, no_broker):
    from accounts.models import ApiToken

    answer = api.post("/api/v1/training/runs", {"dataset_id": esol.pk, "hparams": FOREST,
                                                "split": {"method": "random", "sizes": [0.8, 0.1, 0.1]}},
                      content_type="application/json")
    assert answer.status_code == 202, answer.content
    job_id = answer.json()["id"]
    run = api.get(f"/api/v1/training/runs/{job_id}").json()
    assert run["status"] == "queued" and run["epochs"] == [] and run["family"] == "fingerprint_rf"
    assert run["dataset"]["id"] == esol.pk
    bad = api.post("/api/v1/training/runs", {"dataset_id": esol.pk, "ensemble": 0}, content_type="application/json")
    assert bad.status_code == 400 and bad.json()["field"] == "ensemble"

    _, raw = ApiToken.issue(other_user, "t")
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    assert client.get(f"/api/v1/training/runs/{job_id}").status_code == 404
    theirs = client.post("/api/v1/training/runs", {"dataset_id": esol.pk}, content_type="application/json")
    assert theirs.status_code == 400 and theirs.json() == {"error": f"No dataset with id {esol.pk}.",
                                                           "field": "dataset_id"}
    schema = api.get("/api/v1/openapi.json").json()
    assert "/api/v1/training/runs" in schema["paths"] and "/api/v1/training/runs/{job_id}" in schema["paths"]


# ---------------------------------------------------------------- on a real worker

@pytest.fixture(scope="module")
def worker_media(tmp_path_factory):
    return tmp_path_factory.mktemp("training-media")


@pytest.fixture(scope="module")
def train_worker(worker_media, tmp_path_factory, django_db_setup, django_db_blocker):
    """One worker for the module's end-to-end tests: each job pays torch's import once per pool process."""
    from django.test.utils import override_settings

    flush_redis()
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=worker_media, BIOFM_JOB_LEASE_SECONDS=4):
        proc = WorkerProcess(tmp_path_factory.mktemp("training-worker"), concurrency=1,
                             env={"OMP_NUM_THREADS": "1", "BIOFM_TORCH_DEVICE": "cpu"}).start()
    yield proc
    proc.stop()


@pytest.fixture
def on_worker(train_worker, worker_media, settings):
    # The test and the worker share one media folder: the dataset goes in, the results come out.
    settings.MEDIA_ROOT = worker_media
    settings.BIOFM_JOB_LEASE_SECONDS = 4
    return train_worker


def status_of(job) -> str:
    return Job.objects.values_list("status", flat=True).get(pk=job.pk)


def epochs_of(job) -> list[dict]:
    return TrainingRun.objects.values_list("epochs", flat=True).get(job_id=job.pk)


def ended(job, timeout=120) -> Job:
    wait_until(lambda: status_of(job) in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED), timeout,
               what=f"job {job.pk} to end")
    return Job.objects.get(pk=job.pk)


def dmpnn_params(dataset, **hparams) -> dict:
    return {"dataset_id": dataset.pk, "family": "dmpnn", "targets": ["logS"],
            "hparams": {**TINY_DMPNN, **hparams}, "split": {"method": "random", "sizes": [0.8, 0.1, 0.1]}}


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_forest_and_a_three_epoch_dmpnn_train_on_a_worker(on_worker, user, alice_client):
    esol = make_dataset(user, esol_csv(), {"logS": "regression", "mw": "regression"}, keep=("set",))
    bbbp = make_dataset(user, bbbp_csv(), {"p_np": "classification"}, name="bbbp-mini")
    forest = submit_run(user, {"dataset_id": bbbp.pk, "hparams": FOREST, "split": {"method": "stratified"}})
    dmpnn = submit_run(user, dmpnn_params(esol, max_epochs=3, patience=10))
    forest, dmpnn = ended(forest), ended(dmpnn, 180)
    assert forest.status == Status.SUCCEEDED, forest.error_detail
    assert set(forest.result["metrics"]["per_target"]["p_np"]) >= {"roc_auc", "pr_auc", "accuracy", "mcc"}
    assert forest.hardware == "cpu"
    assert dmpnn.status == Status.SUCCEEDED, dmpnn.error_detail
    epochs = epochs_of(dmpnn)
    assert [(e["member"], e["epoch"]) for e in epochs] == [(0, 1), (0, 2), (0, 3)]
    assert all(e["train_loss"] > 0 and e["val_metric"] is not None and e["attempt"] == 1 for e in epochs)
    assert "D-MPNN" in dmpnn.result["describe"] and dmpnn.result["metrics"]["per_target"]["logS"]["rmse"] > 0
    assert dmpnn.result["val_metric_name"] == "rmse" and "RMSE" in dmpnn.result["val_metric_sentence"]
    assert len(read_csv(dmpnn, "epochs.csv")) == 3
    from workers.models import Attempt

    phases = {p["name"] for p in Attempt.objects.get(job=dmpnn).phases}
    assert {"loading data", "training member 1/1", "testing", "saving"} <= phases
    assert not checkpoints.restore(dmpnn.pk, Path(settings.MEDIA_ROOT) / "gone")
    for job in (forest, dmpnn):  # the run page reads what the runner wrote
        assert alice_client.get(f"/training/runs/{job.pk}/").status_code == 200


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_api_follows_the_epochs_and_a_cancel_keeps_the_best_model(on_worker, user, api):
    esol = make_dataset(user, esol_csv(), {"logS": "regression"})
    answer = api.post("/api/v1/training/runs", {**dmpnn_params(esol, max_epochs=300, patience=300), "ensemble": 2},
                      content_type="application/json")
    assert answer.status_code == 202, answer.content
    job = Job.objects.get(pk=answer.json()["id"])
    url = f"/api/v1/training/runs/{job.pk}"
    running = wait_until(lambda: (lambda r: r if r["status"] == "running" and r["n_epochs"] >= 2 else None)(
        api.get(url).json()), 120, what="two epochs while running")
    assert [e["epoch"] for e in running["epochs"][:2]] == [1, 2] and running["epochs"][0]["member"] == 0
    later = api.get(url, {"since": 1}).json()
    assert later["epochs"][0]["epoch"] == 2 and later["n_epochs"] >= 2
    assert api.post(f"/api/v1/jobs/{job.pk}/cancel").status_code == 200
    job = ended(job)
    assert job.status == Status.CANCELLED and "kept" in job.error_message
    result = job.result
    assert result["cancelled"] and result["card"]["cancelled"] and result["ensemble"] == 2
    assert result["card"]["ensemble"] == 1  # the member it was training, with its best weights
    assert sorted(job.files.values_list("name", flat=True)) == [
        "epochs.csv", "metrics.json", "model.zip", "predictions.csv", "split.csv"]
    from training.compute.bundle import load_model, unpack

    model = load_model(unpack(job.files.named("model.zip").file.read(), Path(settings.MEDIA_ROOT) / "kept"))
    assert model.cancelled and model.predict(["CCO"]).mean.shape == (1, 1)
    final = api.get(url).json()
    assert final["status"] == "cancelled" and final["cancelled"] and final["n_epochs"] >= 2
    assert final["metrics"]["per_target"]["logS"]["rmse"] > 0


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_resumes_from_the_saved_epoch(on_worker, user):
    esol = make_dataset(user, esol_csv(), {"logS": "regression"})
    job = submit_run(user, dmpnn_params(esol, max_epochs=14, patience=100))
    # A checkpoint of epoch 3 or later is in storage: kill the pool process running the job.
    wait_until(lambda: len(epochs_of(job)) >= 3 and checkpoints._stored(job.pk), 120, what="three epochs")
    children = psutil.Process(on_worker.proc.pid).children()
    assert len(children) == 1
    os.kill(children[0].pid, signal.SIGKILL)
    killed_at = len(epochs_of(job))
    wait_until(lambda: Job.objects.get(pk=job.pk).attempts == 2, 60, what="the second attempt")
    job = ended(job, 180)
    assert job.status == Status.SUCCEEDED, (job.error_detail, on_worker.log()[-4000:])
    epochs = epochs_of(job)
    keys = [(e["member"], e["epoch"]) for e in epochs]
    assert keys == [(0, n) for n in range(1, 15)], epochs  # every epoch once, none twice
    second = [e["epoch"] for e in epochs if e["attempt"] == 2]
    # The second attempt went on from the saved state: at most the epoch being trained when
    # the worker died (not yet checkpointed) was trained again.
    assert second and second[0] > 1 and second[0] >= killed_at - 1 and second[-1] == 14, (
        killed_at, epochs, on_worker.log()[-4000:])
    assert job.result["resumed"] and job.result["epochs"] == 14
    assert not checkpoints._stored(job.pk)  # deleted once the job ended



@pytest.mark.django_db(transaction=True)
def test_checking_a_run_in_the_web_process_imports_no_torch(esol):
    """clean_params asks the family registry for its schema; the family modules import
    torch, chemprop and scikit-learn only when a model is built."""
    import subprocess
    import sys

    from tests.processes import ROOT, database_url

    code = ("import django, sys; django.setup(); from workers import kinds; "
            f"kinds.get('training.train').clean({{'dataset_id': {esol.pk}, 'family': 'dmpnn', 'hparams': {{'depth': 4}}}}); "
            "kinds.get('training.train').clean({'dataset_id': %d, 'family': 'attentivefp'}); "
            "print(sorted(m for m in ('torch', 'chemprop', 'torch_geometric', 'sklearn') if m in sys.modules))" % esol.pk)
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "biofm_site.settings"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_in_chromium_upload_with_a_bad_row_train_watch_the_curve_grow_stop_and_register(
        on_worker, live_server, logged_in, tmp_path):  # noqa: F811 (logged_in is a fixture)
    """The whole path a chemist takes, on the real worker: upload a CSV with a
    bad row, start a D-MPNN run on the form, see the validation curve grow
    while it trains, stop it, and register the model it kept from the run page
    (a finished run's registration: test_training_pages.py)."""
    page, _client, user, errors = logged_in
    rows = esol_csv(120).decode().splitlines()
    rows.insert(5, "C1CC(,-1.0,100.0,train")  # an unclosed ring: RDKit's parse error, the row left out
    upload = tmp_path / "solubility.csv"
    upload.write_text("\n".join(rows) + "\n")

    page.goto(live_server.url + "/training/datasets/new/")
    page.set_input_files("input[name=file]", str(upload))
    page.click("main button[type=submit]")
    page.wait_for_selector("#preview")
    page.check("input[name=target_1]")  # logS, by its position in the header
    page.fill("input[name=name]", "esol-browser")
    page.click("main button[type=submit]")
    page.wait_for_selector("#row-errors")
    assert "SMILES Parse Error" in page.inner_text("#row-errors")
    dataset = Dataset.objects.get(owner=user)
    assert [e["row"] for e in dataset.row_errors] == [5]
    assert dataset.n_source_rows == 121 and dataset.n_rows >= 110  # the good rows kept (duplicates merged)

    page.goto(live_server.url + f"/training/runs/new/?dataset={dataset.pk}")
    page.select_option("select[name=family]", "dmpnn")
    # Long enough that it is still training whatever the machine's speed: the test stops it.
    page.fill("textarea[name=hparams]", json.dumps({**TINY_DMPNN, "max_epochs": 500, "patience": 500}))
    page.fill("input[name=targets]", "logS")
    page.click("main button[type=submit]")
    page.wait_for_url("**/training/runs/*/")
    points = "(((document.getElementById('metric-chart') || {}).data || [])[0] || {x: []}).x.length"
    page.wait_for_function(f"{points} >= 1", timeout=120_000)
    first = page.evaluate(points)
    page.wait_for_function(f"{points} > {first}", timeout=60_000)  # grown in place by the next poll
    job = TrainingRun.objects.get(dataset=dataset).job
    assert Job.objects.get(pk=job.pk).status == Status.RUNNING

    # Cancelling keeps the best model so far, which registers like a finished one, marked cancelled.
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#job-progress button.danger")
    page.wait_for_selector("#run-cancelled", timeout=120_000)  # the page reloads once the run has ended
    job = Job.objects.get(pk=job.pk)
    assert job.status == Status.CANCELLED and job.result["cancelled"], (job.error_detail, on_worker.log()[-3000:])
    page.fill("#register input[name=name]", "solubility-esol")
    page.click("#register button[type=submit]")
    page.wait_for_url("**/training/models/*/")
    name = page.inner_text("#model-name")
    assert name.startswith("solubility-esol v1 (D-MPNN") and "RMSE" in name, name
    assert not errors, errors
