"""What operators need to see when jobs seem stuck, and the repairs they make.

The data-gathering functions return plain dataclasses so the admin view stays a
thin renderer and the tests can check the numbers themselves. Each of them
degrades to a message instead of raising when the broker cannot be reached: this
page is what an operator opens precisely when something is down.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterator

from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from biofm_site.celery import app as celery_app

from . import kinds, lifecycle
from .models import Attempt, ErrorKind, Job, Status

log = logging.getLogger(__name__)

QUEUE_NAMES: tuple[str, ...] = (*kinds.QUEUES, "notify")
INSPECT_TIMEOUT = 1.0
# Short on purpose: a page that hangs for the broker's default retry schedule
# is no better than a 500.
CONNECT_TIMEOUT = 2.0
STUCK_LIST_LIMIT = 20
# Workers that ran a job this recently but no longer answer are listed as silent.
SILENT_WORKER_WINDOW = timedelta(hours=24)
OPERATOR_FAILED_MESSAGE = "Marked failed by an operator"


# --- Broker queues --------------------------------------------------------

@dataclass(frozen=True)
class QueueLength:
    name: str
    messages: int


@dataclass
class BrokerQueues:
    available: bool
    queues: list[QueueLength] = field(default_factory=list)
    # Messages handed to a worker and not yet acknowledged. With acks_late this
    # includes every job being run right now, across all queues.
    unacked: int | None = None
    message: str = ""

    def length(self, name: str) -> int | None:
        return next((q.messages for q in self.queues if q.name == name), None)


@contextmanager
def _broker_connection(app) -> Iterator:
    conn = app.connection_for_read(
        connect_timeout=CONNECT_TIMEOUT,
        transport_options={"socket_connect_timeout": CONNECT_TIMEOUT,
                           "socket_timeout": CONNECT_TIMEOUT + INSPECT_TIMEOUT + 2},
    )
    try:
        yield conn
    finally:
        conn.release()


def _broker_errors(conn) -> tuple[type[BaseException], ...]:
    return (*conn.connection_errors, *conn.channel_errors, KombuOperationalError, OSError)


def _queue_keys(channel, queue: str) -> list[str]:
    # kombu's Redis transport keeps a queue as one list per priority step: the
    # bare name for the lowest step, "<name><sep><step>" for the others.
    # (kombu.transport.redis.Channel._q_for_pri; the key prefix, if any, is
    # added by the channel's client.)
    return [queue if not step else f"{queue}{channel.sep}{step}" for step in channel.priority_steps]


def queue_lengths(app=None, queues: tuple[str, ...] = QUEUE_NAMES) -> BrokerQueues:
    """Messages waiting in each queue, read from Redis with LLEN."""
    app = app or celery_app
    with _broker_connection(app) as conn:
        driver = conn.transport.driver_type
        if driver != "redis":
            return BrokerQueues(False, message=f"Not available for this broker ({driver}).")
        try:
            conn.ensure_connection(max_retries=0)
            channel = conn.default_channel
            keys = {queue: _queue_keys(channel, queue) for queue in queues}
            with channel.conn_or_acquire() as client:
                pipe = client.pipeline(transaction=False)
                for queue_keys in keys.values():
                    for key in queue_keys:
                        pipe.llen(key)
                pipe.hlen(channel.unacked_key)
                sizes = pipe.execute()
        except _broker_errors(conn) as exc:
            log.warning("health: could not read queue lengths: %s", exc)
            return BrokerQueues(False, message=f"The broker could not be reached: {exc}")
    unacked = sizes.pop()
    lengths, start = [], 0
    for queue, queue_keys in keys.items():
        lengths.append(QueueLength(queue, sum(sizes[start:start + len(queue_keys)])))
        start += len(queue_keys)
    return BrokerQueues(True, lengths, unacked)


def _message_task_id(payload) -> str | None:
    """The Celery task id in one stored kombu message (a dict or its JSON)."""
    if isinstance(payload, (str, bytes)):
        payload = json.loads(payload)
    headers = payload.get("headers") or {}
    return headers.get("id") or (payload.get("properties") or {}).get("correlation_id")


def task_ids_in_broker(queues: tuple[str, ...] = QUEUE_NAMES, app=None) -> set[str] | None:
    """Ids of the tasks whose messages the broker holds: waiting in one of
    `queues`, or handed to a worker and not yet acknowledged (Redis; with
    acks_late, every job a worker has reserved or is running, and a retry
    waiting for its countdown). None when that cannot be known: the broker is
    unreachable, a message is unreadable, or the transport keeps its
    deliveries out of sight (the filesystem broker's are in the worker's
    memory, so there only waiting messages are seen)."""
    app = app or celery_app
    with _broker_connection(app) as conn:
        driver = conn.transport.driver_type
        try:
            conn.ensure_connection(max_retries=0)
            channel = conn.default_channel
            if driver == "redis":
                with channel.conn_or_acquire() as client:
                    pipe = client.pipeline(transaction=False)
                    for queue in queues:
                        for key in _queue_keys(channel, queue):
                            pipe.lrange(key, 0, -1)
                    pipe.hvals(channel.unacked_key)
                    *waiting, unacked = pipe.execute()
                payloads = [p for batch in waiting for p in batch]
                payloads += [json.loads(entry)[0] for entry in unacked]
            elif driver == "filesystem":
                folder = Path(channel.data_folder_in)
                payloads = [path.read_bytes() for queue in queues for path in folder.glob(f"*.{queue}.msg")]
            else:
                return None
            return {task_id for task_id in map(_message_task_id, payloads) if task_id}
        except (*_broker_errors(conn), ValueError, KeyError, IndexError, TypeError) as exc:
            # A file the filesystem broker consumed meanwhile (OSError) or a
            # message half written: unknown this time, look again next time.
            log.warning("could not list the messages in the broker: %s", exc)
            return None


# --- Workers ----------------------------------------------------------------

@dataclass(frozen=True)
class WorkerInfo:
    hostname: str
    queues: tuple[str, ...]
    # None when the worker answered the ping but not this question in time.
    concurrency: int | None
    active_tasks: int | None
    # The last lease renewal of a job this worker ran (from its attempts);
    # None if it ran none lately. Celery's own worker heartbeats are events
    # that only a long-running listener sees, so this page uses ours.
    last_heartbeat: datetime | None = None


@dataclass
class WorkersSeen:
    workers: list[WorkerInfo] = field(default_factory=list)
    error: str = ""


def workers_seen(app=None, timeout: float = INSPECT_TIMEOUT) -> WorkersSeen:
    """Workers that answer a broadcast ping, with what they consume and run."""
    app = app or celery_app
    with _broker_connection(app) as conn:
        try:
            conn.ensure_connection(max_retries=0)
            pongs = app.control.inspect(timeout=timeout, connection=conn).ping() or {}
            if not pongs:
                return WorkersSeen()
            # Naming the hosts lets each reply collection end as soon as all of
            # them answered instead of always waiting out the timeout.
            asked = app.control.inspect(timeout=timeout, connection=conn, destination=sorted(pongs))
            queues = asked.active_queues() or {}
            stats = asked.stats() or {}
            active = asked.active() or {}
        except _broker_errors(conn) as exc:
            log.warning("health: could not inspect workers: %s", exc)
            return WorkersSeen(error=f"The broker could not be reached: {exc}")
    workers = []
    for host in sorted(pongs):
        pool = (stats.get(host) or {}).get("pool") or {}
        running = active.get(host)
        workers.append(WorkerInfo(
            hostname=host,
            queues=tuple(sorted(q.get("name", "?") for q in queues.get(host) or ())),
            concurrency=pool.get("max-concurrency"),
            active_tasks=len(running) if running is not None else None,
        ))
    return WorkersSeen(workers)


@dataclass(frozen=True)
class SilentWorker:
    """A worker that ran jobs lately but did not answer the ping."""
    hostname: str
    queues: tuple[str, ...]
    last_heartbeat: datetime


def recent_heartbeats(now: datetime | None = None) -> dict[str, tuple[datetime, tuple[str, ...]]]:
    """worker -> (last heartbeat of one of its attempts, the queues they came
    from), over SILENT_WORKER_WINDOW."""
    since = (now or timezone.now()) - SILENT_WORKER_WINDOW
    recent = Attempt.objects.filter(last_heartbeat_at__gte=since).exclude(worker="").order_by()
    last = dict(recent.values("worker").annotate(last=Max("last_heartbeat_at")).values_list("worker", "last"))
    queues: dict[str, set[str]] = {}
    for worker, queue in recent.values_list("worker", "queue").distinct():
        queues.setdefault(worker, set()).add(queue)
    return {worker: (at, tuple(sorted(queues.get(worker, ())))) for worker, at in last.items()}


def with_heartbeats(seen: WorkersSeen, now: datetime | None = None) -> tuple[WorkersSeen, list[SilentWorker]]:
    beats = recent_heartbeats(now)
    answered = {w.hostname for w in seen.workers}
    workers = [replace(w, last_heartbeat=beats[w.hostname][0]) if w.hostname in beats else w
               for w in seen.workers]
    # With the broker unreachable every worker would look silent: say nothing.
    silent = [] if seen.error else [
        SilentWorker(host, queues, at) for host, (at, queues) in beats.items() if host not in answered]
    silent.sort(key=lambda w: w.last_heartbeat, reverse=True)
    return WorkersSeen(workers, seen.error), silent


# --- Jobs, from the database ------------------------------------------------

def stuck_filter(now: datetime) -> Q:
    """Running, but nobody renews the lease: its worker is gone."""
    return Q(status=Status.RUNNING) & (Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True))


def is_stuck(job: Job, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return job.status == Status.RUNNING and (
        job.lease_expires_at is None or job.lease_expires_at < now)


@dataclass
class JobsOverview:
    counts: dict[str, int]
    oldest_queued: Job | None
    oldest_queued_age: timedelta | None
    stuck: list[Job]
    stuck_count: int
    waiting_for_slot: int
    now: datetime


def jobs_overview(now: datetime | None = None) -> JobsOverview:
    now = now or timezone.now()
    counts = {status: 0 for status in Status.values}
    for row in Job.objects.order_by().values("status").annotate(n=Count("pk")):
        counts[row["status"]] = row["n"]
    oldest = (Job.objects.filter(status=Status.QUEUED).select_related("owner")
              .order_by("created_at").first())
    stuck = Job.objects.filter(stuck_filter(now)).select_related("owner").order_by("lease_expires_at")
    return JobsOverview(
        counts=counts,
        oldest_queued=oldest,
        oldest_queued_age=(now - oldest.created_at) if oldest else None,
        stuck=list(stuck[:STUCK_LIST_LIMIT]),
        stuck_count=stuck.count(),
        waiting_for_slot=Job.objects.filter(status=Status.QUEUED, dispatched_at__isnull=True).count(),
        now=now,
    )


@dataclass
class Health:
    broker: BrokerQueues
    workers: WorkersSeen
    jobs: JobsOverview
    silent_workers: list[SilentWorker] = field(default_factory=list)


def gather(app=None) -> Health:
    jobs = jobs_overview()
    workers, silent = with_heartbeats(workers_seen(app), jobs.now)
    return Health(broker=queue_lengths(app), workers=workers, jobs=jobs, silent_workers=silent)


# --- Operator repairs -------------------------------------------------------

def mark_failed(job: Job) -> bool:
    """End a job as a system failure. False when it had already ended.

    A worker still running it loses its claim, so it stops at its next
    heartbeat and its result is never published."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.is_final:
            return False
        lifecycle._finalize(job, Status.FAILED, error_kind=ErrorKind.SYSTEM,
                            message=OPERATOR_FAILED_MESSAGE)
    return True


class Requeue:
    SENT = "sent"  # handed to the broker
    WAITING = "waiting"  # queued behind the owner's running limit
    ACTIVE = "active"  # still queued, or running with a live lease: not touched
    UNKNOWN_KIND = "unknown kind"  # its kind is no longer registered: not touched


def requeue(job: Job) -> str:
    """Put a final or stuck job back in the queue (lifecycle.redispatch)."""
    with transaction.atomic():
        # The lock keeps a worker from renewing the lease between the check
        # and the requeue.
        job = Job.objects.select_for_update().get(pk=job.pk)
        if not (job.is_final or is_stuck(job)):
            return Requeue.ACTIVE
        if job.kind_spec is None:
            return Requeue.UNKNOWN_KIND
        lifecycle.redispatch(job)
        sent = Job.objects.filter(pk=job.pk, dispatched_at__isnull=False).exists()
    return Requeue.SENT if sent else Requeue.WAITING
