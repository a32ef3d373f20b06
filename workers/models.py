"""One Job model for every kind of work, and the files a job produced."""

from __future__ import annotations

import uuid

from django.db import models
from django.urls import reverse
from django.utils import timezone

from accounts.scoping import LabScoped, LabScopedQuerySet


class Status(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)
FINAL_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)


class ErrorKind(models.TextChoices):
    NONE = "", "—"
    INPUT = "input", "Problem with the input"
    SYSTEM = "system", "System error"


# Columns that can hold megabytes (a FASTA in params, embeddings in result, a
# traceback): listings and polled partials never read them.
HEAVY_FIELDS = ("params", "result", "error_detail")


class JobQuerySet(LabScopedQuerySet):
    def active(self):
        return self.filter(status__in=ACTIVE_STATUSES)

    def for_listing(self):
        """What a list of jobs shows: no heavy JSON, the owner joined."""
        return self.defer(*HEAVY_FIELDS).select_related("owner")


class Job(LabScoped):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=64, db_index=True)
    title = models.CharField(max_length=200, blank=True)
    params = models.JSONField(default=dict)
    queue = models.CharField(max_length=16, default="cpu")

    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    progress = models.FloatField(default=0.0)
    progress_message = models.CharField(max_length=300, blank=True)
    cancel_requested = models.BooleanField(default=False)

    # Set when the job was handed to the broker; null while it waits for a
    # free slot under the owner's concurrency limit.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Worker time spent on this job over all attempts, for quotas.
    run_seconds = models.FloatField(default=0.0)

    attempts = models.PositiveIntegerField(default=0)
    worker_host = models.CharField(max_length=200, blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)
    # The attempt that owns the job now, and until when (renewed by heartbeat).
    claim_token = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    error_kind = models.CharField(max_length=8, choices=ErrorKind.choices, blank=True)
    error_message = models.TextField(blank=True)
    # Traceback for operators; never shown to users.
    error_detail = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    rerun_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns"
    )

    objects = JobQuerySet.as_manager()

    class Meta(LabScoped.Meta):
        # The monthly quota sum (workers.quotas) reads this index alone: the
        # lab and the month's range lead, queue and run_seconds ride along.
        indexes = [models.Index(fields=["owner", "status"]),
                   models.Index(fields=["lab", "started_at", "queue", "run_seconds"], name="job_quota_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {str(self.id)[:8]} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("job_detail", args=[self.id])

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def kind_spec(self):
        from . import kinds

        try:
            return kinds.get(self.kind)
        except KeyError:
            return None

    @property
    def kind_label(self) -> str:
        spec = self.kind_spec
        return spec.label if spec else self.kind

    @property
    def waiting_for_slot(self) -> bool:
        return self.status == Status.QUEUED and self.dispatched_at is None

    def duration_seconds(self) -> float | None:
        if not self.started_at:
            return None
        end = self.finished_at or timezone.now()
        return (end - self.started_at).total_seconds()


def job_file_path(instance: "JobFile", filename: str) -> str:
    return f"jobs/{instance.job_id}/{instance.attempt_token}/{filename}"


class JobFile(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=200)
    file = models.FileField(upload_to=job_file_path, max_length=400)
    content_type = models.CharField(max_length=100, default="application/octet-stream")
    size = models.BigIntegerField(default=0)
    attempt_token = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["job", "name"], name="one_file_per_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.job_id})"
