"""The reconciler: a periodic pass (Celery beat, `workers.reconcile_jobs`) that
gets jobs moving again when the broker or a worker machine let them down,
without anyone touching them.

Three cases (a pass takes them in the order 3, 2, 1, so that 1 sends what the
others put back), each rechecked under the job's row lock so that two passes,
a worker and a submission can run at the same time:

1. **Never sent.** A queued job with no `dispatched_at` is one the broker was
   unreachable for at submission ("retrying soon"), or one waiting behind its
   owner's running limit. `lifecycle.dispatch_queued` is called for its owner:
   the same rule as after a submission, so the limit still holds and a job
   waiting for a slot stays waiting.
2. **Sent, but its message is gone** (Redis lost its data: restarted without
   its append-only file, or flushed; a web process died between commit and
   send). A queued job that was dispatched is sent again only when *both* hold:
   * the broker says it holds no message with the job's task id (waiting in
     the job's queue, or reserved or running on a worker: Redis keeps those in
     its unacknowledged set until the worker acknowledges). A job waiting
     behind others in a long queue has its message there, however old it is,
     so it is never sent twice;
   * nothing happened to the job for `BIOFM_RECONCILE_LOST_AFTER` seconds
     (`updated_at`), which covers a submission between its commit and its
     send, and a worker between taking a message and writing its claim.
   When the broker cannot say (it is down, or a message could not be read),
   the job is left alone this time. The filesystem broker of `make run` shows
   only waiting messages (its deliveries are in the worker's memory); there
   the age rule is what protects a reserved one, and the claim a duplicate.
3. **Running, but its lease lapsed long ago.** A running job whose lease ran
   out more than `BIOFM_RECONCILE_STALE_AFTER` seconds ago has no live attempt:
   its whole worker machine is gone (a killed worker *process* is requeued at
   once by its parent; see tasks.JobRequest). Without this, Redis would hand
   its message to another worker only after the visibility timeout (13 h). It
   is cancelled if that was asked, failed if it used up its attempts, and
   otherwise queued again and sent under a new task id.

Sending twice never runs a job twice: the claim (lifecycle.claim) lets one
attempt hold a live lease at a time and ends every later copy of a finished
job as "done". An old attempt that wakes up after (3) finds its claim gone at
its next heartbeat and stops without publishing anything.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from . import health, kinds, lifecycle
from .models import ErrorKind, Job, Status

log = logging.getLogger(__name__)

RECONCILE_TASK = "workers.reconcile_jobs"


class _QuietPasses(logging.Filter):
    """Celery logs every task it receives and every task that ends: for a pass
    a minute, two lines a minute of noise in the worker's log. What a pass
    does is logged here (reconcile()), and only when it does something."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (isinstance(args, dict) and args.get("name") == RECONCILE_TASK)


# The worker imports this module (CELERY_IMPORTS) before it starts its pool,
# so its pool processes inherit the filter.
for _name in ("celery.worker.strategy", "celery.app.trace"):
    logging.getLogger(_name).addFilter(_QuietPasses())


@dataclass
class Report:
    dispatched: list[str] = field(default_factory=list)  # case 1
    resent: list[str] = field(default_factory=list)  # case 2
    requeued: list[str] = field(default_factory=list)  # case 3
    failed: list[str] = field(default_factory=list)  # case 3, out of attempts
    cancelled: list[str] = field(default_factory=list)
    broker_unknown: bool = False  # case 2 skipped: the broker could not say

    def as_dict(self) -> dict:
        return {name: value for name, value in self.__dict__.items() if value}


def reconcile(now=None) -> Report:
    now = now or timezone.now()
    report = Report()
    _recover_stale_running(now, report)
    _resend_lost_messages(now, report)
    _dispatch_never_sent(report)  # last: it sends what the step above gave back
    if report.as_dict():
        log.info("reconcile: %s", report.as_dict())
    return report


# --- 3. running jobs whose worker is gone ------------------------------------

