"""The Job admin (list, read-only fields, file download, the three actions) and
the worker/queue health page, against real PostgreSQL and Redis.

Other tests run real workers on the same Redis database, so the tests that need
"no consumer" and "no worker" use a Celery app whose keys and broadcast
channels carry a prefix of their own: messages sent there reach nobody else,
and no worker hears its pings.
"""

from __future__ import annotations

import html
import os
import uuid
from datetime import timedelta

import pytest
import redis
from celery import Celery
from django.contrib.messages import get_messages
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from biofm_site.celery import app as project_celery_app
from workers import health
from workers.models import ErrorKind, Job, JobFile, Status

CHANGELIST = "admin:workers_job_changelist"


@pytest.fixture
def operator(db, django_user_model):
    return django_user_model.objects.create_superuser(
        username="ops@example.org", email="ops@example.org", password="correct-horse-battery")


@pytest.fixture
def ops_client(client, operator):
    client.force_login(operator)
    return client


def make_job(owner, status=Status.QUEUED, **fields) -> Job:
    defaults = {
        "kind": "test.sleep", "owner": owner, "lab": owner.profile.default_lab,
        "params": {"seconds": 1.0, "steps": 1}, "queue": "cpu", "status": status,
    }
    if status != Status.QUEUED:
        defaults["dispatched_at"] = timezone.now()
    return Job.objects.create(**{**defaults, **fields})


def run_action(client, action: str, jobs) -> list[str]:
    response = client.post(reverse(CHANGELIST), {
        "action": action, "_selected_action": [str(job.pk) for job in jobs],
    })
    assert response.status_code == 302
    return [str(m) for m in get_messages(response.wsgi_request)]


def listed(response) -> set:
    return {job.pk for job in response.context["cl"].result_list}


def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"])


@pytest.fixture
def isolated_celery(settings):
    prefix = f"biofm-test-admin-{uuid.uuid4().hex[:10]}:"
    # Never the current app: shared tasks would bind to it for the rest of the run.
    app = Celery("biofm-admin-test", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.broker_transport_options = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": prefix}
    yield app
    app.close()
    client = _redis()
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)


# --- The job list and a job's page ------------------------------------------

def test_changelist_loads_with_filters_and_search(ops_client, user, other_user):
    failed = make_job(user, Status.FAILED, kind="test.other", queue="gpu",
                      error_kind=ErrorKind.SYSTEM, title="a protein fold",
                      worker_host="gpu-node-7", celery_task_id="task-abc-123")
    queued = make_job(other_user, Status.QUEUED, title="alignment")

    response = ops_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert listed(response) == {failed.pk, queued.pk}
    assert str(failed.pk)[:8] in response.content.decode()
    assert reverse("admin:workers_health") in response.content.decode()

    for query, expected in [
        ({"status__exact": "failed"}, {failed.pk}),
        ({"status__exact": "queued"}, {queued.pk}),
        ({"kind": "test.other"}, {failed.pk}),
        ({"queue": "gpu"}, {failed.pk}),
        ({"error_kind__exact": "system"}, {failed.pk}),
        ({"lab__id__exact": other_user.profile.default_lab_id}, {queued.pk}),
        ({"q": str(failed.pk)[:8]}, {failed.pk}),
        ({"q": "bob@example.org"}, {queued.pk}),
        ({"q": "protein"}, {failed.pk}),
        ({"q": "task-abc"}, {failed.pk}),
        ({"q": "gpu-node-7"}, {failed.pk}),
    ]:
        response = ops_client.get(reverse(CHANGELIST), query)
        assert response.status_code == 200, query
        assert listed(response) == expected, query


def test_job_page_keeps_lifecycle_fields_read_only(ops_client, user):
    job = make_job(user, Status.RUNNING, claim_token="tok-1", params={"seconds": 2.5, "steps": 3},
                   result={"answer": 42}, lease_expires_at=timezone.now() + timedelta(minutes=1))
    url = reverse("admin:workers_job_change", args=[job.pk])

    response = ops_client.get(url)
    assert response.status_code == 200
    assert set(response.context["adminform"].form.fields) == {"title", "shared"}
    page = html.unescape(response.content.decode())
    assert '"seconds": 2.5' in page and '"answer": 42' in page
    assert "<pre" in page

    response = ops_client.post(url, {
        "title": "renamed", "shared": "on", "claim_token": "forged", "status": "succeeded",
        "files-TOTAL_FORMS": "0", "files-INITIAL_FORMS": "0",
    })
    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.title, job.shared) == ("renamed", True)
    assert (job.claim_token, job.status) == ("tok-1", Status.RUNNING)


def test_job_files_are_listed_with_a_download_link(ops_client, user):
    job = make_job(user, Status.SUCCEEDED)
    jf = JobFile(job=job, name="result.txt", content_type="text/plain", attempt_token="a1")
    jf.file.save("result.txt", ContentFile(b"slept 1 s\n"), save=False)
    jf.size = 10
    jf.save()
    link = reverse("admin:workers_job_file", args=[job.pk, jf.pk])

    page = ops_client.get(reverse("admin:workers_job_change", args=[job.pk])).content.decode()
    assert link in page

    response = ops_client.get(link)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"slept 1 s\n"
    assert "attachment" in response["Content-Disposition"]
    other = make_job(user, Status.SUCCEEDED)
    assert ops_client.get(reverse("admin:workers_job_file", args=[other.pk, jf.pk])).status_code == 404


