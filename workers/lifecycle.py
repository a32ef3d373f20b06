"""The life of a job, from submission to its final state.

Ownership of a running job is a *claim*: a random token written on the job row
together with a lease that the running attempt keeps renewing. Every write an
attempt makes is conditional on its token, so a redelivered copy of a job (after
a worker died, or a broker redelivery) can never run beside a live attempt, and
an attempt that lost its claim can never publish a half result.

This module sits below the Celery tasks (workers/tasks.py imports it, never
the other way round): it sends its tasks by name.
"""

from __future__ import annotations

import logging
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Membership, Profile

from . import checkpoints, kinds
from .errors import ParamsError
from .models import FINAL_STATUSES, Attempt, ErrorKind, Job, JobFile, Outcome, Status
from .quotas import check_quota

log = logging.getLogger(__name__)

# The names the Celery tasks in workers/tasks.py are registered under.
RUN_JOB_TASK = "workers.run_job"
SEND_JOB_EMAIL_TASK = "workers.send_job_email"


# --- Submission -----------------------------------------------------------

def submit(user, kind_name: str, params: dict, *, lab=None, shared: bool = False,
           title: str = "", rerun_of: Job | None = None) -> Job:
    """Check and store a job, then hand it to a worker when a slot is free.

    Raises ParamsError (bad parameters, naming the field) or QuotaExceeded.
    """
    try:
        kind = kinds.get(kind_name)
    except KeyError:
        raise ParamsError("kind", f"Unknown job kind “{kind_name}”.") from None
    if not isinstance(params, dict):
        raise ParamsError("params", "Parameters must be a JSON object.")
    if kind.check_access is not None:  # first, so clean_params's answers say nothing of others' records
        kind.check_access(params, user)
    # The one validation of the input: forms and APIs hand over what was
    # submitted, and the runner trusts what this returns.
    clean = kind.clean(params)
    lab_id = lab.pk if lab is not None else user.profile.default_lab_id
    if lab_id is not None:
        # One query checks the membership and reads the lab (for its quota).
        membership = Membership.objects.select_related("lab").filter(user=user, lab_id=lab_id).first()
        if membership is None:
            raise ParamsError("lab", "You are not a member of that lab.")
        lab = membership.lab
        check_quota(lab, kind.queue)
    # A transaction only where there is a second write: it costs a submission two queries.
    with transaction.atomic() if kind.on_submit is not None else nullcontext():
        job = Job.objects.create(
            kind=kind.name, owner=user, lab=lab, shared=shared, params=clean.params,
            input_facts=clean.facts, queue=kind.queue,
            title=title[:200] or kind.summarize_params(clean.params, clean.facts)[:200],
            rerun_of=rerun_of,
        )
        if kind.on_submit is not None:
            kind.on_submit(job)
    transaction.on_commit(lambda: _dispatch_after_submit(job))
    return job


def _dispatch_after_submit(job: Job) -> None:
    # The caller answers with `job` (the API's 202 says whether it waits for
    # a slot), so the instance learns what the dispatch wrote on its row.
    for sent in dispatch_queued(job.owner_id):
        if sent.pk == job.pk:
            job.dispatched_at, job.celery_task_id = sent.dispatched_at, sent.celery_task_id
            job.progress_message = sent.progress_message


def rerun(job: Job, user) -> Job:
    return submit(user, job.kind, job.params, lab=job.lab if job.owner_id == user.pk else None,
                  shared=job.shared, title=job.title, rerun_of=job)


