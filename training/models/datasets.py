"""Datasets: an upload parsed into validated rows. A version is immutable and
identified by the hash of its content; uploading again makes a new version."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.db import IntegrityError, models, transaction
from django.urls import reverse
from django.utils.text import get_valid_filename

from accounts.scoping import LabScoped, LabScopedQuerySet


class DatasetQuerySet(LabScopedQuerySet):
    def visible_to(self, user):
        """Built-in public datasets are everyone's; the rest as any lab-scoped object."""
        if user is None or not user.is_authenticated:
            return self.none()
        return super().visible_to(user) | self.filter(builtin=True)


def dataset_path(instance: "Dataset", filename: str) -> str:
    return f"training/datasets/{instance.uid}/{filename}"


class Dataset(LabScoped):
    uid = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    name = models.CharField(max_length=200)
    version = models.PositiveIntegerField(default=1)
    description = models.TextField(blank=True)
    # sha256 of the uploaded bytes and the column/task choices: the version's identity.
    content_hash = models.CharField(max_length=64, db_index=True)
    source = models.FileField(upload_to=dataset_path, max_length=300)   # the file as uploaded
    source_name = models.CharField(max_length=300, blank=True)
    # The validated rows as CSV (row, smiles, <targets...>, <kept columns...>): what training reads.
    table = models.FileField(upload_to=dataset_path, max_length=300)
    smiles_column = models.CharField(max_length=200, blank=True)       # blank for SDF
    targets = models.JSONField(default=list)       # [{"name", "task"}]
    columns = models.JSONField(default=list, blank=True)  # other columns kept (split by column)
    n_rows = models.PositiveIntegerField(default=0)        # rows kept
    n_source_rows = models.PositiveIntegerField(default=0)
    row_errors = models.JSONField(default=list, blank=True)   # [{"row", "column", "message"}]
    duplicates = models.JSONField(default=dict, blank=True)   # {"rule", "groups": [...]}
    stats = models.JSONField(default=dict, blank=True)        # per target: counts, histogram / balance
    builtin = models.BooleanField(default=False, help_text="A public dataset shipped with the portal.")
    citation = models.TextField(blank=True)

    objects = DatasetQuerySet.as_manager()

    class Meta(LabScoped.Meta):
        constraints = [models.UniqueConstraint(fields=["owner", "name", "version"], name="one_dataset_version")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    def get_absolute_url(self) -> str:
        return reverse("training:dataset_detail", args=[self.pk])


def content_hash(data: bytes, smiles_column: str | None, targets: dict[str, str],
                 keep_columns=()) -> str:
    """A version's identity: the bytes as uploaded and the choices that turn
    them into a table (SMILES column, each target's task, kept columns). Tasks
    are the resolved ones, so "infer" and the task it infers are one version."""
    choices = {"smiles_column": smiles_column or "", "targets": [[name, task] for name, task in targets.items()],
               "keep_columns": list(keep_columns)}
    digest = hashlib.sha256(data)
    digest.update(b"\0")
    digest.update(json.dumps(choices, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()


@dataclass
class Stored:
    dataset: Dataset
    created: bool   # False: this exact content was already a version of that name


def store_dataset(*, owner, name: str, data: bytes, filename: str, table, smiles_column: str | None,
                  lab=None, shared: bool = False, description: str = "", builtin: bool = False,
                  citation: str = "") -> Stored:
    """Files a parsed table as the next version of (owner, name), or answers the
    version that already has this content."""
    from training.compute.datasets import DUPLICATE_RULE, table_to_csv, target_stats

    digest = content_hash(data, smiles_column, dict(zip(table.targets, table.tasks)), list(table.columns))
    existing = Dataset.objects.filter(owner=owner, name=name, content_hash=digest).first()
    if existing is not None:
        return Stored(existing, False)
    dataset = Dataset(
        owner=owner, lab=lab, shared=shared, name=name, description=description, content_hash=digest,
        source_name=filename, smiles_column=smiles_column or "",
        targets=[{"name": t, "task": task} for t, task in zip(table.targets, table.tasks)],
        columns=list(table.columns), n_rows=len(table), n_source_rows=source_row_count(table),
        row_errors=[e.as_dict() for e in table.errors],
        duplicates={"rule": DUPLICATE_RULE, "groups": list(table.duplicates)},
        stats=target_stats(table), builtin=builtin, citation=citation)
    dataset.source.save(safe_filename(filename), ContentFile(data), save=False)
    dataset.table.save("table.csv", ContentFile(table_to_csv(table).encode()), save=False)
    for _attempt in range(3):
        dataset.version = (Dataset.objects.filter(owner=owner, name=name)
                           .aggregate(m=models.Max("version"))["m"] or 0) + 1
        try:
            with transaction.atomic():
                dataset.save()
            return Stored(dataset, True)
        except IntegrityError:
            # Another upload of the same name took this version number meanwhile.
            continue
    raise IntegrityError(f"Could not number a new version of “{name}”; try again.")


def source_row_count(table) -> int:
    """Rows the file had: the kept ones, the ones left out with an error and
    the ones merged into a duplicate."""
    # A group whose labels all contradicted is in the errors row by row, not merged.
    kept = set(table.rows)
    merged = sum(len(group["rows"]) - 1 for group in table.duplicates if group["rows"][0] in kept)
    return len(table) + len(table.errors) + merged


def safe_filename(filename: str) -> str:
    """The upload's own name without any folder (a client's path is never a storage path)."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip().lstrip(".")
    return get_valid_filename(name) if name else "upload"


def dataset_limits():
    """The caps on one dataset file, from the site's settings (an upload's, and a built-in's)."""
    from django.conf import settings

    from training.compute.datasets import DatasetLimits

    return DatasetLimits(max_bytes=settings.BIOFM_UPLOAD_MAX_BYTES,
                         max_smiles_chars=settings.BIOFM_MOLECULE_MAX_SMILES_CHARS,
                         max_heavy_atoms=settings.BIOFM_MOLECULE_MAX_HEAVY_ATOMS)


def parse_and_store(*, owner, name: str, data: bytes, filename: str, smiles_column: str | None,
                    targets: dict[str, str | None], keep_columns=(), limits=None, **fields) -> Stored:
    """An upload's whole path from bytes to a stored version (the page, the API
    and the built-ins share it). Raises DatasetError for a file that gives no dataset."""
    from training.compute.datasets import parse_dataset

    table = parse_dataset(data, filename, smiles_column, targets, keep_columns=tuple(keep_columns),
                          limits=limits or dataset_limits())
    return store_dataset(owner=owner, name=name, data=data, filename=filename, table=table,
                         smiles_column=smiles_column, **fields)
