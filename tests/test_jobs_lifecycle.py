"""The job lifecycle in-process: submission checks, quotas, the concurrency
limit, claims and leases, and how attempts end."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import run_job_now
from workers import lifecycle
from workers.errors import ParamsError
from workers.models import ErrorKind, Job, Status
from workers.quotas import QuotaExceeded, labs_usage, month_bounds

pytestmark = pytest.mark.django_db


def test_unknown_kind_and_bad_params_name_the_field(user):
    with pytest.raises(ParamsError) as err:
        lifecycle.submit(user, "no.such.kind", {})
    assert err.value.field == "kind"
    with pytest.raises(ParamsError) as err:
        lifecycle.submit(user, "test.sleep", {"seconds": "soon"})
    assert err.value.field == "seconds"


def test_submit_dispatches_up_to_the_running_limit(user, no_broker, django_capture_on_commit_callbacks):
    user.profile.max_running_jobs = 2
    user.profile.save()
    with django_capture_on_commit_callbacks(execute=True):
        jobs = [lifecycle.submit(user, "test.sleep", {"seconds": 0}) for _ in range(3)]
    assert [j.pk for j in no_broker] == [jobs[0].pk, jobs[1].pk]
    waiting = Job.objects.get(pk=jobs[2].pk)
    assert waiting.status == Status.QUEUED and waiting.dispatched_at is None and waiting.waiting_for_slot

    # When a job ends, the next waiting one is sent.
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.cancel(Job.objects.get(pk=jobs[0].pk))
    assert no_broker[-1].pk == jobs[2].pk


def test_quota_refuses_submission_and_says_when_it_resets(user):
    lab = user.profile.default_lab
    lab.cpu_hours_per_month = 1
    lab.gpu_hours_per_month = 1
    lab.save()
    Job.objects.create(kind="test.sleep", owner=user, lab=lab, queue="cpu", hardware="cpu",
                       status=Status.SUCCEEDED, started_at=timezone.now(), run_seconds=3700)
    with pytest.raises(QuotaExceeded) as err:
        lifecycle.submit(user, "test.sleep", {"seconds": 0})
    _, reset = month_bounds()
    assert f"{reset:%d %B %Y}" in str(err.value)
    assert "CPU" in str(err.value)
    # GPU hours are counted apart: the 1.03 CPU hours used leave the 1 GPU hour free.
    gpu_job = lifecycle.submit(user, "test.sleep_gpu", {"seconds": 0})
    assert gpu_job.queue == "gpu"


def test_gpu_usage_is_held_to_the_gpu_quota(user):
    # The quotas differ, so a GPU job measured against the CPU quota would pass.
    lab = user.profile.default_lab
    lab.cpu_hours_per_month = 5
    lab.gpu_hours_per_month = 1
    lab.save()
    Job.objects.create(kind="test.sleep_gpu", owner=user, lab=lab, queue="gpu", hardware="gpu",
                       status=Status.SUCCEEDED, started_at=timezone.now(), run_seconds=3700)
    with pytest.raises(QuotaExceeded) as err:
        lifecycle.submit(user, "test.sleep_gpu", {"seconds": 0})
    assert "1.0 of its 1 GPU hours" in str(err.value) and "CPU" not in str(err.value)
    assert lifecycle.submit(user, "test.sleep", {"seconds": 0}).queue == "cpu"


def _usage(lab):
    return labs_usage([lab])[lab.pk]


def test_hours_count_against_the_hardware_the_compute_reported(user):
    # A CPU-queue job on a worker that guesses "cpu", whose compute says "gpu".
    job = lifecycle.submit(user, "test.sleep", {"seconds": 0.2, "steps": 2, "hardware": "gpu"})
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED and job.hardware == "gpu" and job.run_seconds > 0
    assert [a.hardware for a in job.attempt_log.all()] == ["gpu"]
    usage = _usage(job.lab)
    assert usage["gpu"].used_hours == pytest.approx(job.run_seconds / 3600)
    assert usage["cpu"].used_hours == 0


def test_hours_count_against_the_workers_hardware_by_default(user, settings):
    # Neither the queue (cpu) nor a compute that says nothing decides: the worker does.
    settings.BIOFM_WORKER_HARDWARE = "gpu"
    job = lifecycle.submit(user, "test.sleep", {"seconds": 0.1, "steps": 1})
    run_job_now(job)
    job.refresh_from_db()
    assert job.hardware == "gpu" and _usage(job.lab)["gpu"].used_hours > 0
    settings.BIOFM_WORKER_HARDWARE = "cpu"
    other = lifecycle.submit(user, "test.sleep_gpu", {"seconds": 0.1, "steps": 1})
    run_job_now(other)
    other.refresh_from_db()
    assert other.queue == "gpu" and other.hardware == "cpu"
    assert _usage(job.lab)["cpu"].used_hours == pytest.approx(other.run_seconds / 3600)


def test_a_gpu_queue_submission_is_refused_by_the_gpu_quota_alone(user):
    """The rule (README, Quotas): a submission is checked against the
    hardware its queue asks for, whatever its earlier jobs ran on."""
    lab = user.profile.default_lab
    lab.cpu_hours_per_month = 1
    lab.gpu_hours_per_month = 1
    lab.save()
    # GPU-queue jobs that fell back to the CPU used up the CPU hours, not the GPU's.
    Job.objects.create(kind="test.sleep_gpu", owner=user, lab=lab, queue="gpu", hardware="cpu",
                       status=Status.SUCCEEDED, started_at=timezone.now(), run_seconds=3700)
    assert lifecycle.submit(user, "test.sleep_gpu", {"seconds": 0}).queue == "gpu"
    with pytest.raises(QuotaExceeded, match="CPU hours"):
        lifecycle.submit(user, "test.sleep", {"seconds": 0})
    # Once the GPU hours are used up, a GPU-queue job is refused, though it
    # might have run on a CPU and CPU hours were left.
    lab.cpu_hours_per_month = None
    lab.save()
    Job.objects.create(kind="test.sleep_gpu", owner=user, lab=lab, queue="gpu", hardware="gpu",
                       status=Status.SUCCEEDED, started_at=timezone.now(), run_seconds=3700)
    with pytest.raises(QuotaExceeded, match="GPU hours"):
        lifecycle.submit(user, "test.sleep_gpu", {"seconds": 0})
    assert lifecycle.submit(user, "test.sleep", {"seconds": 0}).queue == "cpu"


def test_worker_hardware_asks_torch_only_once_it_is_loaded(settings, monkeypatch):
    import sys

    import torch

    from workers.runtime import worker_hardware

    settings.BIOFM_WORKER_HARDWARE = ""
    assert worker_hardware() == ("gpu" if torch.cuda.is_available() else "cpu")
    monkeypatch.delitem(sys.modules, "torch")  # a worker that never loaded it
    assert worker_hardware() == "cpu"
    assert "torch" not in sys.modules
    settings.BIOFM_WORKER_HARDWARE = "gpu"
    assert worker_hardware() == "gpu"


def test_set_hardware_takes_only_cpu_or_gpu(tmp_path):
    from workers.context import LocalContext, hardware_of_device

    ctx = LocalContext(tmp_path)
    assert ctx.hardware == "cpu"
    ctx.set_hardware("gpu")
    assert ctx.hardware == "gpu"
    with pytest.raises(ValueError, match="cuda"):
        ctx.set_hardware("cuda")
    assert [hardware_of_device(d) for d in ("cuda", "cuda:1", "cpu", "mps")] == ["gpu", "gpu", "cpu", "cpu"]


def test_usage_from_last_month_does_not_count(user):
    lab = user.profile.default_lab
    lab.cpu_hours_per_month = 1
    lab.save()
    start, _ = month_bounds()
    Job.objects.create(kind="test.sleep", owner=user, lab=lab, queue="cpu", hardware="cpu",
                       status=Status.SUCCEEDED, started_at=start - timedelta(hours=1), run_seconds=7200)
    lifecycle.submit(user, "test.sleep", {"seconds": 0})


def test_claim_is_exclusive_while_the_lease_lives(user):
    job = lifecycle.submit(user, "test.sleep", {"seconds": 0})
    first = lifecycle.claim(job.pk, host="a", task_id="t1")
    assert first.state == "claimed"
    second = lifecycle.claim(job.pk, host="b", task_id="t1")
    assert second.state == "busy" and 0 < second.wait_seconds <= lifecycle.lease_seconds()
    # Once the lease lapses (the first worker vanished), a redelivery takes over.
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    third = lifecycle.claim(job.pk, host="b", task_id="t1")
    assert third.state == "claimed" and third.job.attempts == 2
    # The first attempt has lost its claim: it cannot write progress or a result.
    assert lifecycle.report_progress(job.pk, first.token, 50, "x") == (False, False)
    assert lifecycle.finish(job.pk, first.token, Status.SUCCEEDED, result={"stale": True}) is False
    assert Job.objects.get(pk=job.pk).status == Status.RUNNING


def test_losing_attempt_result_files_are_discarded(user, tmp_path, settings):
    job = lifecycle.submit(user, "test.sleep", {"seconds": 0})
    first = lifecycle.claim(job.pk, host="a", task_id="t")
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now())
    second = lifecycle.claim(job.pk, host="b", task_id="t")
    path = tmp_path / "r.txt"
    path.write_text("half")
    assert not lifecycle.finish(job.pk, first.token, Status.SUCCEEDED,
                                files={"r.txt": (str(path), "text/plain")})
    # Nothing of the losing attempt is left in storage (rglob of a missing
    # folder yields nothing, so this holds whether or not it was ever written).
    assert [p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()] == []
    assert lifecycle.finish(job.pk, second.token, Status.SUCCEEDED,
                            files={"r.txt": (str(path), "text/plain")})
    stored = Job.objects.get(pk=job.pk).files.get()
    assert stored.file.read() == b"half" and stored.attempt_token == second.token
    assert [p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()] == [settings.MEDIA_ROOT / stored.file.name]


def test_worker_lost_requeues_and_attempts_are_bounded(user):
    job = lifecycle.submit(user, "test.sleep", {"seconds": 0})
    for attempt in range(3):
        claim = lifecycle.claim(job.pk, host="a", task_id="t")
        assert claim.state == "claimed"
        assert lifecycle.requeue_after_worker_lost(job.pk, "t", "the worker stopped")
        assert Job.objects.get(pk=job.pk).status == Status.QUEUED
    final = lifecycle.claim(job.pk, host="a", task_id="t")
    job.refresh_from_db()
    assert final.state == "done"
    assert job.status == Status.FAILED and job.error_kind == ErrorKind.SYSTEM
    assert "3 attempts" in job.error_message


def test_cancel_of_waiting_job_is_immediate_and_claim_then_does_nothing(user):
    job = lifecycle.submit(user, "test.sleep", {"seconds": 0})
    lifecycle.cancel(job)
    job.refresh_from_db()
    assert job.status == Status.CANCELLED and job.finished_at
    assert lifecycle.claim(job.pk, host="a", task_id="t").state == "done"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fail, status, error_kind, text", [
    (None, Status.SUCCEEDED, "", ""),
    ("input", Status.FAILED, ErrorKind.INPUT, "marked bad"),
    ("system", Status.FAILED, ErrorKind.SYSTEM, "Internal error (RuntimeError)"),
])
def test_attempt_outcomes(user, fail, status, error_kind, text):
    params = {"seconds": 0, "steps": 2}
    if fail:
        params["fail"] = fail
    job = lifecycle.submit(user, "test.sleep", params)
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == status
    assert job.error_kind == error_kind
    assert text in job.error_message
    if fail == "system":
        assert "RuntimeError: boom" in job.error_detail  # for operators only
        assert "boom" not in job.error_message
    assert job.files.count() == (1 if status == Status.SUCCEEDED else 0)


@pytest.mark.django_db(transaction=True)
def test_rerun_creates_a_new_job_with_the_same_parameters(user):
    job = lifecycle.submit(user, "test.sleep", {"seconds": 0.1, "steps": 2})
    run_job_now(job)
    new = lifecycle.rerun(Job.objects.get(pk=job.pk), user)
    assert new.pk != job.pk and new.params == job.params and new.rerun_of_id == job.pk
    assert new.status == Status.QUEUED


# --- Sending tasks by name; the layers of workers/ ----------------------------

def test_messages_sent_by_name_carry_the_queue_task_id_and_time_limits(user, django_capture_on_commit_callbacks):
    """lifecycle sends `workers.run_job` and `workers.send_job_email` by name
    (it imports no tasks): the messages in Redis are what the worker expects."""
    import ast
    import json

    import redis
    from django.conf import settings

    from workers import kinds

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            job = lifecycle.submit(user, "test.sleep", {"seconds": 0})
        job.refresh_from_db()
        [raw] = client.lrange("cpu", 0, -1)
        headers = json.loads(raw)["headers"]
        kind = kinds.get("test.sleep")
        assert headers["task"] == "workers.run_job"
        assert headers["id"] == job.celery_task_id
        assert ast.literal_eval(headers["argsrepr"]) == [str(job.pk)]
        assert headers["timelimit"] == [kind.time_limit, kind.soft_time_limit]

        with django_capture_on_commit_callbacks(execute=True):
            lifecycle.cancel(job)
        [raw] = client.lrange("notify", 0, -1)
        headers = json.loads(raw)["headers"]
        assert headers["task"] == "workers.send_job_email"
        assert ast.literal_eval(headers["argsrepr"]) == [str(job.pk)]
    finally:
        client.flushdb()


def _workers_imports() -> dict[str, set[str]]:
    """Module -> the workers modules it imports, at the top or inside functions."""
    import ast
    from pathlib import Path

    package = Path(lifecycle.__file__).parent
    modules = {path.stem for path in package.glob("*.py")}
    graph = {}
    for path in package.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level == 1 and not base or node.level == 0 and base == "workers":
                    found |= {alias.name for alias in node.names if alias.name in modules}
                elif node.level == 1:
                    found.add(base.split(".")[0])
                elif base.startswith("workers."):
                    found.add(base.split(".")[1])
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("workers.")}
        graph[path.stem] = found & modules - {path.stem}
    return graph


def test_workers_modules_form_layers_without_import_circles():
    """compute-facing (errors, kinds, context), then models, then the
    lifecycle, then what runs it (runtime, tasks, reconcile, views, api, admin)."""
    graph = _workers_imports()
    assert "tasks" not in graph["lifecycle"] and "runtime" not in graph["lifecycle"], graph["lifecycle"]
    upper = {"tasks", "runtime", "reconcile", "views", "api", "admin", "health", "urls"}
    for lower in ("errors", "kinds", "context", "models", "quotas", "access", "lifecycle"):
        assert not graph[lower] & upper, f"{lower} imports {sorted(graph[lower] & upper)}"

    def visit(module, path):
        for imported in graph[module]:
            assert imported not in path, "import circle: " + " -> ".join([*path, imported])
            visit(imported, [*path, imported])

    for module in graph:
        visit(module, [module])


@pytest.mark.django_db(transaction=True)
def test_migration_charges_jobs_that_ran_before_to_their_queue_as_before(user):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from workers.models import Attempt

    before = [("workers", "0006_lab_scoped_fields_and_quota_index")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    executor.loader.build_graph()
    old = executor.loader.project_state(before).apps
    OldJob, OldAttempt = old.get_model("workers", "Job"), old.get_model("workers", "Attempt")
    lab_id = user.profile.default_lab_id
    ran = OldJob.objects.create(kind="test.sleep_gpu", owner_id=user.pk, lab_id=lab_id, queue="gpu",
                                status="succeeded", started_at=timezone.now(), run_seconds=60)
    OldAttempt.objects.create(job=ran, number=1, token="t-old", queue="gpu")
    waiting = OldJob.objects.create(kind="test.sleep", owner_id=user.pk, lab_id=lab_id, queue="cpu")
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert Job.objects.get(pk=ran.pk).hardware == "gpu"
    assert Attempt.objects.get(token="t-old").hardware == "gpu"
    assert Job.objects.get(pk=waiting.pk).hardware == ""  # charged to what it will run on
    assert labs_usage([user.profile.default_lab])[lab_id]["gpu"].used_hours == pytest.approx(60 / 3600)


# --- Keeping what a cancelled job had; saved state for the next attempt ----------

@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("keep", [False, True])
def test_a_cancelled_job_publishes_its_files_only_when_its_runner_kept_a_result(user, monkeypatch, keep):
    from workers.runtime import DbJobContext

    params = {"seconds": 0, "steps": 5, **({"keep_on_cancel": True} if keep else {})}
    job = lifecycle.submit(user, "test.sleep", params)
    seen = []

    def cancel_after_two(self):
        seen.append(1)
        return len(seen) > 2

    monkeypatch.setattr(DbJobContext, "cancel_requested", cancel_after_two)
    assert run_job_now(job) == Status.CANCELLED
    job.refresh_from_db()
    assert job.status == Status.CANCELLED
    if keep:
        assert job.result == {"steps_done": 3} and "kept" in job.error_message
        assert job.files.get().file.read() == b"3 of 5 steps\n"
    else:
        assert job.result == {} and job.files.count() == 0


def test_checkpoints_keep_the_newest_state_and_go_when_the_job_ends(user, tmp_path, settings,
                                                                     django_capture_on_commit_callbacks):
    import zipfile

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from workers import checkpoints

    job = lifecycle.submit(user, "test.sleep", {"seconds": 0})
    work = tmp_path / "work"
    (work / "members" / "0").mkdir(parents=True)
    (work / "members" / "0" / "weights.bin").write_bytes(b"epoch 1")
    assert not checkpoints.restore(job.pk, tmp_path / "nothing")
    checkpoints.save(job.pk, work)
    (work / "members" / "0" / "weights.bin").write_bytes(b"epoch 2")
    (work / "done.json").write_text("{}")
    checkpoints.save(job.pk, work)
    # The older state went once the newer one was stored.
    assert len(default_storage.listdir(checkpoints.folder_of(job.pk))[1]) == 1
    back = tmp_path / "back"
    assert checkpoints.restore(job.pk, back)
    assert (back / "members" / "0" / "weights.bin").read_bytes() == b"epoch 2"
    assert (back / "done.json").read_text() == "{}"

    # A newer zip cut short (its worker killed while storing it) gives way to the last whole one.
    name = checkpoints._stored(job.pk)[-1]
    cut = f"{checkpoints.folder_of(job.pk)}/state-{checkpoints._number(name.rsplit('/', 1)[1]) + 1}.zip"
    default_storage.save(cut, ContentFile(default_storage.open(name).read()[:40]))
    again = tmp_path / "again-cut"
    assert checkpoints.restore(job.pk, again)
    assert (again / "members" / "0" / "weights.bin").read_bytes() == b"epoch 2"

    # A zip that would write outside the folder is not restored.
    other = lifecycle.submit(user, "test.sleep", {"seconds": 0})
    buffer = tmp_path / "evil.zip"
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("../escape.txt", "x")
    default_storage.save(f"{checkpoints.folder_of(other.pk)}/state-5.zip", ContentFile(buffer.read_bytes()))
    assert not checkpoints.restore(other.pk, tmp_path / "evil")
    assert not (tmp_path / "escape.txt").exists()

    # However a job ends, its saved state goes with it.
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.cancel(job)
    assert not default_storage.exists(checkpoints.folder_of(job.pk))
    assert not checkpoints.restore(job.pk, tmp_path / "again")
