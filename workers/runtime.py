"""The database-backed context a job's compute runs with inside a worker."""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection

from . import lifecycle
from .context import JobContext
from .errors import JobCancelled

log = logging.getLogger(__name__)

def worker_hardware() -> str:
    """What this worker's jobs run on until their compute says otherwise:
    BIOFM_WORKER_HARDWARE, else "gpu" if torch is loaded already (a model
    job ran here) and sees CUDA. Importing torch to ask would cost every job
    of a CPU worker seconds, so a worker that has not loaded it says "cpu"."""
    if settings.BIOFM_WORKER_HARDWARE:
        return settings.BIOFM_WORKER_HARDWARE
    torch = sys.modules.get("torch")
    return "gpu" if torch is not None and torch.cuda.is_available() else "cpu"


class LostClaim(Exception):
    """Another attempt owns the job now; this one must stop without writing."""


class DbJobContext(JobContext):
    # Progress is written at most this often, so a tight loop cannot flood the DB.
    MIN_WRITE_INTERVAL = 0.5

    def __init__(self, job, token: str, workdir: Path):
        # The claim wrote the worker's guess on the job and the attempt.
        super().__init__(workdir, job.params, job.input_facts, hardware=job.hardware or "cpu")
        self.job = job
        self.token = token
        self._cancel = False
        self._lost = False
        self._last_write = 0.0
        self._last_phase_write = 0.0

    def _record_progress(self, percent: float, message: str) -> None:
        now = time.monotonic()
        if now - self._last_write < self.MIN_WRITE_INTERVAL and percent < 100:
            return
        self._last_write = now
        ours, cancel = lifecycle.report_progress(self.job.pk, self.token, percent, message)
        self._lost |= not ours
        self._cancel |= cancel

    def _record_phases(self, phases: list[dict]) -> None:
        # Kept on the attempt's row as each phase ends, so an attempt whose
        # worker dies still shows how far it got. The final write is finish's.
        now = time.monotonic()
        if now - self._last_phase_write < self.MIN_WRITE_INTERVAL:
            return
        self._last_phase_write = now
        try:
            lifecycle.record_phases(self.job.pk, self.token, phases)
        except Exception:  # timing is for operators; it never fails a job
            log.warning("job %s: could not record its phases", self.job.pk, exc_info=True)

    def _record_hardware(self, hardware: str) -> None:
        # Written at once: the heartbeats' run_seconds count against it.
        self._lost |= not lifecycle.record_hardware(self.job.pk, self.token, hardware)

    def cancel_requested(self) -> bool:
        if self._lost:
            raise LostClaim()
        return self._cancel

    def note_heartbeat(self, ours: bool, cancel: bool) -> None:
        self._lost |= not ours
        self._cancel |= cancel


class Heartbeat(threading.Thread):
    """Renews the job's lease while the compute runs, even in long steps that
    report no progress, and passes a cancel request on to the context."""

    def __init__(self, ctx: DbJobContext, interval: float):
        super().__init__(name=f"heartbeat-{ctx.job.pk}", daemon=True)
        self.ctx = ctx
        self.interval = interval
        self._stop_event = threading.Event()
        self._last = time.monotonic()

    def run(self) -> None:
        try:
            while not self._stop_event.wait(self.interval):
                self.beat()
        finally:
            connection.close()  # this thread's own connection

    def _elapsed(self) -> float:
        now = time.monotonic()
        elapsed, self._last = now - self._last, now
        return elapsed

    def beat(self) -> None:
        elapsed = self._elapsed()
        try:
            # This thread's connection lives from beat to beat: drop it only
            # if it broke or outlived CONN_MAX_AGE.
            close_old_connections()
            ours, cancel = lifecycle.heartbeat(self.ctx.job.pk, self.ctx.token, elapsed)
        except Exception:  # a missed beat is survivable; the lease has slack
            return
        self.ctx.note_heartbeat(ours, cancel)

    def stop(self) -> float:
        """Stop beating. Returns the worker time since the last beat, which
        the attempt's final write (finish or release) counts, so ending a job
        costs no extra heartbeat."""
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=10)
        return self._elapsed()


__all__ = ["DbJobContext", "Heartbeat", "LostClaim", "JobCancelled"]
