"""The reconciler (workers/reconcile.py): jobs the broker or a worker machine
let down get going again with nobody touching them.

The end-to-end tests run real processes: a redis-server of their own (stopped
and started again; never the shared one), a Celery worker and `celery beat`
sending the project's schedule. The others call `reconcile()` against the real
Redis of the test run and look at the messages it holds."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta

import pytest
import redis
from celery import Celery
from django.conf import settings as django_settings
from django.utils import timezone

from biofm_site.celery import app as celery_app
from tests.processes import BeatProcess, RedisServer, WorkerProcess, flush_redis, wait_until
from workers import lifecycle, reconcile
from workers.models import Job, Status

pytestmark = pytest.mark.django_db(transaction=True)

SLEEP = {"seconds": 0, "steps": 1}


def _redis():
    return redis.Redis.from_url(django_settings.REDIS_URL)


def messages(queue: str = "cpu") -> list[dict]:
    return [json.loads(raw) for raw in _redis().lrange(queue, 0, -1)]


def task_ids(queue: str = "cpu") -> list[str]:
    return [m["headers"]["id"] for m in messages(queue)]


def _age(job: Job, seconds: float, **fields) -> None:
    """Make a job look as if nothing happened to it for `seconds`."""
    then = timezone.now() - timedelta(seconds=seconds)
    Job.objects.filter(pk=job.pk).update(updated_at=then, **fields)


@pytest.fixture
def clean_redis():
    flush_redis()
    yield
    flush_redis()


# --- End to end -------------------------------------------------------------

@pytest.fixture
def own_broker(tmp_path):
    """A redis-server of the test's own, and the lifecycle sending to it: a
    Celery app with the project's settings but that broker is made current
    (the lifecycle sends with `celery.current_app`)."""
    server = RedisServer(tmp_path).start()
    app = Celery("biofm-own-broker", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.broker_url = server.url
    app.set_current()
    yield server
    celery_app.set_current()
    app.close()
    server.stop()


@pytest.mark.e2e
def test_broker_down_at_submission_the_job_runs_once_it_is_back(own_broker, user, tmp_path):
    env = {"REDIS_URL": own_broker.url, "BIOFM_RECONCILE_INTERVAL": "1"}
    worker = WorkerProcess(tmp_path, concurrency=1, env=env).start()
    beat = BeatProcess(tmp_path, env={**env, "BIOFM_VAR_DIR": str(tmp_path / "beat-var")}).start()
    try:
        own_broker.stop()
        job = lifecycle.submit(user, "test.sleep", SLEEP)
        job.refresh_from_db()
        assert job.status == Status.QUEUED and job.dispatched_at is None
        assert job.progress_message == "The job queue is unreachable; retrying soon"

        time.sleep(3)  # beat and the worker notice the outage
        own_broker.start()
        wait_until(lambda: Job.objects.get(pk=job.pk).status == Status.SUCCEEDED, 90,
                   what=f"the job to run after the broker came back\n--- worker:\n{worker.log()}"
                        f"\n--- beat:\n{beat.log()}")
        job.refresh_from_db()
        assert job.attempts == 1
        assert "Sending due task reconcile-jobs (workers.reconcile_jobs)" in beat.log()
        # A pass a second, and none of them is in the worker's log: only what they did.
        log = worker.log()
        assert "Task workers.run_job[" in log and "Task workers.reconcile_jobs[" not in log, log
        assert f"reconcile: {{'dispatched': ['{job.pk}']}}" in log, log
    finally:
        beat.stop()
        worker.stop()


@pytest.mark.e2e
def test_a_lost_worker_machine_s_job_is_taken_over_without_the_visibility_timeout(user, tmp_path, clean_redis,
                                                                                  settings):
    """The whole worker dies (nobody records it) and Redis would redeliver the
    message only after the visibility timeout (13 h). The reconciler sees the
    lease lapsed and requeues the job; the next worker runs it."""
    settings.BIOFM_JOB_LEASE_SECONDS = 2
    env = {"BIOFM_RECONCILE_INTERVAL": "1", "BIOFM_RECONCILE_STALE_AFTER": "2"}
    marker = tmp_path / "marker.txt"
    first = WorkerProcess(tmp_path, concurrency=1, env=env).start()
    try:
        job = lifecycle.submit(user, "test.sleep", {"seconds": 3, "steps": 15, "marker": str(marker)})
        wait_until(lambda: Job.objects.get(pk=job.pk).progress >= 10, 30, what="progress")
        first.kill_all()
    finally:
        first.stop()
    assert Job.objects.get(pk=job.pk).status == Status.RUNNING
    second = WorkerProcess(tmp_path, concurrency=1, env=env).start()
    beat = BeatProcess(tmp_path, env={**env, "BIOFM_VAR_DIR": str(tmp_path / "beat-var")}).start()
    try:
        wait_until(lambda: Job.objects.get(pk=job.pk).status == Status.SUCCEEDED, 60,
                   what=f"the job to finish on the second worker\n{second.log()}")
    finally:
        beat.stop()
        second.stop()
    job.refresh_from_db()
    assert job.attempts == 2
    assert [line.split()[0] for line in marker.read_text().splitlines()] == ["start", "start", "finish"]
    assert job.files.count() == 1


# --- 1. never sent ------------------------------------------------------------

def test_a_job_the_broker_was_down_for_is_sent_by_the_next_pass(user, clean_redis, monkeypatch):
    def broker_down(*args, **kwargs):
        raise OSError("Connection refused")

    with monkeypatch.context() as m:
        m.setattr(celery_app, "send_task", broker_down)
        job = lifecycle.submit(user, "test.sleep", SLEEP)
    job.refresh_from_db()
    assert job.dispatched_at is None and messages() == []

    report = reconcile.reconcile()

    job.refresh_from_db()
    assert report.dispatched == [str(job.pk)]
    assert job.dispatched_at is not None and job.progress_message == "Waiting for a worker"
    assert task_ids() == [job.celery_task_id]
    # A second pass finds nothing to do: the message is there.
    assert reconcile.reconcile().as_dict() == {}
    assert task_ids() == [job.celery_task_id]


def test_jobs_waiting_for_their_owner_s_running_limit_stay_waiting(user, clean_redis):
    user.profile.max_running_jobs = 1
    user.profile.save()
    first, second = (lifecycle.submit(user, "test.sleep", SLEEP) for _ in range(2))
    assert task_ids() == [Job.objects.get(pk=first.pk).celery_task_id]

    assert reconcile.reconcile().dispatched == []
    assert Job.objects.get(pk=second.pk).dispatched_at is None
    assert len(messages()) == 1


def test_a_broker_still_down_leaves_the_job_waiting(user, clean_redis, monkeypatch):
    monkeypatch.setattr(celery_app, "send_task", lambda *a, **k: (_ for _ in ()).throw(OSError("down")))
    job = lifecycle.submit(user, "test.sleep", SLEEP)
    assert reconcile.reconcile().dispatched == []
    job.refresh_from_db()
    assert job.dispatched_at is None and job.progress_message == "The job queue is unreachable; retrying soon"


def test_a_queued_job_whose_cancel_nobody_can_see_is_cancelled(user, no_broker):
    job = lifecycle.submit(user, "test.sleep", SLEEP)
    Job.objects.filter(pk=job.pk).update(dispatched_at=None, cancel_requested=True)
    assert reconcile.reconcile().cancelled == [str(job.pk)]
    assert Job.objects.get(pk=job.pk).status == Status.CANCELLED


# --- 2. sent, message lost ------------------------------------------------------

def test_a_job_whose_message_waits_in_the_queue_is_never_sent_again(user, clean_redis, settings):
    settings.BIOFM_RECONCILE_LOST_AFTER = 60
    job = lifecycle.submit(user, "test.sleep", SLEEP)
    job.refresh_from_db()
    # Hours behind other jobs in a busy queue: old, but its message is there.
    _age(job, 5 * 3600, dispatched_at=timezone.now() - timedelta(hours=5))
    report = reconcile.reconcile()
    assert report.resent == [] and report.dispatched == []
    assert task_ids() == [job.celery_task_id]


def test_a_job_on_a_worker_is_never_sent_again(user, clean_redis, settings):
    """A message a worker holds (reserved, or a retry waiting for its
    countdown) is in Redis's unacknowledged set, not in the queue."""
    settings.BIOFM_RECONCILE_LOST_AFTER = 60
    job = lifecycle.submit(user, "test.sleep", SLEEP)
    job.refresh_from_db()
    client = _redis()
    raw = client.rpop("cpu")
    client.hset("unacked", "delivery-tag-1", json.dumps([json.loads(raw), "", "cpu"]))
    _age(job, 3600)
    assert reconcile.reconcile().resent == []
    assert messages() == [] and Job.objects.get(pk=job.pk).celery_task_id == job.celery_task_id


