"""Deleting what the portal no longer needs (the `prune_jobs` and
`prune_files` commands and their daily Celery tasks).

* `prune_jobs`: the result files (and, if asked, the rows) of final jobs that
  ended more than BIOFM_RESULT_RETENTION_DAYS ago. 0 keeps everything.
* `prune_files`: files in the folders the portal writes (MANAGED_FOLDERS)
  that no row refers to any more (REFERENCE_SOURCES) and that are older than
  BIOFM_ORPHAN_GRACE_HOURS, so an upload stored moments before its job row
  is never taken for an orphan.

Everything goes through default_storage (listdir, delete, get_modified_time),
so the filesystem and S3 behave the same. Files of a job that is not final
are never deleted. Both take `dry_run`: report what would go, delete nothing.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Iterable, Iterator

from django.apps import apps
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from . import checkpoints
from .models import ACTIVE_STATUSES, FINAL_STATUSES, Job, JobFile

log = logging.getLogger(__name__)

# The storage folders whose files belong to rows of ours. Files elsewhere are
# never touched.
JOBS_FOLDER = "jobs"  # workers.models.job_file_path
MANAGED_FOLDERS = (JOBS_FOLDER, "atomica_inputs", "design/targets", "training/datasets", "training/uploads",
                   checkpoints.FOLDER)


@dataclass
class Report:
    dry_run: bool
    files: list[str] = field(default_factory=list)
    bytes: int = 0
    jobs: int = 0  # jobs whose files were pruned
    rows_deleted: int = 0  # job rows deleted with them
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"dry_run": self.dry_run, "files": len(self.files), "bytes": self.bytes,
                "jobs": self.jobs, "rows_deleted": self.rows_deleted, "errors": len(self.errors)}


# --- Old jobs -----------------------------------------------------------------

def expired_jobs(days: int, now: datetime | None = None):
    """Final jobs that ended more than `days` days ago."""
    cutoff = (now or timezone.now()) - timedelta(days=days)
    return Job.objects.filter(status__in=FINAL_STATUSES, finished_at__lt=cutoff)


def prune_jobs(*, days: int | None = None, delete_rows: bool | None = None, dry_run: bool = False,
               now: datetime | None = None) -> Report:
    """Delete the result files of jobs past the retention period, and their
    rows too with `delete_rows`. Kept rows are marked `files_pruned_at`, and
    the stored inputs they alone referred to become orphans for prune_files."""
    days = settings.BIOFM_RESULT_RETENTION_DAYS if days is None else days
    delete_rows = settings.BIOFM_RESULT_RETENTION_DELETE_ROWS if delete_rows is None else delete_rows
    report = Report(dry_run)
    if days <= 0:
        return report
    now = now or timezone.now()
    candidates = expired_jobs(days, now)
    if not delete_rows:
        candidates = candidates.filter(files_pruned_at__isnull=True)
    for job_id in candidates.order_by("finished_at").values_list("pk", flat=True).iterator():
        names = _prune_job(job_id, days, delete_rows, dry_run, now, report)
        # The rows went first: a file whose deletion fails is an orphan that
        # the next prune_files takes, never a row pointing at nothing.
        for name, size in names:
            report.files.append(name)
            report.bytes += size
            if not dry_run:
                _delete(name, report)
    return report


def _prune_job(job_id, days, delete_rows, dry_run, now, report) -> list[tuple[str, int]]:
    with transaction.atomic():
        # Locked and checked again: an operator may have requeued it meanwhile.
        job = expired_jobs(days, now).select_for_update().filter(pk=job_id).first()
        if job is None:
            return []
        names = list(JobFile.objects.filter(job=job).values_list("file", "size"))
        report.jobs += 1
        if dry_run:
            report.rows_deleted += int(delete_rows)
            return names
        if delete_rows:
            job.delete()
            report.rows_deleted += 1
        else:
            JobFile.objects.filter(job=job).delete()
            Job.objects.filter(pk=job.pk).update(files_pruned_at=now)
    return names


# --- Orphaned files -------------------------------------------------------------

@dataclass
class References:
    """Storage paths rows refer to: exact paths, and folders kept whole."""
    paths: set[str] = field(default_factory=set)
    folders: set[str] = field(default_factory=set)

    def __contains__(self, path: str) -> bool:
        if path in self.paths:
            return True
        parts = path.split("/")
        return any("/".join(parts[:n]) in self.folders for n in range(1, len(parts)))


def job_file_references() -> References:
    """Every JobFile's path; the whole folder of a job not yet final (its
    attempt stores its files before their rows exist)."""
    refs = References(set(JobFile.objects.values_list("file", flat=True)))
    active = Job.objects.filter(status__in=ACTIVE_STATUSES).values_list("pk", flat=True)
    refs.folders.update(f"{JOBS_FOLDER}/{pk}" for pk in active)
    return refs


def checkpoint_references() -> References:
    """The saved state of jobs not yet final (workers/checkpoints.py): a job
    that ended had its state deleted then, so what is left of one is an orphan."""
    active = Job.objects.filter(status__in=ACTIVE_STATUSES).values_list("pk", flat=True)
    return References(folders={checkpoints.folder_of(pk) for pk in active})


def stored_input_references() -> References:
    """ATOMICA's stored inputs that a job whose files are not pruned still
    uses (a rerun names them by id, so they must outlive the job's results).
    An input no job uses yet is kept by the grace period, like any file."""
    StoredInput = apps.get_model("analysis_atomica", "StoredInput")
    return References(set(StoredInput.objects.filter(jobs__files_pruned_at__isnull=True)
                          .values_list("file", flat=True)))


def design_target_references() -> References:
    Target = apps.get_model("design", "Target")
    return References(set(Target.objects.values_list("structure", flat=True)))


def training_dataset_references() -> References:
    """Datasets' files. A pending upload (training/uploads) has no row: it is
    kept by the grace period, long enough for its second step."""
    Dataset = apps.get_model("training", "Dataset")
    refs = References()
    for source, table in Dataset.objects.values_list("source", "table"):
        refs.paths.update((source, table))
    return refs


# Where rows refer to stored files. A new kind of stored file adds its folder
# to MANAGED_FOLDERS and a function here.
REFERENCE_SOURCES: list[Callable[[], References]] = [
    job_file_references,
    checkpoint_references,
    stored_input_references,
    design_target_references,
    training_dataset_references,
]


def referenced() -> References:
    refs = References()
    for source in REFERENCE_SOURCES:
        found = source()
        refs.paths |= found.paths
        refs.folders |= found.folders
    return refs


def orphaned_files(grace: timedelta, now: datetime | None = None,
                   folders: Iterable[str] = MANAGED_FOLDERS) -> list[str]:
    """Files in the managed folders that no row refers to, last modified
    more than `grace` ago."""
    cutoff = (now or timezone.now()) - grace
    refs = referenced()
    found = []
    for folder in folders:
        for path in walk(folder):
            if path in refs:
                continue
            try:
                modified = default_storage.get_modified_time(path)
            except Exception as exc:  # vanished, unknowable, or the store erred: keep it
                log.warning("prune_files: no modification time for %s (%s); kept", path, exc)
                continue
            if modified < cutoff:
                found.append(path)
    return found


def prune_files(*, grace_hours: int | None = None, dry_run: bool = False,
                now: datetime | None = None) -> Report:
    grace = timedelta(hours=settings.BIOFM_ORPHAN_GRACE_HOURS if grace_hours is None else grace_hours)
    report = Report(dry_run)
    candidates = orphaned_files(grace, now)
    # Looked up again just before deleting: a row created during the walk
    # (a rerun naming an old stored input) keeps its file.
    refs = referenced() if candidates else References()
    for path in candidates:
        if path in refs:
            continue
        report.files.append(path)
        try:
            report.bytes += default_storage.size(path)
        except Exception:  # the size is only for the report
            pass
        if not dry_run:
            _delete(path, report)
    if not dry_run and report.files:
        # A stored input's row goes with its file, so no job can name it again.
        apps.get_model("analysis_atomica", "StoredInput").objects.filter(file__in=report.files).delete()
    return report


# --- Storage ------------------------------------------------------------------

def walk(folder: str) -> Iterator[str]:
    """Every file under a storage folder, by listdir (S3 has no real folders)."""
    try:
        dirs, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in files:
        yield f"{folder}/{name}"
    for name in dirs:
        yield from walk(f"{folder}/{name}")


def _delete(path: str, report: Report) -> None:
    try:
        default_storage.delete(path)
    except Exception as exc:  # one bad file must not stop the rest
        log.warning("could not delete %s: %s", path, exc)
        report.errors.append(f"{path}: {exc}")
        return
    _remove_empty_parents(path)


def _remove_empty_parents(path: str) -> None:
    """On a local filesystem, remove the folders the deletion left empty, up
    to the managed folder (object stores have no folders to leave behind)."""
    try:
        local = default_storage.path(path)
    except NotImplementedError:
        return
    root = os.path.realpath(default_storage.path(""))
    parent = os.path.dirname(os.path.realpath(local))
    while parent.startswith(root) and parent != root:
        if os.path.relpath(parent, root).replace(os.sep, "/") in MANAGED_FOLDERS:
            break
        try:
            os.rmdir(parent)
        except OSError:  # not empty (or already gone)
            break
        parent = os.path.dirname(parent)


def _strings(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
