"""Answering an API request with a job's result when it is quick: waiting for
a worker, within bounds.

The web server gives a request BIOFM_WEB_TIMEOUT seconds; a wait is bounded
below it (workers.checks refuses a configuration where it is not), so a
client always gets an answer: the result, or 202 with `Location` (the job's
status URL) and `Retry-After`. The web tier runs threaded workers (gunicorn
gthread, docker/entrypoint.sh), and at most BIOFM_SYNC_MAX_WAITING requests
of a process wait at once, fewer than its threads, so waiting clients never
take every thread; a request over that answers 202 at once.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.urls import reverse

from .models import Job

POLL_SECONDS = 0.25
RETRY_AFTER_SECONDS = 5

_slots_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore] | None = None


def _wait_slots() -> threading.BoundedSemaphore:
    global _slots
    size = max(1, settings.BIOFM_SYNC_MAX_WAITING)
    with _slots_lock:
        if _slots is None or _slots[0] != size:  # settings changed (tests)
            _slots = (size, threading.BoundedSemaphore(size))
        return _slots[1]


def wait_for_job(job: Job, seconds: float) -> bool:
    """Wait until the job is final, at most `seconds`; True when it is (the
    job is refreshed). False at once when this process's wait slots are all taken."""
    slots = _wait_slots()
    if not slots.acquire(blocking=False):
        return False
    try:
        deadline = time.monotonic() + seconds
        while True:
            job.refresh_from_db()
            if job.is_final:
                return True
            if time.monotonic() + POLL_SECONDS > deadline:
                return False
            time.sleep(POLL_SECONDS)
    finally:
        slots.release()


def accepted(response, job: Job, body):
    """A 202 answer with the job: `Location` where it is followed, `Retry-After` when to look."""
    from ninja import Status

    response["Location"] = reverse("api:job_status", args=[job.id])
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return Status(202, body)