# --- Actions ------------------------------------------------------------------

def test_cancel_action(ops_client, user):
    queued = make_job(user, Status.QUEUED)
    running = make_job(user, Status.RUNNING, claim_token="t",
                       lease_expires_at=timezone.now() + timedelta(minutes=1))
    done = make_job(user, Status.SUCCEEDED)

    [message] = run_action(ops_client, "cancel_jobs", [queued, running, done])

    for job in (queued, running, done):
        job.refresh_from_db()
    assert queued.status == Status.CANCELLED
    assert running.status == Status.RUNNING and running.cancel_requested
    assert done.status == Status.SUCCEEDED
    assert "Cancelled 1 job." in message
    assert "Asked 1 running job to stop" in message
    assert "Skipped 1 already finished" in message


def test_requeue_action(ops_client, user, no_broker):
    failed = make_job(user, Status.FAILED, attempts=3, error_kind=ErrorKind.SYSTEM,
                      error_message="Gave up after 3 attempts", finished_at=timezone.now())
    stuck = make_job(user, Status.RUNNING, claim_token="dead", attempts=1,
                     lease_expires_at=timezone.now() - timedelta(minutes=5))
    live = make_job(user, Status.RUNNING, claim_token="alive",
                    lease_expires_at=timezone.now() + timedelta(minutes=5))
    user.profile.max_running_jobs = 5
    user.profile.save()

    [message] = run_action(ops_client, "requeue_jobs", [failed, stuck, live])

    for job in (failed, stuck, live):
        job.refresh_from_db()
    assert failed.status == Status.QUEUED and failed.dispatched_at is not None
    # Out of attempts before; the claim would have failed it again at once.
    assert (failed.error_message, failed.attempts, failed.finished_at) == ("", 0, None)
    assert stuck.status == Status.QUEUED and stuck.claim_token == ""
    assert live.status == Status.RUNNING and live.claim_token == "alive"
    assert {job.pk for job in no_broker} == {failed.pk, stuck.pk}
    assert message == ("Requeued 2 jobs. Skipped 1 still queued or running with a live lease: "
                       "only finished or stuck jobs are requeued (cancel a running job first).")


def test_requeue_waits_for_a_slot_under_the_running_limit(ops_client, user, no_broker):
    make_job(user, Status.RUNNING, claim_token="alive",
             lease_expires_at=timezone.now() + timedelta(minutes=5))
    failed = make_job(user, Status.FAILED)
    user.profile.max_running_jobs = 1
    user.profile.save()

    [message] = run_action(ops_client, "requeue_jobs", [failed])

    failed.refresh_from_db()
    assert failed.status == Status.QUEUED and failed.dispatched_at is None
    assert no_broker == []
    assert message.startswith("Requeued 1 job (0 sent to a worker, 1 waiting for a free slot")


def test_mark_failed_action(ops_client, user):
    queued = make_job(user, Status.QUEUED)
    running = make_job(user, Status.RUNNING, claim_token="t",
                       lease_expires_at=timezone.now() + timedelta(minutes=1))
    done = make_job(user, Status.SUCCEEDED)

    [message] = run_action(ops_client, "mark_failed", [queued, running, done])

    for job in (queued, running):
        job.refresh_from_db()
        assert job.status == Status.FAILED
        assert job.error_kind == ErrorKind.SYSTEM
        assert job.error_message == "Marked failed by an operator"
        assert job.claim_token == "" and job.finished_at is not None
    done.refresh_from_db()
    assert done.status == Status.SUCCEEDED
    assert message == "Marked 2 jobs failed. Skipped 1 already finished."


@pytest.mark.parametrize("selected", ["abc", "1.5", str(uuid.uuid4()) + "x", "9" * 30])
def test_an_action_on_ids_that_are_no_primary_key_is_refused_with_a_message(ops_client, user, selected):
    job = make_job(user, Status.QUEUED)
    response = ops_client.post(reverse(CHANGELIST), {"action": "cancel_jobs",
                                                     "_selected_action": [str(job.pk), selected]})
    assert response.status_code == 302
    message = [str(m) for m in get_messages(response.wsgi_request)]
    assert message == ["The selection names jobs that do not exist; nothing was done."]
    job.refresh_from_db()
    assert job.status == Status.QUEUED
    # The same on an admin that is Django's own (integer keys).
    response = ops_client.post(reverse("admin:auth_user_changelist"),
                               {"action": "delete_selected", "_selected_action": [str(user.pk), selected]})
    assert response.status_code == 302
    assert "The selection names users that do not exist" in str(list(get_messages(response.wsgi_request))[-1])


# --- Health page --------------------------------------------------------------

def test_health_page_is_for_staff_only(client, user, operator):
    url = reverse("admin:workers_health")
    assert url == "/admin/workers/health/"

    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))

    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


