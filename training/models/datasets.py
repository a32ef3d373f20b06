"""Datasets: an upload parsed into validated rows. A version is immutable and
identified by the hash of its content; uploading again makes a new version."""

from __future__ import annotations

import uuid

from django.db import models
from django.urls import reverse

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
