"""An uploaded dataset file kept between the upload's steps (the file, then
the columns): stored under a random token that only this browser session
knows, so the second step needs no second upload and takes no path from the
client. A session keeps at most MAX_PENDING files; the oldest goes when a new
one comes, a file goes once its dataset is created, and `prune_files` removes
the ones an abandoned session left (MANAGED_FOLDERS in workers/retention.py)."""

from __future__ import annotations

import re
import secrets
import time

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from training.models.datasets import safe_filename

FOLDER = "training/uploads"
SESSION_KEY = "training_uploads"
MAX_PENDING = 3
TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")


def stash(session, data: bytes, filename: str) -> str:
    token = secrets.token_urlsafe(24)
    path = default_storage.save(f"{FOLDER}/{token}/{safe_filename(filename)}", ContentFile(data))
    pending = dict(session.get(SESSION_KEY, {}))
    pending[token] = {"path": path, "filename": filename, "at": time.time()}
    for old in sorted(pending, key=lambda t: pending[t]["at"])[:-MAX_PENDING]:
        _delete(pending.pop(old)["path"])
    session[SESSION_KEY] = pending
    return token


def fetch(session, token: str) -> tuple[bytes, str] | None:
    """The bytes and original name of this session's upload `token`, or None."""
    entry = session.get(SESSION_KEY, {}).get(token) if TOKEN.fullmatch(token or "") else None
    if entry is None:
        return None
    try:
        with default_storage.open(entry["path"], "rb") as handle:
            return handle.read(), entry["filename"]
    except FileNotFoundError:
        discard(session, token)
        return None


def discard(session, token: str) -> None:
    pending = dict(session.get(SESSION_KEY, {}))
    entry = pending.pop(token, None)
    if entry is not None:
        _delete(entry["path"])
        session[SESSION_KEY] = pending


def _delete(path: str) -> None:
    try:
        default_storage.delete(path)
    except OSError:  # already gone; prune_files removes what stays behind
        pass
