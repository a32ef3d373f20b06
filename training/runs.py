"""Submitting a training run: the job and its TrainingRun row in one transaction,
so the run page and the dataset's history list it before a worker starts it."""

from __future__ import annotations

from django.db import transaction

from workers import lifecycle
from workers.models import Job

from .models import TrainingRun

KIND = "training.train"


def run_fields(params: dict) -> dict:
    """What a TrainingRun repeats of its job's canonical parameters, for listing and sorting."""
    return {"dataset_id": params["dataset_id"], "family": params["family"], "hparams": params["hparams"],
            "split": {**params["split"], "folds": params["folds"]}, "ensemble": params["ensemble"]}


def submit_run(user, params: dict, *, title: str = "", shared: bool = False, lab=None,
               rerun_of: Job | None = None) -> Job:
    with transaction.atomic():
        job = lifecycle.submit(user, KIND, params, title=title, shared=shared, lab=lab, rerun_of=rerun_of)
        TrainingRun.objects.create(job=job, **run_fields(job.params))
    return job


def run_of(job: Job) -> TrainingRun:
    """The job's run; made here for a job submitted another way (a rerun, POST /api/v1/jobs)."""
    run, _ = TrainingRun.objects.get_or_create(job=job, defaults=run_fields(job.params))
    return run