def dispatch_queued(user_id: int) -> list[Job]:
    """Send the user's waiting jobs to the broker, up to their running limit.

    Called after a submission and whenever one of the user's jobs ends, so a job
    over the limit waits in "queued" and starts as soon as a slot frees up.
    """
    sent: list[Job] = []
    with transaction.atomic():
        # The profile row lock serialises concurrent dispatches for one user.
        profile = Profile.objects.select_for_update().get(user_id=user_id)
        in_flight = Job.objects.filter(
            owner_id=user_id, status__in=(Status.QUEUED, Status.RUNNING),
            dispatched_at__isnull=False,
        ).count()
        free = profile.running_limit - in_flight
        if free <= 0:
            return sent
        waiting = (_waiting(user_id).select_for_update().only("id", "kind", "owner_id")
                   .order_by("created_at")[:free])
        now = timezone.now()
        for job in waiting:
            job.dispatched_at = now
            job.celery_task_id = str(uuid.uuid4())
            job.progress_message = "Waiting for a worker"
            job.save(update_fields=["dispatched_at", "celery_task_id", "progress_message", "updated_at"])
            sent.append(job)
    return [job for job in sent if _send_to_broker(job) is not False]


def _send_to_broker(job: Job) -> bool:
    kind = kinds.get(job.kind)
    try:
        current_app.send_task(
            RUN_JOB_TASK, args=[str(job.id)], task_id=job.celery_task_id, queue=kind.queue,
            soft_time_limit=kind.soft_time_limit, time_limit=kind.time_limit,
        )
    except Exception:  # the broker is down: leave the job waiting, visibly
        log.exception("could not send job %s to the broker", job.id)
        Job.objects.filter(pk=job.pk, status=Status.QUEUED).update(
            dispatched_at=None, progress_message="The job queue is unreachable; retrying soon",
        )
        return False
    return True


def redispatch(job: Job) -> None:
    """Operators' requeue: put a job back in the queue from scratch. The
    attempt count restarts too, or a job that ran out of attempts would be
    failed again by its next claim without running."""
    Job.objects.filter(pk=job.pk).update(
        status=Status.QUEUED, dispatched_at=None, attempts=0, started_at=None, claim_token="", lease_expires_at=None,
        cancel_requested=False, error_kind="", error_message="", error_detail="",
        finished_at=None, progress=0.0, progress_message="Requeued by an operator",
    )
    dispatch_queued(job.owner_id)


# --- Cancellation ---------------------------------------------------------

def cancel(job: Job) -> Job:
    """Stop a job. A job not yet running ends at once; a running one is asked
    to stop and does so at its next progress report."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.is_final:
            return job
        now = timezone.now()
        lease_live = job.lease_expires_at is not None and job.lease_expires_at > now
        if job.status == Status.RUNNING and lease_live:
            job.cancel_requested = True
            job.progress_message = "Cancelling…"
            job.save(update_fields=["cancel_requested", "progress_message", "updated_at"])
            return job
        _finalize(job, Status.CANCELLED, message="Cancelled before it finished.")
    return job


# What a final write changes; the rest of the row (params can weigh a
# megabyte) is left as it is.
FINAL_FIELDS = ["status", "finished_at", "claim_token", "lease_expires_at", "cancel_requested",
                "error_kind", "error_message", "error_detail", "progress_message", "updated_at"]


def _finalize(job: Job, status: str, *, error_kind: str = "", message: str = "",
              detail: str = "", result: dict | None = None, run_seconds: float = 0.0,
              close_attempts: bool = True) -> None:
    """Write a final state. Must run inside a transaction holding the row lock.
    `run_seconds`: worker time since the attempt's last heartbeat."""
    now = timezone.now()
    job.status = status
    job.finished_at = now
    job.claim_token = ""
    job.lease_expires_at = None
    job.cancel_requested = False
    job.error_kind = error_kind
    job.error_message = message if status != Status.SUCCEEDED else ""
    job.error_detail = detail
    if status == Status.SUCCEEDED:
        job.progress = 100.0
        job.progress_message = "Done"
    elif status == Status.CANCELLED:
        job.progress_message = "Cancelled"
    else:
        job.progress_message = "Failed"
    fields = list(FINAL_FIELDS) + (["progress"] if status == Status.SUCCEEDED else [])
    if result is not None:
        job.result = result
        fields.append("result")
    if run_seconds:
        job.run_seconds = F("run_seconds") + run_seconds
        fields.append("run_seconds")
    job.save(update_fields=fields)
    if close_attempts:
        # An attempt still open now did not end the job itself (an operator
        # did, or a cancel of a job whose worker had gone).
        Attempt.objects.filter(job=job, ended_at__isnull=True).update(ended_at=now, outcome=Outcome.STOPPED)
    owner_id, job_id = job.owner_id, job.id
    transaction.on_commit(lambda: _after_final(job_id, owner_id))


