"""What a job's compute function gets: a place to write files, a way to
report progress (which is also where cancellation is noticed), named
phases (`with ctx.phase("loading model"):`) that operators see per attempt,
and `ctx.set_hardware(...)`: the hardware the work ran on, which decides the
quota its worker hours count against.

Django-free: compute code and its tests can use `LocalContext` directly.
"""

from __future__ import annotations

import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .errors import JobCancelled


# The name of the compute's time spent in no named phase.
COMPUTING = "computing"

# What a job's worker hours are charged to (workers.quotas).
HARDWARE = ("cpu", "gpu")


def hardware_of_device(device) -> str:
    """The hardware of a torch device (or its name): "gpu" for CUDA ("cuda", "cuda:1"), else "cpu"."""
    kind = getattr(device, "type", None) or str(device).split(":", 1)[0]
    return "gpu" if kind == "cuda" else "cpu"


class JobContext:
    """Base context. Subclasses persist progress and phases and read the cancel flag."""

    def __init__(self, workdir: Path, params: dict, facts: dict | None = None,
                 hardware: str = "cpu"):
        self.workdir = Path(workdir)
        self.params = params
        # What cleaning learnt about the input (Job.input_facts): counts,
        # records left out. The params are already checked; see workers.kinds.
        self.facts = facts or {}
        self.files: dict[str, tuple[Path, str]] = {}
        self.workdir.mkdir(parents=True, exist_ok=True)
        # name -> [seconds, times entered], in the order first entered
        self._phases: dict[str, list] = {}
        self._open: list[list] = []  # [name, resumed at] of the phases open now, innermost last
        # The worker's own guess until the compute says what it used.
        self.hardware = _checked_hardware(hardware)

    def set_hardware(self, hardware: str) -> None:
        """Say what the work runs on, "cpu" or "gpu" (see hardware_of_device),
        once the compute has chosen its device: a GPU-queue job whose model
        fell back to the CPU is charged CPU hours."""
        hardware = _checked_hardware(hardware)
        if hardware != self.hardware:
            self.hardware = hardware
            self._record_hardware(hardware)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time a named phase of the work, e.g. `with ctx.phase("loading model"):`.

        Every second is counted in the innermost phase open, so phases never
        overlap; a phase entered again (in a loop) adds to its time. Time in
        no phase is reported as "computing"."""
        now = time.monotonic()
        if self._open:  # pause the enclosing phase
            outer = self._open[-1]
            self._phases[outer[0]][0] += now - outer[1]
        entry = self._phases.setdefault(str(name), [0.0, 0])
        entry[1] += 1
        self._open.append([str(name), now])
        try:
            yield
        finally:
            now = time.monotonic()
            done = self._open.pop()
            entry[0] += now - done[1]
            if self._open:
                self._open[-1][1] = now
            self._record_phases(self.phase_times())

    def phase_times(self, total_seconds: float | None = None) -> list[dict]:
        """The phases so far as [{"name", "seconds", "count"}]. Given the
        compute's whole running time, the time in no phase is added as
        "computing" (merged into a phase of that name, if the code named one)."""
        now = time.monotonic()
        seconds = {name: s for name, (s, _) in self._phases.items()}
        if self._open:  # the innermost open phase, up to now
            seconds[self._open[-1][0]] += now - self._open[-1][1]
        counts = {name: c for name, (_, c) in self._phases.items()}
        if total_seconds is not None:
            rest = max(0.0, total_seconds - sum(seconds.values()))
            seconds[COMPUTING] = seconds.get(COMPUTING, 0.0) + rest
            counts.setdefault(COMPUTING, 1)
        return [{"name": name, "seconds": round(s, 3), "count": counts[name]}
                for name, s in seconds.items()]

    # Compute code calls this between units of work.
    def progress(self, percent: float, message: str = "") -> None:
        percent = max(0.0, min(100.0, float(percent)))
        self._record_progress(percent, message)
        if self.cancel_requested():
            raise JobCancelled(message or "Cancelled")

    def check_cancelled(self) -> None:
        if self.cancel_requested():
            raise JobCancelled("Cancelled")

    def add_file(self, name: str, content: bytes | str | Path, content_type: str) -> Path:
        """Register a result file. Files are published only if the job succeeds,
        or ends cancelled with what it had so far (errors.JobCancelled's result)."""
        if "/" in name or name.startswith("."):
            raise ValueError(f"bad result file name {name!r}")
        path = self.workdir / name
        if isinstance(content, Path):
            if content.resolve() != path.resolve():
                shutil.copyfile(content, path)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        self.files[name] = (path, content_type)
        return path

    def _record_progress(self, percent: float, message: str) -> None:  # pragma: no cover
        pass

    def _record_phases(self, phases: list[dict]) -> None:  # pragma: no cover
        pass

    def _record_hardware(self, hardware: str) -> None:  # pragma: no cover
        pass

    def cancel_requested(self) -> bool:  # pragma: no cover
        return False


def _checked_hardware(hardware: str) -> str:
    if hardware not in HARDWARE:
        raise ValueError(f"hardware must be one of {HARDWARE}, not {hardware!r}")
    return hardware


class LocalContext(JobContext):
    """A context for running compute outside the portal (tests, scripts)."""

    def __init__(self, workdir: Path, params: dict | None = None,
                 on_progress: Callable[[float, str], None] | None = None,
                 cancel_after: float | None = None, facts: dict | None = None):
        super().__init__(workdir, params or {}, facts)
        self.events: list[tuple[float, str]] = []
        self._on_progress = on_progress
        self._cancel_at = None if cancel_after is None else time.monotonic() + cancel_after

    def _record_progress(self, percent: float, message: str) -> None:
        self.events.append((percent, message))
        if self._on_progress:
            self._on_progress(percent, message)

    def cancel_requested(self) -> bool:
        return self._cancel_at is not None and time.monotonic() >= self._cancel_at