def _recover_stale_running(now, report: Report) -> None:
    cutoff = now - timedelta(seconds=settings.BIOFM_RECONCILE_STALE_AFTER)
    stale = Job.objects.filter(status=Status.RUNNING, lease_expires_at__lt=cutoff)
    for job_id in stale.values_list("pk", flat=True):
        to_send = None
        with transaction.atomic():
            job = Job.objects.select_for_update().filter(
                pk=job_id, status=Status.RUNNING, lease_expires_at__lt=cutoff).first()
            if job is None:  # its worker renewed the lease, or it ended, meanwhile
                continue
            kind = job.kind_spec
            max_attempts = kind.max_attempts if kind else 1
            if job.cancel_requested:
                lifecycle._finalize(job, Status.CANCELLED, message="Cancelled; its worker had stopped.")
                report.cancelled.append(str(job.pk))
            elif kind is None or job.attempts >= max_attempts:
                lifecycle._finalize(
                    job, Status.FAILED, error_kind=ErrorKind.SYSTEM,
                    message=f"Gave up after {job.attempts} attempts: the worker running it "
                            "stopped answering each time (its machine lost or restarted).",
                )
                report.failed.append(str(job.pk))
            else:
                job.status = Status.QUEUED
                job.claim_token = ""
                job.lease_expires_at = None
                # A new task id: a late report about the lost attempt's message
                # (tasks.JobRequest matches on it) cannot touch the new one.
                job.celery_task_id = str(uuid.uuid4())
                job.dispatched_at = now
                job.progress_message = "Requeued: its worker stopped renewing its lease"
                job.save(update_fields=["status", "claim_token", "lease_expires_at", "celery_task_id",
                                        "dispatched_at", "progress_message", "updated_at"])
                report.requeued.append(str(job.pk))
                to_send = job
        if to_send is not None:
            log.warning("reconcile: job %s ran on %s, whose lease lapsed at %s; requeued",
                        to_send.pk, to_send.worker_host or "an unknown worker", cutoff)
            lifecycle._send_to_broker(to_send)


# --- 2. dispatched jobs whose message the broker no longer holds --------------

def _resend_lost_messages(now, report: Report) -> None:
    cutoff = now - timedelta(seconds=settings.BIOFM_RECONCILE_LOST_AFTER)
    candidates = list(Job.objects.filter(
        status=Status.QUEUED, dispatched_at__isnull=False, updated_at__lt=cutoff,
    ).values_list("pk", "celery_task_id", "queue"))
    if not candidates:
        return
    in_broker = health.task_ids_in_broker(queues=tuple({q for _, _, q in candidates} | set(kinds.QUEUES)))
    if in_broker is None:
        report.broker_unknown = True
        return
    for job_id, task_id, _queue in candidates:
        if task_id in in_broker:
            continue  # waiting behind others, or on a worker: leave it be
        with transaction.atomic():
            job = Job.objects.select_for_update().filter(
                pk=job_id, status=Status.QUEUED, celery_task_id=task_id, updated_at__lt=cutoff,
                dispatched_at__isnull=False).first()
            if job is None:
                continue
            # Back to "never sent": the next step (dispatch_queued) sends it
            # under a new task id, within its owner's running limit.
            job.dispatched_at = None
            job.progress_message = "The job queue lost this job; sending it again"
            job.save(update_fields=["dispatched_at", "progress_message", "updated_at"])
        log.warning("reconcile: job %s was sent as task %s, which the broker no longer holds; "
                    "sending it again", job_id, task_id)
        report.resent.append(str(job_id))


# --- 1. queued jobs never sent -------------------------------------------------

def _dispatch_never_sent(report: Report) -> None:
    never_sent = Job.objects.filter(status=Status.QUEUED, dispatched_at__isnull=True)
    # A cancel asked of a job that then went back to the queue: no worker will
    # ever see it (dispatch_queued skips it), so it ends here.
    for job_id in never_sent.filter(cancel_requested=True).values_list("pk", flat=True):
        with transaction.atomic():
            job = Job.objects.select_for_update().filter(
                pk=job_id, status=Status.QUEUED, dispatched_at__isnull=True, cancel_requested=True).first()
            if job is not None:
                lifecycle._finalize(job, Status.CANCELLED, message="Cancelled before it started.")
                report.cancelled.append(str(job_id))
    owners = never_sent.filter(cancel_requested=False).order_by().values_list("owner_id", flat=True).distinct()
    for owner_id in list(owners):
        sent = [job.pk for job in lifecycle.dispatch_queued(owner_id)]
        # A send that failed again left its job undispatched: not counted.
        report.dispatched += [str(pk) for pk in Job.objects.filter(pk__in=sent, dispatched_at__isnull=False)
                              .values_list("pk", flat=True)]


@shared_task(name=RECONCILE_TASK, ignore_result=True)
def reconcile_jobs() -> dict:
    close_old_connections()
    try:
        return reconcile().as_dict()
    finally:
        close_old_connections()