def _after_final(job_id, owner_id: int) -> None:
    try:  # a resumable job's saved state is of no use once it has ended, however it ended
        checkpoints.delete(job_id)
    except Exception:
        log.exception("could not delete the checkpoints of job %s", job_id)
    try:
        current_app.send_task(SEND_JOB_EMAIL_TASK, args=[str(job_id)], queue="notify")
    except Exception:  # a notification never holds up or fails a job
        log.exception("could not queue the email for job %s", job_id)
    # A slot freed up; only a waiting job needs the dispatch and its row locks.
    if _waiting(owner_id).exists():
        dispatch_queued(owner_id)


def _waiting(user_id: int):
    """The user's jobs waiting for a slot under their running limit."""
    return Job.objects.filter(owner_id=user_id, status=Status.QUEUED, dispatched_at__isnull=True,
                              cancel_requested=False)


# --- Claims: what a worker does ---------------------------------------------

@dataclass
class Claim:
    state: str  # "claimed", "busy" (another attempt holds a live lease), "done"
    job: Job | None = None
    token: str = ""
    wait_seconds: float = 0.0


def lease_seconds() -> int:
    return settings.BIOFM_JOB_LEASE_SECONDS


def claim(job_id: str, *, host: str, task_id: str, worker: str = "", queue: str = "",
          hardware: str = "cpu") -> Claim:
    """`hardware`: what the worker would run it on (workers.runtime.worker_hardware);
    the compute may correct it (record_hardware)."""
    token = uuid.uuid4().hex
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.is_final:
            return Claim("done", job)
        now = timezone.now()
        if job.status == Status.QUEUED and job.cancel_requested:
            _finalize(job, Status.CANCELLED, message="Cancelled before it started.")
            return Claim("done", job)
        if job.status == Status.RUNNING and job.lease_expires_at and job.lease_expires_at > now:
            return Claim("busy", job, wait_seconds=(job.lease_expires_at - now).total_seconds())
        if job.status == Status.RUNNING and job.cancel_requested:
            _finalize(job, Status.CANCELLED, message="Cancelled; its worker had stopped.")
            return Claim("done", job)
        kind = job.kind_spec
        max_attempts = kind.max_attempts if kind else 1
        if job.attempts >= max_attempts:
            _finalize(
                job, Status.FAILED, error_kind=ErrorKind.SYSTEM,
                message=f"Gave up after {job.attempts} attempts: the worker running it "
                        "stopped each time (out of memory or restarted).",
            )
            return Claim("done", job)
        job.status = Status.RUNNING
        job.claim_token = token
        job.lease_expires_at = now + timedelta(seconds=lease_seconds())
        job.attempts += 1
        job.worker_host = host[:200]
        job.celery_task_id = task_id or job.celery_task_id
        job.started_at = job.started_at or now
        job.hardware = hardware
        job.progress_message = "Started" if job.attempts == 1 else f"Restarted (attempt {job.attempts})"
        job.save(update_fields=["status", "claim_token", "lease_expires_at", "attempts", "worker_host",
                                "celery_task_id", "started_at", "hardware", "progress_message", "updated_at"])
        _open_attempt(job, token, now, worker=worker or host, queue=queue or job.queue)
    return Claim("claimed", job, token)


