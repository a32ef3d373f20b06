"""The job lifecycle on a real Celery worker process and Redis: a worker killed
mid-job, cancellation while running, the per-user concurrency limit.

These use the test-only `test.sleep` kind (workers/testing_kinds.py), whose
length and progress steps the tests control."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.processes import WorkerProcess, flush_redis, wait_until
from workers import lifecycle
from workers.models import Job, Status

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_env(settings, tmp_path):
    settings.BIOFM_JOB_LEASE_SECONDS = 4
    email_dir = tmp_path / "mail"
    email_dir.mkdir()
    flush_redis()
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "BIOFM_EMAIL_FILE_PATH": str(email_dir),
    }, email_dir


@pytest.fixture
def worker(worker_env, tmp_path):
    env, _ = worker_env
    proc = WorkerProcess(tmp_path, concurrency=2, env=env).start()
    yield proc
    proc.stop()


def status_of(job) -> str:
    return Job.objects.values_list("status", flat=True).get(pk=job.pk)


def sleep_job(user, seconds, steps, marker=None, **extra):
    params = {"seconds": seconds, "steps": steps, **extra}
    if marker:
        params["marker"] = str(marker)
    return lifecycle.submit(user, "test.sleep", params)


def test_job_runs_and_succeeds_on_real_worker(worker, user):
    job = sleep_job(user, 0.5, 5)
    wait_until(lambda: status_of(job) == Status.SUCCEEDED, 30, what="success")
    job.refresh_from_db()
    assert job.attempts == 1
    assert job.progress == 100
    assert job.worker_host
    assert job.run_seconds > 0.3
    assert list(job.files.values_list("name", flat=True)) == ["result.txt"]
    assert job.files.get().file.read() == b"slept 0.5 s\n"


def test_pool_process_killed_mid_job_is_requeued_and_finishes_once(worker, worker_env, user, tmp_path):
    _, email_dir = worker_env
    marker = tmp_path / "marker.txt"
    job = sleep_job(user, 6, 30, marker=marker)
    wait_until(lambda: Job.objects.get(pk=job.pk).progress >= 10, 30, what="progress")
    pid = int(marker.read_text().split()[1])
    os.kill(pid, signal.SIGKILL)

    # The parent notices the lost child and puts the job back in the queue.
    wait_until(lambda: Job.objects.get(pk=job.pk).attempts == 2, 30, what="second attempt")
    wait_until(lambda: status_of(job) == Status.SUCCEEDED, 60, what="success after kill")
    job.refresh_from_db()
    lines = marker.read_text().split("\n")
    assert [l.split()[0] for l in lines if l] == ["start", "start", "finish"]
    assert job.attempts == 2
    assert job.files.count() == 1
    # One email for one ending.
    wait_until(lambda: len(list(email_dir.iterdir())) >= 1, 20, what="email")
    time.sleep(1)
    assert len(list(email_dir.iterdir())) == 1


def test_whole_worker_killed_job_is_taken_over_by_a_new_worker(worker_env, user, tmp_path, settings):
    env, _ = worker_env
    # The broker hands an unacknowledged message to another worker only after
    # the visibility timeout: make it short here (production: above the hard limit).
    env = {**env, "BIOFM_VISIBILITY_TIMEOUT": "8", "BIOFM_UNACKED_RESTORE_INTERVAL": "1",
           "BIOFM_UNACKED_RESTORE_THROTTLE": "1"}
    marker = tmp_path / "marker.txt"
    first = WorkerProcess(tmp_path, concurrency=1, env=env).start()
    try:
        job = sleep_job(user, 4, 20, marker=marker)
        wait_until(lambda: Job.objects.get(pk=job.pk).progress >= 10, 30, what="progress")
        first.kill_all()
    finally:
        first.stop()
    assert status_of(job) == Status.RUNNING  # nobody could record the crash
    second = WorkerProcess(tmp_path, concurrency=1, env=env).start()
    try:
        wait_until(lambda: status_of(job) == Status.SUCCEEDED, 90, what="success on the new worker")
    finally:
        second.stop()
    job.refresh_from_db()
    assert job.attempts == 2
    assert [l.split()[0] for l in marker.read_text().split("\n") if l] == ["start", "start", "finish"]
    assert job.files.count() == 1


def test_cancel_while_running_stops_the_job(worker, user, tmp_path):
    marker = tmp_path / "marker.txt"
    job = sleep_job(user, 30, 60, marker=marker)
    wait_until(lambda: status_of(job) == Status.RUNNING and Job.objects.get(pk=job.pk).progress > 0,
               30, what="running")
    started = time.monotonic()
    lifecycle.cancel(Job.objects.get(pk=job.pk))
    wait_until(lambda: status_of(job) == Status.CANCELLED, 15, what="cancelled")
    assert time.monotonic() - started < 10
    job.refresh_from_db()
    assert job.files.count() == 0
    assert "finish" not in marker.read_text()


def test_concurrency_limit_holds_on_real_worker(worker, user):
    user.profile.max_running_jobs = 1
    user.profile.save()
    jobs = [sleep_job(user, 1.5, 5) for _ in range(3)]
    assert [j.dispatched_at is not None for j in Job.objects.filter(pk__in=[j.pk for j in jobs])
            .order_by("created_at")] == [True, False, False]
    most_running = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        statuses = list(Job.objects.filter(pk__in=[j.pk for j in jobs]).values_list("status", flat=True))
        most_running = max(most_running, statuses.count(Status.RUNNING))
        if all(s == Status.SUCCEEDED for s in statuses):
            break
        time.sleep(0.1)
    assert all(status_of(j) == Status.SUCCEEDED for j in jobs)
    assert most_running == 1
    starts = sorted(Job.objects.filter(pk__in=[j.pk for j in jobs]).values_list("started_at", "finished_at"))
    for (_, finished), (next_start, _) in zip(starts, starts[1:]):
        assert next_start >= finished


def test_sigterm_soft_shutdown_hands_the_job_to_the_next_worker(worker_env, user, tmp_path):
    """A redeploy: the worker gets SIGTERM mid-job (as `docker compose down`
    sends it, remapped to Celery's soft shutdown), gives the job back, and the
    next worker runs it to the end exactly once."""
    env, _ = worker_env
    env = {**env, "REMAP_SIGTERM": "SIGQUIT", "BIOFM_WORKER_SOFT_SHUTDOWN_TIMEOUT": "1"}
    marker = tmp_path / "marker.txt"
    first = WorkerProcess(tmp_path, concurrency=1, env=env).start()
    job = sleep_job(user, 8, 40, marker=marker)
    wait_until(lambda: Job.objects.get(pk=job.pk).progress >= 10, 30, what="progress")
    os.killpg(first.proc.pid, signal.SIGTERM)
    first.proc.wait(30)
    first.stop()
    second = WorkerProcess(tmp_path, concurrency=1, env=env).start()
    try:
        wait_until(lambda: status_of(job) == Status.SUCCEEDED, 60, what="success on the next worker")
    finally:
        second.stop()
    job.refresh_from_db()
    assert job.attempts == 2
    assert [l.split()[0] for l in marker.read_text().split("\n") if l] == ["start", "start", "finish"]


def test_worker_keeps_its_database_connections_between_jobs(worker, user):
    """A task no longer opens a connection of its own: the worker's pool
    processes keep theirs (CONN_MAX_AGE, health-checked) from job to job."""
    from django.db import connection

    first = sleep_job(user, 0, 1)
    wait_until(lambda: status_of(first) == Status.SUCCEEDED, 30, what="first job")
    first.refresh_from_db()
    later = [sleep_job(user, 0, 1) for _ in range(4)]
    wait_until(lambda: all(status_of(j) == Status.SUCCEEDED for j in later), 30, what="later jobs")
    time.sleep(1)  # after its last task, a worker that closed per task would have closed by now
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_start < %s", [first.finished_at])
        (kept,) = cursor.fetchone()
    assert kept >= 1
