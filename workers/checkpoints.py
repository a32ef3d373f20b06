"""A job's working state that outlives the worker running it.

A job's workdir is a temporary folder deleted after every attempt
(workers/tasks.py), so a long job whose worker is killed would start over. A
kind that can resume saves the folder it resumes from with `save(job_id,
folder)` whenever it has something worth keeping (an epoch, a finished
ensemble member), and its next attempt calls `restore(job_id, folder)` first.

The state is one zip in default storage, `checkpoints/<job id>/state-<n>.zip`,
so it survives on another machine too (a shared volume or S3). A new zip is
stored before the older ones are deleted: a worker killed halfway through a
save leaves the previous state whole. The folder is deleted when the job ends,
whatever its final status (lifecycle), and `prune_files` takes what a vanished
job left (retention.py).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

log = logging.getLogger(__name__)

FOLDER = "checkpoints"


def folder_of(job_id) -> str:
    return f"{FOLDER}/{job_id}"


def _stored(job_id) -> list[str]:
    """The job's state zips, oldest first."""
    try:
        _, files = default_storage.listdir(folder_of(job_id))
    except (FileNotFoundError, NotADirectoryError):
        return []
    states = [name for name in files if name.startswith("state-") and name.endswith(".zip")]
    return [f"{folder_of(job_id)}/{name}" for name in sorted(states, key=_number)]


def _number(name: str) -> int:
    try:
        return int(name[len("state-"):-len(".zip")])
    except ValueError:
        return -1


def save(job_id, directory: Path) -> str:
    """Store every regular file under `directory` as the job's state; returns its storage name."""
    directory = Path(directory)
    with tempfile.TemporaryDirectory(prefix="biofm-checkpoint-") as tmp:
        archive = Path(tmp) / "state.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for path in sorted(directory.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    zf.write(path, path.relative_to(directory).as_posix())
        # Nanoseconds name the newest; the number is never reused, so storage
        # never has to pick an "available" name beside an old one.
        name = f"{folder_of(job_id)}/state-{time.time_ns()}.zip"
        with open(archive, "rb") as fh:
            stored = default_storage.save(name, File(fh))
    for older in _stored(job_id):
        if older != stored and _number(older.rsplit("/", 1)[1]) < _number(stored.rsplit("/", 1)[1]):
            _delete(older)
    return stored


def restore(job_id, directory: Path) -> bool:
    """Unpack the job's newest whole state into `directory`. False if it has none.
    A zip cut short (its worker was killed while storing it) or damaged is
    logged and the one before it is tried: that one is deleted only once a
    newer one is stored whole."""
    directory = Path(directory)
    for name in reversed(_stored(job_id)):
        if directory.exists():
            shutil.rmtree(directory)  # nothing half-unpacked from a bad zip stays
        directory.mkdir(parents=True)
        try:
            with default_storage.open(name, "rb") as fh, zipfile.ZipFile(fh) as zf:
                _extract(zf, directory)
            return True
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            log.warning("job %s: checkpoint %s not restored (%s)", job_id, name, exc)
    return False


def _extract(zf: zipfile.ZipFile, directory: Path) -> None:
    """Our own zips hold plain relative paths; anything else is refused."""
    cap = settings.BIOFM_CHECKPOINT_MAX_BYTES
    members = zf.infolist()
    if sum(m.file_size for m in members) > cap:
        raise ValueError(f"the checkpoint unpacks to more than {cap} bytes")
    root = directory.resolve()
    for member in members:
        path = PurePosixPath(member.filename)
        is_link = (member.external_attr >> 16) & 0o170000 == 0o120000
        if path.is_absolute() or ".." in path.parts or is_link:
            raise ValueError(f"unsafe entry {member.filename!r}")
        target = (directory / path).resolve()
        if os.path.commonpath([root, target]) != str(root):
            raise ValueError(f"unsafe entry {member.filename!r}")
        if member.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(member) as src, open(target, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)


def delete(job_id) -> int:
    """Delete the job's saved state; returns how many files went."""
    states = _stored(job_id)
    for name in states:
        _delete(name)
    if states:
        try:  # a local folder left empty; object stores have none
            os.rmdir(default_storage.path(folder_of(job_id)))
        except (NotImplementedError, OSError):
            pass
    return len(states)


def _delete(name: str) -> None:
    try:
        default_storage.delete(name)
    except Exception as exc:  # an old state left behind is pruned later, never fatal
        log.warning("could not delete checkpoint %s: %s", name, exc)