def _open_attempt(job: Job, token: str, now, *, worker: str, queue: str) -> Attempt:
    """The row of a new attempt. Its wait in the queue runs from the job's
    dispatch, or from the end of the attempt before it (a retry or a
    redelivery), whichever is later."""
    previous = None
    if job.attempts > 1:  # a first attempt has no earlier rows to look at
        earlier = list(Attempt.objects.filter(job=job).order_by("-claimed_at"))
        # An attempt still open had its lease lapse: its worker is gone. It
        # was last known alive at its last heartbeat.
        for stale in earlier:
            if stale.ended_at is None:
                stale.ended_at = stale.last_heartbeat_at or stale.claimed_at
                stale.outcome = Outcome.ABANDONED
                stale.save(update_fields=["ended_at", "outcome"])
        previous = earlier[0] if earlier else None
    starts = [t for t in (job.dispatched_at, previous and previous.ended_at) if t is not None]
    queued_at = max(starts) if starts else None
    return Attempt.objects.create(
        job=job, number=job.attempts, token=token, worker=worker[:200], queue=queue[:16],
        hardware=job.hardware, queued_at=queued_at,
        queue_seconds=max(0.0, (now - queued_at).total_seconds()) if queued_at else None,
        claimed_at=now, last_heartbeat_at=now,
    )


def end_attempt(job_id, token: str, outcome: str, phases: list[dict] | None = None) -> None:
    """Close the attempt holding `token` (if nothing closed it already) and
    keep its phases; one statement in the usual case."""
    rows = Attempt.objects.filter(job_id=job_id, token=token)
    keep = {"phases": phases} if phases is not None else {}
    if not rows.filter(ended_at__isnull=True).update(ended_at=timezone.now(), outcome=outcome, **keep) and keep:
        rows.update(**keep)


def record_phases(job_id, token: str, phases: list[dict]) -> None:
    """The phases of a running attempt so far (kept if its worker dies)."""
    Attempt.objects.filter(job_id=job_id, token=token, ended_at__isnull=True).update(phases=phases)


def record_hardware(job_id, token: str, hardware: str) -> bool:
    """What the attempt holding `token` runs on, as its compute said: on the
    attempt's row, and on the job's, whose run_seconds its quota counts
    (workers.quotas). A job whose attempts ran on different hardware is
    charged, all of it, to its latest attempt's. False if the claim was lost."""
    with transaction.atomic():
        if not _held(job_id, token).update(hardware=hardware):
            return False
        Attempt.objects.filter(job_id=job_id, token=token).update(hardware=hardware)
    return True


def _held(job_id, token: str):
    return Job.objects.filter(pk=job_id, claim_token=token, status=Status.RUNNING)

# Heartbeats and progress writes are one UPDATE in the usual case: it matches
# only a row still held by this attempt with no cancel asked, so one match
# answers both questions. Only when it misses does a second statement tell a
# cancel request (the lease is still renewed) from a lost claim.


def heartbeat(job_id, token: str, elapsed: float) -> tuple[bool, bool]:
    """Renew the lease and count worker time. Returns (still ours, cancel asked)."""
    now = timezone.now()
    fields = {"lease_expires_at": now + timedelta(seconds=lease_seconds()),
              "run_seconds": F("run_seconds") + elapsed}
    if _held(job_id, token).filter(cancel_requested=False).update(**fields):
        ours, cancel = True, False
    else:
        ours = bool(_held(job_id, token).update(**fields))
        cancel = ours
    if ours:  # the health page's "last heartbeat" of this attempt's worker
        Attempt.objects.filter(job_id=job_id, token=token).update(last_heartbeat_at=now)
    return ours, cancel


def report_progress(job_id, token: str, percent: float, message: str) -> tuple[bool, bool]:
    """Write progress. Returns (still ours, cancel asked); a job being
    cancelled keeps its “Cancelling…” message."""
    if _held(job_id, token).filter(cancel_requested=False).update(
            progress=percent, progress_message=message[:300], updated_at=timezone.now()):
        return True, False
    ours = _held(job_id, token).exists()
    return ours, ours


