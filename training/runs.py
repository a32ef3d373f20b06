"""A training run's record: every training.train job is filed under its
dataset as a TrainingRun the moment it is submitted (the kind's on_submit),
so the run page and the dataset's history list it before a worker starts it."""

from __future__ import annotations

from workers import lifecycle
from workers.models import Job

from .models import TrainingRun

KIND = "training.train"


def run_fields(params: dict) -> dict:
    """What a TrainingRun repeats of its job's canonical parameters, for listing and sorting."""
    return {"dataset_id": params["dataset_id"], "family": params["family"], "hparams": params["hparams"],
            "split": {**params["split"], "folds": params["folds"]}, "ensemble": params["ensemble"]}


def run_of(job: Job) -> TrainingRun:
    """The job's run (made here for a job that predates its kind filing it)."""
    run, _ = TrainingRun.objects.get_or_create(job=job, defaults=run_fields(job.params))
    return run


def submit_run(user, params: dict, *, title: str = "", shared: bool = False, lab=None,
               rerun_of: Job | None = None) -> Job:
    """lifecycle.submit for training.train (its on_submit files the run)."""
    return lifecycle.submit(user, KIND, params, title=title, shared=shared, lab=lab, rerun_of=rerun_of)
