"""Training runs (one per training.train job) and the model registry."""

from __future__ import annotations

import uuid

from django.db import models
from django.urls import reverse
from django.utils import timezone

from accounts.scoping import LabScoped, scoped_through


class TrainingRun(models.Model):
    """A training.train job filed under its dataset. `epochs` is written epoch by
    epoch while the job runs, so the run page draws the curves live and a reload
    brings them back; the final metrics live here and on the job's result."""

    job = models.OneToOneField("workers.Job", on_delete=models.CASCADE, related_name="training_run")
    dataset = models.ForeignKey("training.Dataset", on_delete=models.PROTECT, related_name="runs")
    family = models.CharField(max_length=40)
    hparams = models.JSONField(default=dict)
    split = models.JSONField(default=dict)     # {"method", "sizes", "seed", ...}; members in the job's files
    ensemble = models.PositiveIntegerField(default=1)
    epochs = models.JSONField(default=list, blank=True)   # [{"member", "epoch", "train_loss", "val_loss", "val_metric", "seconds"}]
    metrics = models.JSONField(default=dict, blank=True)  # {"test": {target: {...}}, "mean": {...}}
    created_at = models.DateTimeField(default=timezone.now)

    objects = scoped_through("job").as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.family} on {self.dataset}"

    def get_absolute_url(self) -> str:
        return reverse("training:run_detail", args=[self.job_id])


def model_path(instance: "ModelVersion", filename: str) -> str:
    return f"training/models/{instance.uid}/{filename}"


class ModelVersion(LabScoped):
    """A registered model: name + version, the bundle (a zip of safetensors /
    skops and JSON), and its card."""

    uid = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    name = models.CharField(max_length=200)
    version = models.PositiveIntegerField(default=1)
    run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="models")
    bundle = models.FileField(upload_to=model_path, max_length=300)
    bundle_sha256 = models.CharField(max_length=64)
    card = models.JSONField(default=dict)   # dataset, hash, split, hparams, metrics, time, library versions
    targets = models.JSONField(default=list)   # [{"name", "task"}]
    # "solubility-esol v2 (D-MPNN ×5, scaffold test RMSE 0.71)": shown with every prediction.
    display_name = models.CharField(max_length=300)

    class Meta(LabScoped.Meta):
        constraints = [models.UniqueConstraint(fields=["owner", "name", "version"], name="one_model_version")]

    def __str__(self) -> str:
        return self.display_name or f"{self.name} v{self.version}"

    def get_absolute_url(self) -> str:
        return reverse("training:model_detail", args=[self.pk])