def finish(job_id, token: str, status: str, *, error_kind: str = "", message: str = "",
           detail: str = "", result: dict | None = None,
           files: dict[str, tuple[str, str]] | None = None, run_seconds: float = 0.0,
           phases: list[dict] | None = None) -> bool:
    """End the attempt holding `token`. Result files are stored first and
    published with the final state in one transaction; if the claim was lost
    meanwhile, the stored files are deleted and nothing is published. Files
    are published for a succeeded job, and for a cancelled one that kept what
    it had so far (its runner raised JobCancelled with a result).
    `run_seconds`: worker time since the last heartbeat, counted in the same write.
    `phases` are the attempt's compute phases; storing the files is added to
    them as "writing results"."""
    stored: list[JobFile] = []
    writing_started = time.monotonic()
    if status in (Status.SUCCEEDED, Status.CANCELLED) and files:
        for name, (path, content_type) in files.items():
            jf = JobFile(job_id=job_id, name=name, content_type=content_type, attempt_token=token)
            with open(path, "rb") as fh:
                jf.file.save(name, File(fh), save=False)
            jf.size = jf.file.size
            stored.append(jf)
    if stored:
        phases = [*(phases or []), {"name": "writing results", "count": 1,
                                    "seconds": round(time.monotonic() - writing_started, 3)}]
    with transaction.atomic():
        job = (Job.objects.select_for_update().only("id", "owner_id", "status", "claim_token")
               .filter(pk=job_id).first())
        if job is None or job.claim_token != token or job.status != Status.RUNNING:
            won = False
        else:
            won = True
            JobFile.objects.filter(job=job).delete()
            JobFile.objects.bulk_create(stored)
            end_attempt(job_id, token, status, phases)
            _finalize(job, status, error_kind=error_kind, message=message, detail=detail,
                      result=result, run_seconds=run_seconds, close_attempts=False)
    if not won:
        end_attempt(job_id, token, Outcome.LOST_CLAIM, phases)
        for jf in stored:
            default_storage.delete(jf.file.name)
        log.warning("job %s: attempt %s lost its claim; its result was discarded", job_id, token)
    return won


def release(job_id, token: str, message: str, run_seconds: float = 0.0,
            phases: list[dict] | None = None) -> bool:
    """Give a claimed job back to the queue (before a retry)."""
    with transaction.atomic():
        released = bool(_held(job_id, token).update(
            status=Status.QUEUED, claim_token="", lease_expires_at=None, progress_message=message[:300],
            run_seconds=F("run_seconds") + run_seconds,
            updated_at=timezone.now(),  # the reconciler's clock: its retry message is on its way
        ))
        end_attempt(job_id, token, Outcome.RETRIED if released else Outcome.LOST_CLAIM, phases)
    return released


def requeue_after_worker_lost(job_id, task_id: str, reason: str) -> bool:
    """The process running the job died (SIGKILL, out of memory). Celery puts
    the message back in the queue; this marks the job queued again so the
    redelivery can claim it at once instead of waiting for the lease to lapse."""
    with transaction.atomic():
        now = timezone.now()
        requeued = bool(Job.objects.filter(pk=job_id, status=Status.RUNNING, celery_task_id=task_id).update(
            status=Status.QUEUED, claim_token="", lease_expires_at=None,
            progress_message=f"Requeued: {reason}"[:300], updated_at=now,
        ))
        if requeued:
            Attempt.objects.filter(job_id=job_id, ended_at__isnull=True).update(
                ended_at=now, outcome=Outcome.WORKER_LOST)
    return requeued


def fail_from_parent(job_id, task_id: str, message: str) -> None:
    """The worker's parent process saw the attempt die for good (hard time limit)."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(
            pk=job_id, celery_task_id=task_id, status=Status.RUNNING).first()
        if job is not None:
            Attempt.objects.filter(job=job, ended_at__isnull=True).update(
                ended_at=timezone.now(), outcome=Outcome.FAILED)
            _finalize(job, Status.FAILED, error_kind=ErrorKind.SYSTEM, message=message)


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES
