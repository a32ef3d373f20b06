"""Operators' view of time: each attempt's worker, wait in the queue and
phases (loading the model, computing, writing results), shown on the job's
admin page; the health view's workers with their queues and last heartbeat."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.conftest import run_job_now
from tests.processes import WorkerProcess, flush_redis, wait_until
from workers import health, lifecycle
from workers.context import LocalContext
from workers.models import Attempt, Job, Outcome, Status


def phases_of(attempt) -> dict[str, float]:
    return {p["name"]: p["seconds"] for p in attempt.phases}


@pytest.fixture
def operator(db, django_user_model):
    return django_user_model.objects.create_superuser(
        username="ops@example.org", email="ops@example.org", password="correct-horse-battery")


@pytest.fixture
def ops_client(client, operator):
    client.force_login(operator)
    return client


# --- Phases as compute code marks them (no database) -----------------------

def test_phases_never_overlap_and_the_rest_is_computing(tmp_path):
    ctx = LocalContext(tmp_path)
    started = time.monotonic()
    with ctx.phase("loading model"):
        time.sleep(0.2)
        with ctx.phase("downloading"):
            time.sleep(0.3)
    for _ in range(3):
        with ctx.phase("batch"):
            time.sleep(0.02)
    time.sleep(0.1)
    phases = ctx.phase_times(total_seconds=time.monotonic() - started)

    by_name = {p["name"]: p for p in phases}
    assert [p["name"] for p in phases] == ["loading model", "downloading", "batch", "computing"]
    # The nested phase's time is its own, not also the enclosing one's.
    assert 0.2 <= by_name["loading model"]["seconds"] < 0.45
    assert 0.3 <= by_name["downloading"]["seconds"] < 0.5
    assert by_name["batch"]["count"] == 3 and by_name["batch"]["seconds"] >= 0.06
    assert by_name["computing"]["seconds"] >= 0.1
    total = sum(p["seconds"] for p in phases)
    assert total == pytest.approx(time.monotonic() - started, abs=0.05)


def test_a_phase_left_by_an_exception_is_still_timed(tmp_path):
    ctx = LocalContext(tmp_path)
    with pytest.raises(ValueError):
        with ctx.phase("loading model"):
            time.sleep(0.05)
            raise ValueError("bad weights")
    [phase] = ctx.phase_times()
    assert phase["name"] == "loading model" and phase["seconds"] >= 0.05


# --- Attempt rows, in-process -------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_run_records_its_wait_and_phases(user, no_broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = lifecycle.submit(user, "test.sleep", {"seconds": 0.3, "steps": 3, "load_seconds": 0.4})
    Job.objects.filter(pk=job.pk).update(dispatched_at=timezone.now() - timedelta(seconds=5))
    run_job_now(job)

    job.refresh_from_db()
    attempt = job.attempt_log.get()
    assert job.status == Status.SUCCEEDED and attempt.outcome == Outcome.SUCCEEDED
    assert attempt.number == 1 and attempt.queue == "cpu" and attempt.worker
    assert attempt.hardware == job.hardware == "cpu"  # BIOFM_WORKER_HARDWARE unset, no CUDA here
    assert attempt.queued_at == job.dispatched_at
    assert 5 <= attempt.queue_seconds < 30
    assert attempt.claimed_at <= attempt.last_heartbeat_at <= attempt.ended_at
    phases = phases_of(attempt)
    assert list(phases) == ["loading model", "computing", "writing results"]
    assert 0.4 <= phases["loading model"] < 1.0
    assert 0.3 <= phases["computing"] < 1.0
    assert 0 <= phases["writing results"] < 1.0
    assert sum(phases.values()) <= attempt.duration_seconds() + 0.01


@pytest.mark.django_db(transaction=True)
def test_retries_are_one_attempt_each_and_wait_from_the_previous_end(user, no_broker):
    job = lifecycle.submit(user, "test.sleep", {"seconds": 0, "steps": 1, "fail": "transient"})
    run_job_now(job)  # eager: each retry runs at once, up to max_attempts (3)

    job.refresh_from_db()
    attempts = list(job.attempt_log.order_by("claimed_at"))
    assert job.status == Status.FAILED and "3 attempts" in job.error_message
    assert [a.outcome for a in attempts] == [Outcome.RETRIED, Outcome.RETRIED, Outcome.FAILED]
    assert [a.number for a in attempts] == [1, 2, 3]
    assert attempts[1].queued_at == attempts[0].ended_at
    assert attempts[2].queued_at == attempts[1].ended_at
    assert all("computing" in phases_of(a) for a in attempts)


def test_an_attempt_whose_lease_lapsed_is_closed_as_abandoned(user):
    job = lifecycle.submit(user, "test.sleep", {"seconds": 0})
    first = lifecycle.claim(job.pk, host="a", task_id="t", worker="cpu@a")
    lifecycle.heartbeat(job.pk, first.token, 1.0)
    beat = Attempt.objects.get(token=first.token).last_heartbeat_at
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    second = lifecycle.claim(job.pk, host="b", task_id="t", worker="cpu@b")

    old, new = Attempt.objects.get(token=first.token), Attempt.objects.get(token=second.token)
    assert old.outcome == Outcome.ABANDONED and old.ended_at == beat
    assert new.worker == "cpu@b" and new.number == 2 and new.queued_at == beat and new.ended_at is None
    # The first attempt's late result changes nothing, and says it lost its claim.
    assert not lifecycle.finish(job.pk, first.token, Status.SUCCEEDED, result={})
    assert Attempt.objects.get(token=first.token).outcome == Outcome.ABANDONED


def test_worker_lost_and_operator_stop_close_the_open_attempt(user):
    job = lifecycle.submit(user, "test.sleep", {"seconds": 0})
    lost = lifecycle.claim(job.pk, host="a", task_id="t")
    assert lifecycle.requeue_after_worker_lost(job.pk, "t", "killed")
    running = lifecycle.claim(job.pk, host="a", task_id="t")
    assert health.mark_failed(Job.objects.get(pk=job.pk))

    assert Attempt.objects.get(token=lost.token).outcome == Outcome.WORKER_LOST
    stopped = Attempt.objects.get(token=running.token)
    assert stopped.outcome == Outcome.STOPPED and stopped.ended_at is not None
    # The worker notices later: its phases are still kept, its outcome stays.
    lifecycle.end_attempt(job.pk, running.token, Outcome.LOST_CLAIM, [{"name": "computing", "seconds": 2.0, "count": 1}])
    stopped.refresh_from_db()
    assert stopped.outcome == Outcome.STOPPED and phases_of(stopped) == {"computing": 2.0}


# --- The admin --------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_job_admin_page_shows_each_attempt_with_its_phases(ops_client, user, no_broker):
    job = lifecycle.submit(user, "test.sleep", {"seconds": 0.1, "steps": 1, "load_seconds": 0.2})
    run_job_now(job)
    attempt = Job.objects.get(pk=job.pk).attempt_log.get()

    page = ops_client.get(reverse("admin:workers_job_change", args=[job.pk])).content.decode()

    assert "attempts and their phases" in page.lower()
    assert attempt.worker in page
    for name in ("loading model", "computing", "writing results"):
        assert f'data-phase="{name}"' in page
    loading = phases_of(attempt)["loading model"]
    assert f"loading model: {loading:.1f} s" in page
    assert "succeeded" in page


@pytest.mark.django_db(transaction=True)
def test_attempts_list_compares_attempts_across_jobs_and_is_read_only(ops_client, user, no_broker):
    job = lifecycle.submit(user, "test.sleep", {"seconds": 0, "steps": 1, "load_seconds": 0.1})
    run_job_now(job)
    attempt = Attempt.objects.get(job=job)

    response = ops_client.get(reverse("admin:workers_attempt_changelist") + "?outcome__exact=succeeded")
    assert [a.pk for a in response.context["cl"].result_list] == [attempt.pk]
    assert f"loading model {attempt.phases[0]['seconds']:.1f} s" in response.content.decode()
    assert ops_client.get(reverse("admin:workers_attempt_add")).status_code == 403
    detail = ops_client.get(reverse("admin:workers_attempt_change", args=[attempt.pk]))
    assert detail.status_code == 200 and not detail.context["adminform"].form.fields


def test_health_lists_silent_workers_from_their_attempts(ops_client, user, monkeypatch):
    from celery import Celery

    # A Celery app that reaches no worker: every worker is silent.
    app = Celery("biofm-attempts-test", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.broker_transport_options = {"global_keyprefix": "biofm-test-attempts-nobody:"}
    monkeypatch.setattr(health, "celery_app", app)
    job = lifecycle.submit(user, "test.sleep", {"seconds": 0})
    claim = lifecycle.claim(job.pk, host="h", task_id="t", worker="gpu@gone", queue="gpu")
    Attempt.objects.filter(token=claim.token).update(last_heartbeat_at=timezone.now() - timedelta(hours=2))
    old = lifecycle.claim(lifecycle.submit(user, "test.sleep", {"seconds": 0}).pk,
                          host="h", task_id="t2", worker="cpu@long-gone")
    Attempt.objects.filter(token=old.token).update(last_heartbeat_at=timezone.now() - timedelta(days=3))
    try:
        response = ops_client.get(reverse("admin:workers_health"))
    finally:
        app.close()

    silent = response.context["health"].silent_workers
    assert [(w.hostname, w.queues) for w in silent] == [("gpu@gone", ("gpu",))]
    page = response.content.decode()
    assert 'data-worker="gpu@gone"' in page and "2\xa0hours ago" in page
    assert "long-gone" not in page


# --- A real worker ------------------------------------------------------------

@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_real_worker_records_phases_and_health_shows_its_queues_and_heartbeat(
        ops_client, user, settings, tmp_path):
    settings.BIOFM_JOB_LEASE_SECONDS = 3  # a heartbeat every second
    flush_redis()
    worker = WorkerProcess(tmp_path, concurrency=1, queues="cpu,notify").start()
    try:
        job = lifecycle.submit(user, "test.sleep", {"seconds": 1.5, "steps": 3, "load_seconds": 0.5})
        wait_until(lambda: Job.objects.get(pk=job.pk).status == Status.SUCCEEDED, 60, what="success")
        response = ops_client.get(reverse("admin:workers_health"))
    finally:
        worker.stop()

    attempt = Job.objects.get(pk=job.pk).attempt_log.get()
    phases = phases_of(attempt)
    assert attempt.outcome == Outcome.SUCCEEDED and attempt.queue == "cpu"
    assert list(phases) == ["loading model", "computing", "writing results"]
    assert phases["loading model"] >= 0.5 and phases["computing"] >= 1.5
    assert attempt.queue_seconds is not None and attempt.queue_seconds >= 0
    # The attempt names the worker as Celery's ping does.
    [seen] = [w for w in response.context["health"].workers.workers if w.hostname == attempt.worker]
    assert seen.queues == ("cpu", "notify")
    assert seen.last_heartbeat == attempt.last_heartbeat_at
    assert attempt.last_heartbeat_at > attempt.claimed_at  # renewed while it ran
    page = response.content.decode()
    assert f'data-worker="{attempt.worker}"' in page
    assert "cpu, notify" in page
