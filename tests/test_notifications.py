"""Job-end emails: content, opt-out, and a failed send never failing a job."""

from __future__ import annotations

import pytest
from django.core import mail

from workers.models import Job, Status
from workers.tasks import send_job_email

pytestmark = pytest.mark.django_db


def ended_job(user, status=Status.SUCCEEDED, **extra):
    return Job.objects.create(kind="analysis.protparam", owner=user, params={}, status=status,
                              title="my proteins", **extra)


def test_email_has_text_and_html_with_the_link(user, settings):
    settings.SITE_URL = "https://biofm.example.org"
    job = ended_job(user)
    assert send_job_email.apply(args=[str(job.pk)]).get() == "sent"
    (message,) = mail.outbox
    assert message.to == ["alice@example.org"]
    assert "succeeded" in message.subject and "my proteins" in message.subject
    url = f"https://biofm.example.org/jobs/{job.pk}/"
    assert url in message.body
    html, mime = message.alternatives[0]
    assert mime == "text/html" and url in html


def test_failure_email_names_the_input_problem(user):
    job = ended_job(user, Status.FAILED, error_kind="input", error_message="Record 2 is DNA")
    send_job_email.apply(args=[str(job.pk)])
    assert "Problem with the input: Record 2 is DNA" in mail.outbox[0].body


@pytest.mark.parametrize("status, flag", [
    (Status.SUCCEEDED, "notify_succeeded"), (Status.FAILED, "notify_failed"),
    (Status.CANCELLED, "notify_cancelled"),
])
def test_opted_out_users_get_no_email(user, status, flag):
    setattr(user.profile, flag, False)
    user.profile.save()
    job = ended_job(user, status)
    assert send_job_email.apply(args=[str(job.pk)]).get() == "skipped"
    assert mail.outbox == []


def test_running_job_gets_no_email(user):
    job = ended_job(user, Status.RUNNING)
    assert send_job_email.apply(args=[str(job.pk)]).get() == "skipped"


def test_failed_send_is_retried_and_leaves_the_job_alone(user, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    job = ended_job(user)
    result = send_job_email.apply(args=[str(job.pk)])
    # Run in-process, Celery performs the three retries at once, then gives up.
    assert result.state == "FAILURE" and isinstance(result.result, ConnectionRefusedError)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED
