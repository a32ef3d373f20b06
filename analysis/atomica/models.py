"""Files users give ATOMICA jobs (uploads, base64 items, converted structures).

A stored input belongs to the user who gave it. Job parameters name it by id
(`{"source": "stored", "input_id": "<uuid>"}`), never by a storage path, and
the kind's `check_access` refuses an id the submitter may not use with the
answer a missing id gets. A user may use their own inputs and the inputs of
any job they can see (a lab member rerunning a shared job reruns it on that
job's inputs, which the job's results already show them).

Which jobs use an input is recorded (`jobs`, filled when the job is created),
so pruning knows what is still referenced: `StoredInput.objects.unreferenced()`
and `StoredInput.objects.referenced_paths()`.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

INPUT_DIR = "atomica_inputs"


def input_path(instance: "StoredInput", filename: str) -> str:
    # The name is the row's id plus the file's suffix; the user's file name is kept in `name`.
    suffix = filename[filename.index("."):] if "." in filename else ""
    return f"{INPUT_DIR}/{instance.pk.hex}{suffix[:60]}"


class StoredInputQuerySet(models.QuerySet):
    def usable_by(self, user):
        """The user's own inputs and those of jobs the user can see."""
        if not user.is_authenticated:
            return self.none()
        from workers.models import Job

        return self.filter(Q(owner=user) | Q(jobs__in=Job.objects.visible_to(user))).distinct()

    def referenced(self):
        return self.filter(jobs__isnull=False).distinct()

    def unreferenced(self):
        return self.filter(jobs__isnull=True)

    def referenced_paths(self) -> set[str]:
        """Storage names of the inputs some job still uses (for pruning)."""
        return set(self.referenced().values_list("file", flat=True))


class StoredInput(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="atomica_inputs")
    file = models.FileField(upload_to=input_path, max_length=300)
    name = models.CharField(max_length=255, help_text="The name the user gave the file")
    size = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    jobs = models.ManyToManyField("workers.Job", related_name="atomica_inputs", blank=True)

    objects = StoredInputQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.owner})"

    def read(self) -> bytes:
        with self.file.open("rb") as fh:
            return fh.read()


# Keys of an item that name stored inputs, and what each holds.
INPUT_KEYS = ("input_id", "records_input_id", "ligand_sdf_input_id")


def input_ids(params: dict) -> list[str]:
    """Every stored-input id the job parameters name (malformed ones left out)."""
    ids = []
    for item in params.get("items") or []:
        if not isinstance(item, dict):
            continue
        for key in INPUT_KEYS:
            try:
                ids.append(str(uuid.UUID(str(item[key]))))
            except (KeyError, ValueError):
                pass
    return ids


def record_job_inputs(sender, instance, created: bool, **kwargs) -> None:
    """post_save of Job: note which stored inputs a new ATOMICA job uses."""
    if created and instance.kind == "analysis.atomica_embeddings":
        ids = input_ids(instance.params or {})
        if ids:
            instance.atomica_inputs.add(*StoredInput.objects.filter(pk__in=ids))
