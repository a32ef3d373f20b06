"""Celery tasks: `run_job` runs any kind of job; `send_job_email` notifies.

Retry and error paths of an attempt (see JobAttempt.run):
* bad input (JobInputError)       -> failed, shown to the user as their error
* setup problem (JobSystemError)  -> failed, system error shown as is
* cancelled (JobCancelled)        -> cancelled (with the result and files so far
                                     when the runner re-raised it with a result)
* soft time limit                 -> failed, system error naming the limit
* transient (TransientJobError, lost DB connection) -> back to queued, retried
  with backoff until the kind's max_attempts, then failed
* anything else                   -> failed, system error; traceback kept for operators
* worker process killed           -> Celery requeues the message (acks_late,
  reject_on_worker_lost); JobRequest marks the job queued again; the claim's
  max_attempts bounds a job that kills its worker every time
* hard time limit                 -> JobRequest marks the job failed
"""

from __future__ import annotations

import logging
import shutil
import socket
import tempfile
import time
import traceback
from pathlib import Path

from billiard.exceptions import TimeLimitExceeded, WorkerLostError
from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import task_postrun, task_prerun
from celery.worker.request import Request
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections

from . import kinds, lifecycle
from .errors import JobCancelled, JobInputError, JobSystemError, TransientJobError
from .models import HEAVY_FIELDS, ErrorKind, Job, Outcome, Status
from .runtime import DbJobContext, Heartbeat, LostClaim, worker_hardware

log = logging.getLogger(__name__)


class JobRequest(Request):
    """Runs in the worker's parent process, which outlives a killed child."""

    def on_failure(self, exc_info, send_failed_event=True, return_ok=False):
        exc = exc_info.exception
        job_id = self.args[0] if self.args else None
        try:
            close_old_connections()
            if job_id and isinstance(exc, WorkerLostError):
                lifecycle.requeue_after_worker_lost(job_id, self.id, f"the worker stopped ({exc})")
            elif job_id and isinstance(exc, TimeLimitExceeded):
                lifecycle.fail_from_parent(
                    job_id, self.id, f"Stopped at the hard time limit ({self.time_limits[0]} s).")
        except Exception:
            log.exception("could not record the failure of job %s", job_id)
        return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)


class JobTask(Task):
    Request = JobRequest
    acks_late = True
    reject_on_worker_lost = True
    # A job is retried by our own rules (JobAttempt), never by Celery's autoretry.
    max_retries = None