def test_a_lost_message_is_sent_again_once_the_job_is_quiet_long_enough(user, clean_redis, settings):
    settings.BIOFM_RECONCILE_LOST_AFTER = 60
    job = lifecycle.submit(user, "test.sleep", SLEEP)
    job.refresh_from_db()
    flush_redis()  # Redis lost its data

    # Just sent (or a worker between taking the message and claiming it): wait.
    assert reconcile.reconcile().resent == []
    assert messages() == []

    _age(job, 120)
    report = reconcile.reconcile()
    fresh = Job.objects.get(pk=job.pk)
    assert report.resent == [str(job.pk)] and report.dispatched == [str(job.pk)]
    assert fresh.status == Status.QUEUED and fresh.dispatched_at is not None
    assert fresh.celery_task_id != job.celery_task_id
    assert task_ids() == [fresh.celery_task_id]


def test_nothing_is_sent_again_when_the_broker_cannot_say(user, clean_redis, settings, monkeypatch):
    settings.BIOFM_RECONCILE_LOST_AFTER = 60
    job = lifecycle.submit(user, "test.sleep", SLEEP)
    job.refresh_from_db()
    flush_redis()
    _age(job, 120)
    monkeypatch.setattr(reconcile.health, "task_ids_in_broker", lambda **kw: None)
    report = reconcile.reconcile()
    assert report.broker_unknown and report.resent == []
    assert Job.objects.get(pk=job.pk).celery_task_id == job.celery_task_id


def test_the_broker_listing_reads_redis_and_degrades_when_it_is_down(user, clean_redis, tmp_path):
    job = lifecycle.submit(user, "test.sleep", SLEEP)
    job.refresh_from_db()
    assert reconcile.health.task_ids_in_broker() == {job.celery_task_id}
    server = RedisServer(tmp_path).start()
    server.stop()
    down = Celery("biofm-reconcile-down", broker=server.url, set_as_current=False)
    assert reconcile.health.task_ids_in_broker(app=down) is None


# --- 3. running, lease long lapsed ----------------------------------------------

def _running(user, *, lapsed_for: float, attempts: int = 1, **fields) -> Job:
    job = lifecycle.submit(user, "test.sleep", SLEEP)
    Job.objects.filter(pk=job.pk).update(
        status=Status.RUNNING, claim_token=uuid.uuid4().hex, attempts=attempts, started_at=timezone.now(),
        lease_expires_at=timezone.now() - timedelta(seconds=lapsed_for), worker_host="gone", **fields)
    return Job.objects.get(pk=job.pk)


def test_a_running_job_whose_lease_lapsed_long_ago_is_requeued_and_sent(user, clean_redis, settings):
    settings.BIOFM_RECONCILE_STALE_AFTER = 300
    job = _running(user, lapsed_for=400)
    flush_redis()

    report = reconcile.reconcile()

    fresh = Job.objects.get(pk=job.pk)
    assert report.requeued == [str(job.pk)]
    assert fresh.status == Status.QUEUED and fresh.claim_token == "" and fresh.lease_expires_at is None
    assert fresh.celery_task_id != job.celery_task_id
    assert fresh.progress_message == "Requeued: its worker stopped renewing its lease"
    assert task_ids() == [fresh.celery_task_id]
    # The old attempt, should it wake up, has lost its claim.
    assert lifecycle.heartbeat(job.pk, job.claim_token, 1.0)[0] is False


def test_a_running_job_with_a_recent_lapse_is_left_to_its_redelivery(user, no_broker, settings):
    settings.BIOFM_RECONCILE_STALE_AFTER = 300
    recent = _running(user, lapsed_for=30)
    live = _running(user, lapsed_for=-30)
    assert reconcile.reconcile().requeued == []
    for job in (recent, live):
        assert Job.objects.get(pk=job.pk).claim_token == job.claim_token


def test_a_stale_job_out_of_attempts_fails_and_a_cancelled_one_ends(user, no_broker, settings):
    settings.BIOFM_RECONCILE_STALE_AFTER = 300
    spent = _running(user, lapsed_for=400, attempts=3)  # test.sleep: max_attempts=3
    cancelled = _running(user, lapsed_for=400, cancel_requested=True)
    report = reconcile.reconcile()
    assert report.failed == [str(spent.pk)] and report.cancelled == [str(cancelled.pk)]
    spent.refresh_from_db()
    assert spent.status == Status.FAILED and "Gave up after 3 attempts" in spent.error_message
    assert Job.objects.get(pk=cancelled.pk).status == Status.CANCELLED


# --- The schedule ------------------------------------------------------------

def test_beat_sends_the_reconciler_to_a_queue_a_worker_consumes():
    entry = django_settings.CELERY_BEAT_SCHEDULE["reconcile-jobs"]
    assert entry["task"] == reconcile.RECONCILE_TASK
    assert entry["schedule"] == django_settings.BIOFM_RECONCILE_INTERVAL
    assert entry["options"]["queue"] == "notify"
    celery_app.loader.import_default_modules()
    assert reconcile.RECONCILE_TASK in celery_app.tasks
