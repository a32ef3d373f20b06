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


class Hardware(models.TextChoices):
    # workers.context.HARDWARE; blank: no attempt has started.
    NONE = "", "—"
    CPU = "cpu", "CPU"
    GPU = "gpu", "GPU"


class ErrorKind(models.TextChoices):
    NONE = "", "—"
    INPUT = "input", "Problem with the input"
    SYSTEM = "system", "System error"


# Columns that can hold megabytes (a FASTA in params, embeddings in result, a
# traceback): listings and polled partials never read them.
HEAVY_FIELDS = ("params", "result", "error_detail", "input_facts")


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
    # The kind's canonical parameters: what the runner reads and a rerun reuses.
    params = models.JSONField(default=dict)
    # What cleaning learnt about the submitted input (counts, records left out
    # and why), kept apart from the parameters; see workers.kinds.
    input_facts = models.JSONField(default=dict, blank=True)
    # The queue decides where it is sent (and which quota a submission is
    # checked against); `hardware` is what its latest attempt ran on, and
    # decides which quota its run_seconds count against (workers.quotas).
    queue = models.CharField(max_length=16, default="cpu")
    hardware = models.CharField(max_length=8, choices=Hardware.choices, blank=True)

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
    # Set when the retention policy deleted its result files (workers/retention.py).
    files_pruned_at = models.DateTimeField(null=True, blank=True)
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
        # lab and the month's range lead, hardware and run_seconds ride along.
        indexes = [models.Index(fields=["owner", "status"]),
                   models.Index(fields=["lab", "started_at", "hardware", "run_seconds"], name="job_quota_idx")]
        # The health page (workers/admin.py) shows every user's jobs and the
        # broker's state: a permission of its own, not merely staff.
        permissions = [("view_worker_health", "Can view the worker and queue health page")]

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
    def params_summary(self) -> str:
        spec = self.kind_spec
        return spec.summarize_params(self.params, self.input_facts) if spec else ""

    @property
    def waiting_for_slot(self) -> bool:
        return self.status == Status.QUEUED and self.dispatched_at is None

    @property
    def run_time_seconds(self) -> float | None:
        """What the job list shows as run time: worker time over all
        attempts where recorded, else the wall time since it started."""
        return self.run_seconds or self.duration_seconds()

    def duration_seconds(self) -> float | None:
        if not self.started_at:
            return None
        end = self.finished_at or timezone.now()
        return (end - self.started_at).total_seconds()

    # Below this much progress the rate says little (model loading, reading inputs).
    ETA_MIN_PROGRESS = 3.0

    def seconds_left(self) -> float | None:
        """A running job's time left at the rate of its progress so far:
        elapsed x (100 - p) / p. None while the progress is too small to tell."""
        if self.status != Status.RUNNING or not self.started_at:
            return None
        if not self.ETA_MIN_PROGRESS <= (self.progress or 0) < 100:
            return None
        elapsed = max(0.0, (timezone.now() - self.started_at).total_seconds())
        return elapsed * (100 - self.progress) / self.progress


def job_file_path(instance: "JobFile", filename: str) -> str:
    return f"jobs/{instance.job_id}/{instance.attempt_token}/{filename}"


class JobFileQuerySet(models.QuerySet):
    def named(self, name: str) -> "JobFile | None":
        # PostgreSQL text cannot hold NUL: such a name (…csv%00 in a URL) is
        # no file's, rather than a database error.
        if "\x00" in name:
            return None
        return self.filter(name=name).first()


class JobFile(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=200)
    file = models.FileField(upload_to=job_file_path, max_length=400)
    content_type = models.CharField(max_length=100, default="application/octet-stream")
    size = models.BigIntegerField(default=0)
    attempt_token = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = JobFileQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["job", "name"], name="one_file_per_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.job_id})"


class Outcome(models.TextChoices):
    RUNNING = "", "running (or its worker vanished)"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"
    RETRIED = "retried", "back to the queue for a retry"
    WORKER_LOST = "worker lost", "its worker process died"
    LOST_CLAIM = "lost claim", "lost its claim to another attempt"
    ABANDONED = "abandoned", "its lease lapsed; a later attempt took over"
    STOPPED = "stopped", "the job was ended while it ran (operator or cancel)"


class Attempt(models.Model):
    """One attempt at running a job: the worker that claimed it, how long it
    waited in the queue, and how long each phase of its run took.

    A row per attempt (rather than a list on the job) so operators can query
    across jobs: slow model loads on one worker, queue waits per queue."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    # The claim token of this attempt: every write to the row is keyed on it.
    token = models.CharField(max_length=64, unique=True)
    # The Celery node name (e.g. gpu@host), as the health view's ping shows it.
    worker = models.CharField(max_length=200, blank=True, db_index=True)
    queue = models.CharField(max_length=16, blank=True)
    # What it ran on: the worker's guess at the claim, then what the compute
    # said (JobContext.set_hardware).
    hardware = models.CharField(max_length=8, choices=Hardware.choices, blank=True)
    # When its message was (last) put in the queue: the dispatch for a first
    # attempt, the end of the previous attempt for a later one.
    queued_at = models.DateTimeField(null=True, blank=True)
    queue_seconds = models.FloatField(null=True, blank=True)
    claimed_at = models.DateTimeField(default=timezone.now)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    # [{"name": "loading model", "seconds": 1.2, "count": 1}, ...] in the order
    # first entered; the time the compute spent in no named phase is
    # "computing", and storing the result files is "writing results".
    phases = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["job", "number"]
        indexes = [models.Index(fields=["worker", "last_heartbeat_at"])]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.job_id}"

    @property
    def run_time_seconds(self) -> float | None:
        """What the job list shows as run time: worker time over all
        attempts where recorded, else the wall time since it started."""
        return self.run_seconds or self.duration_seconds()

    def duration_seconds(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.claimed_at).total_seconds()