class JobAttempt:
    """One attempt at running one job on this worker."""

    def __init__(self, task: Task, job_id: str):
        self.task = task
        self.job_id = job_id

    def run(self) -> str:
        request = self.task.request
        claim = lifecycle.claim(self.job_id, host=_host(), task_id=request.id or "",
                                worker=request.hostname or "",
                                queue=(request.delivery_info or {}).get("routing_key") or "",
                                hardware=worker_hardware())
        if claim.state == "busy":
            # A redelivered copy while the first attempt may still be alive:
            # look again once its lease could have lapsed.
            raise self.task.retry(countdown=max(1.0, claim.wait_seconds + 1), max_retries=None)
        if claim.state != "claimed":
            return claim.state
        job, token = claim.job, claim.token
        kind = kinds.get(job.kind)
        workdir = Path(tempfile.mkdtemp(prefix=f"biofm-{job.pk}-"))
        ctx = DbJobContext(job, token, workdir)
        heartbeat = Heartbeat(ctx, interval=max(0.5, lifecycle.lease_seconds() / 3))
        heartbeat.start()
        try:
            return self._compute(kind, job, token, ctx, heartbeat)
        finally:
            if heartbeat.is_alive():
                heartbeat.stop()
            shutil.rmtree(workdir, ignore_errors=True)

    def _compute(self, kind, job, token, ctx, heartbeat) -> str:
        started = time.monotonic()

        def phases():
            return ctx.phase_times(total_seconds=time.monotonic() - started)

        def end(status, **kw):
            lifecycle.finish(job.pk, token, status, run_seconds=heartbeat.stop(), phases=phases(), **kw)
            return status

        try:
            # No progress write at the start: the claim already wrote "Started".
            result = kind.load_runner()(ctx)
        except LostClaim:
            log.warning("job %s: claim lost, stopping this attempt", job.pk)
            lifecycle.end_attempt(job.pk, token, Outcome.LOST_CLAIM, phases())
            return "lost"
        except JobInputError as exc:
            return end(Status.FAILED, error_kind=ErrorKind.INPUT, message=str(exc))
        except JobSystemError as exc:
            return end(Status.FAILED, error_kind=ErrorKind.SYSTEM, message=str(exc),
                       detail=getattr(exc, "detail", ""))
        except JobCancelled as exc:
            if exc.result is not None:
                return end(Status.CANCELLED, message="Cancelled by request; what it had so far was kept.",
                           result=exc.result, files=ctx.files)
            return end(Status.CANCELLED, message="Cancelled by request.")
        except SoftTimeLimitExceeded:
            return end(Status.FAILED, error_kind=ErrorKind.SYSTEM,
                       message=f"Stopped at the time limit for {kind.label} jobs "
                               f"({kind.soft_time_limit} s).")
        except (TransientJobError, OperationalError, InterfaceError) as exc:
            close_old_connections()
            if job.attempts < kind.max_attempts:
                lifecycle.release(job.pk, token, f"Temporary problem, retrying: {exc}",
                                  run_seconds=heartbeat.stop(), phases=phases())
                raise self.task.retry(countdown=min(300, 10 * 2 ** job.attempts), max_retries=None)
            return end(Status.FAILED, error_kind=ErrorKind.SYSTEM,
                       message=f"Failed after {job.attempts} attempts: {exc}",
                       detail=traceback.format_exc())
        except Exception as exc:
            log.exception("job %s failed", job.pk)
            return end(Status.FAILED, error_kind=ErrorKind.SYSTEM,
                       message=f"Internal error ({type(exc).__name__}). The operators can see "
                               "the details; rerunning may help if it was transient.",
                       detail=traceback.format_exc())
        if ctx.cancel_requested():
            return end(Status.CANCELLED, message="Cancelled by request.")
        return end(Status.SUCCEEDED, result=result or {}, files=ctx.files)


def _host() -> str:
    return socket.gethostname()


@task_prerun.connect
@task_postrun.connect
def _tidy_connections(task=None, **kwargs) -> None:
    """Around every task, as Django does around every request: close only a
    connection that is broken or older than CONN_MAX_AGE, and health-check the
    rest before reuse. Celery's own fixup would close them all every time,
    which CELERY_DB_REUSE_MAX turns off (settings.py)."""
    if task is not None and not getattr(task.request, "is_eager", False):
        close_old_connections()


@shared_task(bind=True, base=JobTask, name=lifecycle.RUN_JOB_TASK)
def run_job(self, job_id: str) -> str:
    return JobAttempt(self, job_id).run()


@shared_task(bind=True, name=lifecycle.SEND_JOB_EMAIL_TASK, acks_late=True, max_retries=3)
def send_job_email(self, job_id: str) -> str:
    from .notifications import job_email, should_notify

    job = Job.objects.select_related("owner__profile").defer(*HEAVY_FIELDS).filter(pk=job_id).first()
    if job is None or not job.is_final or not should_notify(job):
        return "skipped"
    try:
        job_email(job).send()
    except Exception as exc:  # the job's state never depends on the email
        log.warning("email for job %s not sent: %s", job_id, exc)
        raise self.retry(countdown=30 * (self.request.retries + 1), exc=exc)
    return "sent"


# --- Retention (workers/retention.py), run daily by celery beat ----------------

@shared_task(name="workers.prune_jobs", acks_late=True)
def prune_jobs() -> dict:
    from . import retention

    report = retention.prune_jobs()
    log.info("prune_jobs: %s", report.summary())
    return report.summary()


@shared_task(name="workers.prune_files", acks_late=True)
def prune_files() -> dict:
    from . import retention

    report = retention.prune_files()
    log.info("prune_files: %s", report.summary())
    return report.summary()


__all__ = ["run_job", "send_job_email", "prune_jobs", "prune_files", "settings"]
