"""Object lookups scoped to the requesting user: someone else's job is a 404."""

from __future__ import annotations

from django.http import Http404

from .models import Job


def get_visible_job(user, job_id) -> Job:
    try:
        return Job.objects.visible_to(user).select_related("owner", "lab").get(pk=job_id)
    except (Job.DoesNotExist, ValueError, TypeError):
        raise Http404("No such job.") from None
    except Exception as exc:  # a malformed UUID raises ValidationError
        from django.core.exceptions import ValidationError

        if isinstance(exc, ValidationError):
            raise Http404("No such job.") from None
        raise


def can_control(user, job: Job) -> bool:
    """Only the owner (or staff) cancels a job; lab members may look and rerun."""
    return job.owner_id == user.pk or user.is_staff
