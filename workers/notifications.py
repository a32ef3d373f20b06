"""The email sent to a job's owner when the job ends."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string


def job_email(job) -> EmailMultiAlternatives:
    url = settings.SITE_URL + job.get_absolute_url()
    context = {"job": job, "url": url, "site_url": settings.SITE_URL,
               "site_name": settings.BIOFM_SITE_NAME}
    subject = f"[{settings.BIOFM_SITE_NAME}] {job.kind_label} {job.get_status_display().lower()}: {job.title or str(job.id)[:8]}"
    text = render_to_string("workers/email/job_finished.txt", context)
    html = render_to_string("workers/email/job_finished.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [job.owner.email])
    message.attach_alternative(html, "text/html")
    return message


def should_notify(job) -> bool:
    profile = getattr(job.owner, "profile", None)
    return bool(job.owner.email) and profile is not None and profile.wants_email(job.status)
