"""Job lookups scoped to the requesting user: someone else's job is a 404."""

from __future__ import annotations

from accounts.scoping import get_visible_or_404

from .models import Job


def get_visible_job(user, job_id, queryset=None) -> Job:
    """The job page's lookup; pass `queryset` to read fewer columns."""
    qs = queryset if queryset is not None else Job.objects.select_related("owner", "lab")
    return get_visible_or_404(qs, user, job_id, "job")


def can_control(user, job: Job) -> bool:
    """Only the owner (or staff) cancels a job; lab members may look and rerun."""
    return job.owner_id == user.pk or user.is_staff
