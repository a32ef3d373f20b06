"""What a job's compute function gets: a place to write files, and a way to
report progress (which is also where cancellation is noticed).

Django-free: compute code and its tests can use `LocalContext` directly.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable

from .errors import JobCancelled


class JobContext:
    """Base context. Subclasses persist progress and read the cancel flag."""

    def __init__(self, workdir: Path, params: dict, facts: dict | None = None):
        self.workdir = Path(workdir)
        self.params = params
        # What cleaning learnt about the input (Job.input_facts): counts,
        # records left out. The params are already checked; see workers.kinds.
        self.facts = facts or {}
        self.files: dict[str, tuple[Path, str]] = {}
        self.workdir.mkdir(parents=True, exist_ok=True)

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
        """Register a result file. Files are published only if the job succeeds."""
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

    def cancel_requested(self) -> bool:  # pragma: no cover
        return False


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
