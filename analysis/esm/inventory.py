"""Which ESM-2 checkpoints the GPU workers have, as they report it.

The web process may run on another machine than the workers, so it never
looks at a disk: every worker that serves the ESM-2 queue writes a
WorkerInventory row (its Celery node name, queues, the published checkpoints
in BIOFM_ESM_WEIGHTS_DIR or torch hub's cache, whether it may download the
others) when it starts (Celery's ``worker_ready``), again every third of
BIOFM_ESM_INVENTORY_MAX_AGE (so files an operator adds are seen without a
restart and a live worker's report never goes stale), and after a job loaded
a model or found one missing. A worker that stops deletes its row; one that
dies stops refreshing it, and a row older than BIOFM_ESM_INVENTORY_MAX_AGE
counts for nothing.

What the form and clean_esm_params do with the fresh rows (``availability``):
* no fresh row at all (no worker has started yet, or they are all down):
  every model is offered and a submission is accepted, the page saying so;
  the job waits in the queue for a worker as any job does, and if that
  worker lacks the model the job fails with a message for the user;
* otherwise a model is offered when some worker has it, or may download it
  ("downloads on first use"), and refused at submission when none has it
  and none may download it.

The parent process of a worker reads only directory entries here
(compute/catalog.py, no torch).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from .compute.catalog import ESM2_MODELS, installed_models, search_dirs
from .models import WorkerInventory

log = logging.getLogger(__name__)

# The queue the ESM-2 kind runs on (kind.py's KIND.queue).
QUEUE = "gpu"

# The default model, first installed in this order: 650M is the size fair-esm
# and most published work use for embeddings; a smaller one is faster but
# weaker, so the largest of those; 3B is about five times slower than 650M for
# a modest gain, so it is the default only when nothing else is installed.
PREFERENCE = ("esm2_t33_650M_UR50D", "esm2_t30_150M_UR50D", "esm2_t12_35M_UR50D",
              "esm2_t6_8M_UR50D", "esm2_t36_3B_UR50D")
assert set(PREFERENCE) == set(ESM2_MODELS)

INSTALLED, DOWNLOADS, MISSING, UNKNOWN = "installed", "downloads", "missing", "unknown"


@dataclass
class Availability:
    """The union of the fresh reports of the workers serving the queue."""

    reported: bool = False
    installed: set[str] = field(default_factory=set)
    may_download: bool = False
    workers: list[str] = field(default_factory=list)

    def status(self, name: str) -> str:
        if not self.reported:
            return UNKNOWN
        if name in self.installed:
            return INSTALLED
        if self.may_download and name in ESM2_MODELS:
            return DOWNLOADS
        return MISSING

    def usable(self, name: str) -> bool:
        return self.status(name) != MISSING

    def ordered(self) -> list[str]:
        """Installed models first, then those that would download, then the
        rest; smallest first within each."""
        rank = {INSTALLED: 0, DOWNLOADS: 1, UNKNOWN: 1, MISSING: 2}
        sizes = list(ESM2_MODELS)
        return sorted(ESM2_MODELS, key=lambda n: (rank[self.status(n)], sizes.index(n)))

    def default_model(self) -> str:
        """The first installed model in PREFERENCE; with none installed (or no
        report yet), the first of PREFERENCE."""
        return next((n for n in PREFERENCE if n in self.installed), PREFERENCE[0])

    def refusal(self, name: str) -> str:
        spec = ESM2_MODELS[name]
        have = [n for n in ESM2_MODELS if n in self.installed]
        offer = (f"Available: {', '.join(have)}." if have
                 else "No ESM-2 model is installed on them yet; ask the operators to install one.")
        return (f"{name} ({spec.parameters}) is not installed on the GPU workers, and they may not "
                f"download it. {offer}")


def availability(queue: str = QUEUE) -> Availability:
    since = timezone.now() - timedelta(seconds=settings.BIOFM_ESM_INVENTORY_MAX_AGE)
    rows = [row for row in WorkerInventory.objects.filter(reported_at__gte=since)
            .only("worker", "queues", "checkpoints", "may_download")
            if queue in (row.queues or [])]
    return Availability(
        reported=bool(rows),
        installed={name for row in rows for name in (row.checkpoints or {}) if name in ESM2_MODELS},
        may_download=any(row.may_download for row in rows),
        workers=sorted(row.worker for row in rows),
    )


def report(worker: str, queues: list[str] | None = None) -> WorkerInventory:
    """Write this machine's checkpoints as `worker`'s inventory. `queues`
    None keeps the queues it reported before (a job knows only its own)."""
    weights_dir = settings.BIOFM_ESM_WEIGHTS_DIR or None
    values = {
        "checkpoints": installed_models(weights_dir),
        "may_download": bool(settings.BIOFM_ESM_ALLOW_DOWNLOAD),
        "search_dirs": [str(d) for d in search_dirs(weights_dir)],
        "reported_at": timezone.now(),
    }
    if queues is not None:
        values["queues"] = sorted(queues)
    row, _ = WorkerInventory.objects.update_or_create(
        worker=worker, defaults=values, create_defaults={**values, "queues": sorted(queues or [])})
    return row


def report_from_job() -> None:
    """After a job loaded a model (perhaps downloading it) or found one
    missing: refresh the inventory of the worker running it. Never fails the job."""
    from celery import current_task

    request = getattr(current_task, "request", None)
    worker = getattr(request, "hostname", None)
    if not worker or getattr(request, "is_eager", False):
        return  # not in a worker (a test running the task in-process)
    queue = (getattr(request, "delivery_info", None) or {}).get("routing_key")
    try:
        exists = WorkerInventory.objects.filter(worker=worker).exists()
        report(worker, None if exists else [queue or QUEUE])
    except Exception:
        log.warning("could not report the ESM-2 models of %s", worker, exc_info=True)


# --- The worker's side: Celery signals (connected in apps.py) -----------------

class _Refresher(threading.Thread):
    def __init__(self, worker: str, queues: list[str], interval: float):
        super().__init__(name="esm-inventory", daemon=True)
        self.worker, self.queues, self.interval = worker, queues, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                close_old_connections()
                report(self.worker, self.queues)
            except Exception:
                log.warning("could not refresh the ESM-2 models of %s", self.worker, exc_info=True)
            finally:
                connection.close()  # this thread's own connection, idle until next time


_refresher: _Refresher | None = None


def on_worker_ready(sender=None, **kwargs) -> None:
    """Celery's worker_ready, in the worker's parent process: report (before
    the worker logs "ready"), then keep the report fresh."""
    global _refresher
    worker = getattr(sender, "hostname", None)
    task_consumer = getattr(sender, "task_consumer", None)
    queues = sorted(q.name for q in getattr(task_consumer, "queues", None) or [])
    if not worker or QUEUE not in queues:
        return
    try:
        row = report(worker, queues)
        log.info("ESM-2 models on %s: %s (downloads %s)", worker,
                 ", ".join(row.checkpoints) or "none", "allowed" if row.may_download else "off")
    except Exception:  # a worker that cannot report still runs jobs
        log.warning("could not report the ESM-2 models of %s", worker, exc_info=True)
    # (Its database connection stays open: a pool child forked later drops the
    # inherited one, Celery's Django fixup sees to that.)
    if _refresher is None:
        _refresher = _Refresher(worker, queues, settings.BIOFM_ESM_INVENTORY_MAX_AGE / 3)
        _refresher.start()


def on_worker_shutdown(sender=None, **kwargs) -> None:
    """Celery's worker_shutdown: a stopped worker offers nothing."""
    global _refresher
    if _refresher is None:
        return
    _refresher.stopped.set()
    worker, _refresher = _refresher.worker, None
    try:
        WorkerInventory.objects.filter(worker=worker).delete()
    except Exception:
        log.warning("could not remove the ESM-2 models of %s", worker, exc_info=True)
