"""The model registry: a run's model (or a model trained elsewhere, e.g. by the
`train_model` command) becomes a ModelVersion, numbered per owner and name, with
its bundle copied and its card kept beside it."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Max

from .models import ModelVersion, TrainingRun

BUNDLE_FILE = "model.zip"        # the run's packed model (training/outputs.py)
CARD_FILE = "model.json"         # inside the bundle: the config and the card (training/compute/bundle.py)
# Registration reads a card this large from a bundle at most; anything bigger is no card of ours.
MAX_CARD_BYTES = 2 * 1024 * 1024


class RegistrationError(Exception):
    """Why a run's model cannot be registered, said to the user."""


def next_version(owner, name: str) -> int:
    latest = ModelVersion.objects.filter(owner=owner, name=name).aggregate(v=Max("version"))["v"]
    return (latest or 0) + 1


def display_name(name: str, version: int, describe: str) -> str:
    """What every prediction shows: "solubility-esol v2 (D-MPNN ×5, scaffold test RMSE 0.71)"."""
    return f"{name} v{version} ({describe})" if describe else f"{name} v{version}"


def card_from_bundle(data: bytes) -> dict:
    """The card stored in a packed bundle, read without loading the model (no torch in the web process)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            info = zf.getinfo(CARD_FILE)
            if info.file_size > MAX_CARD_BYTES:
                raise RegistrationError(f"The model bundle's {CARD_FILE} is larger than a card can be.")
            config = json.loads(zf.read(info))
    except (KeyError, zipfile.BadZipFile, ValueError) as exc:
        raise RegistrationError(f"The model bundle has no readable {CARD_FILE} ({exc}).") from None
    card = config.get("card") if isinstance(config, dict) else None
    if not isinstance(card, dict):
        raise RegistrationError(f"The model bundle's {CARD_FILE} has no card.")
    return card


def register_bundle(owner, name: str, bundle: bytes, card: dict, describe: str, *, run: TrainingRun | None = None,
                    lab=None, shared: bool = False) -> ModelVersion:
    """A new version of `name` for `owner`: the next number, even when two
    registrations of the same name race (the unique constraint decides, the loser retries)."""
    targets = [{"name": n, "task": t} for n, t in zip(card.get("targets") or [], card.get("tasks") or [])]
    digest = hashlib.sha256(bundle).hexdigest()
    for _ in range(5):
        version = next_version(owner, name)
        model = ModelVersion(owner=owner, lab=lab, shared=shared, name=name, version=version, run=run,
                             bundle_sha256=digest, card={**card, "describe": describe}, targets=targets,
                             display_name=display_name(name, version, describe))
        model.bundle.save(BUNDLE_FILE, ContentFile(bundle), save=False)
        try:
            with transaction.atomic():
                model.save()
            return model
        except IntegrityError:
            model.bundle.delete(save=False)
    raise RegistrationError(f"Could not number a new version of “{name}”; try again.")


def registrable(run: TrainingRun) -> str:
    """Why this run's model cannot be registered, or "" when it can: a run that
    succeeded, or one cancelled after it kept a model."""
    job = run.job
    if job.status not in ("succeeded", "cancelled"):
        return f"The run is {job.get_status_display().lower()}; a model can be registered once it has ended."
    if job.files.named(BUNDLE_FILE) is None:
        return "This run kept no model." if job.status == "cancelled" else "This run's model file is missing."
    return ""


def register_run(run: TrainingRun, user, name: str, *, lab=None, shared: bool = False) -> ModelVersion:
    """Register the model a run trained: its bundle copied, its card completed
    with the dataset version and the run it came from."""
    problem = registrable(run)
    if problem:
        raise RegistrationError(problem)
    job, dataset = run.job, run.dataset
    with job.files.named(BUNDLE_FILE).file.open("rb") as fh:
        bundle = fh.read()
    result = job.result or {}
    card = dict(result.get("card") or card_from_bundle(bundle))
    card["dataset"] = {"id": dataset.pk, "name": dataset.name, "version": dataset.version,
                       "content_hash": dataset.content_hash, "rows": dataset.n_rows}
    card["run"] = {"job": str(job.pk), "status": job.status, "family": run.family, "ensemble": run.ensemble}
    card.setdefault("split", run.split)
    card.setdefault("hparams", run.hparams)
    card.setdefault("metrics", run.metrics or result.get("metrics") or {})
    if job.status == "cancelled":
        card["cancelled"] = True
        epochs = run.epochs or []
        card["cancelled_note"] = (f"Cancelled after {len(epochs)} epoch{'s' if len(epochs) != 1 else ''}: "
                                  "the best weights so far were kept.")
    describe = result.get("describe") or card.get("describe") or ""
    return register_bundle(user, name, bundle, card, describe, run=run, lab=lab, shared=shared)