def test_health_page_needs_its_own_permission_not_only_staff(client, make_user, isolated_celery, monkeypatch):
    from django.contrib.auth.models import Permission

    monkeypatch.setattr(health, "celery_app", isolated_celery)
    url = reverse("admin:workers_health")
    staff = make_user("staff@example.org", is_staff=True)
    # Staff who may look after jobs, but not the health page.
    staff.user_permissions.add(Permission.objects.get(codename="view_job", content_type__app_label="workers"))
    client.force_login(staff)
    assert client.get(url).status_code == 403
    changelist = client.get(reverse(CHANGELIST))
    assert changelist.status_code == 200 and url not in changelist.content.decode()

    staff.user_permissions.add(Permission.objects.get(codename="view_worker_health",
                                                      content_type__app_label="workers"))
    client.force_login(type(staff).objects.get(pk=staff.pk))
    assert client.get(url).status_code == 200
    assert url in client.get(reverse(CHANGELIST)).content.decode()


def test_queue_lengths_counts_real_messages_in_redis():
    # A queue name no worker consumes, on the project's own app and settings.
    queue = f"biofm-test-admin-{uuid.uuid4().hex[:10]}"
    try:
        project_celery_app.send_task("workers.run_job", args=[str(uuid.UUID(int=0))], queue=queue)
        project_celery_app.send_task("workers.run_job", args=[str(uuid.UUID(int=0))], queue=queue,
                                     priority=9)
        report = health.queue_lengths(queues=(queue, "cpu"))
        assert report.available, report.message
        assert report.length(queue) == 2
        assert report.unacked is not None
    finally:
        client = _redis()
        for key in client.scan_iter(match=f"{queue}*"):
            client.delete(key)


def test_health_page_shows_real_queue_lengths(ops_client, isolated_celery, monkeypatch):
    monkeypatch.setattr(health, "celery_app", isolated_celery)
    isolated_celery.send_task("workers.run_job", args=[str(uuid.UUID(int=0))], queue="gpu")
    prefix = isolated_celery.conf.broker_transport_options["global_keyprefix"]
    _redis().hset(f"{prefix}unacked", "delivery-tag-1", "[]")

    response = ops_client.get(reverse("admin:workers_health"))

    assert response.status_code == 200
    broker = response.context["health"].broker
    assert broker.available
    assert {q.name: q.messages for q in broker.queues} == {"cpu": 0, "gpu": 1, "notify": 0}
    assert broker.unacked == 1
    assert '<td class="queue-length" data-queue="gpu">1</td>' in response.content.decode()


def test_no_worker_running_is_an_empty_list(isolated_celery):
    assert health.workers_seen(isolated_celery) == health.WorkersSeen(workers=[], error="")


def test_broker_down_degrades_to_a_message(ops_client, monkeypatch):
    down = Celery("biofm-admin-down", broker="redis://127.0.0.1:1/0", set_as_current=False)
    monkeypatch.setattr(health, "celery_app", down)
    try:
        response = ops_client.get(reverse("admin:workers_health"))
    finally:
        down.close()

    assert response.status_code == 200
    report = response.context["health"]
    assert not report.broker.available and "could not be reached" in report.broker.message
    assert report.workers.workers == [] and "could not be reached" in report.workers.error
    assert "The broker could not be reached" in response.content.decode()


def test_queue_lengths_not_available_for_other_brokers():
    app = Celery("biofm-admin-memory", broker="memory://", set_as_current=False)
    try:
        report = health.queue_lengths(app)
    finally:
        app.close()
    assert not report.available
    assert report.message == "Not available for this broker (memory)."


def test_jobs_overview_on_the_health_page(ops_client, user, monkeypatch, isolated_celery):
    monkeypatch.setattr(health, "celery_app", isolated_celery)
    now = timezone.now()
    oldest = make_job(user, Status.QUEUED, created_at=now - timedelta(hours=3))
    make_job(user, Status.QUEUED, created_at=now - timedelta(hours=1),
             dispatched_at=now - timedelta(hours=1))
    stuck = make_job(user, Status.RUNNING, lease_expires_at=now - timedelta(minutes=10))
    make_job(user, Status.RUNNING, lease_expires_at=now + timedelta(minutes=1))
    make_job(user, Status.FAILED)

    overview = health.jobs_overview(now)
    assert overview.oldest_queued == oldest
    assert overview.oldest_queued_age == timedelta(hours=3)
    assert overview.counts == {"queued": 2, "running": 2, "succeeded": 0, "failed": 1,
                               "cancelled": 0}
    assert overview.stuck == [stuck] and overview.stuck_count == 1
    assert overview.waiting_for_slot == 1

    response = ops_client.get(reverse("admin:workers_health"))
    page = response.content.decode()
    assert reverse("admin:workers_job_change", args=[oldest.pk]) in page
    assert reverse("admin:workers_job_change", args=[stuck.pk]) in page
    assert "3\xa0hours ago" in page
    # The "waiting for a slot" link opens the job list filtered to those jobs.
    assert listed(ops_client.get(response.context["waiting_url"])) == {oldest.pk}
