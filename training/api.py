"""Training endpoints under /api/v1/training: datasets (upload, list, detail);
runs and models append their sections below."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from django.http import FileResponse, Http404, HttpResponse
from django.urls import reverse
from ninja import Field, File, Form, Query, Router, Schema
from ninja import Status as Reply
from ninja.files import UploadedFile

from accounts.scoping import get_visible_or_404
from workers.access import get_visible_job
from workers.api import LAB_FIELD, ErrorOut, JobOut, LabOut, job_out, submit_from_api
from workers.errors import ParamsError
from workers.waiting import accepted

from .forms import INFER
from .models import Dataset, ModelVersion, TrainingRun
from .models.datasets import parse_and_store
from .runs import KIND as RUN_KIND, submit_run

router = Router(tags=["training"])

# ---------------------------------------------------------------- datasets


class DatasetUploadIn(Schema):
    name: str
    smiles_column: str | None = None
    targets: list[str]
    tasks: list[str] = []
    keep_columns: list[str] = []
    description: str = ""
    shared: bool = False
    lab: int | str | None = LAB_FIELD


class TargetOut(Schema):
    name: str
    task: str


class DatasetSummaryOut(Schema):
    id: int
    name: str
    version: int
    content_hash: str
    builtin: bool
    owner: str
    shared: bool
    lab: LabOut | None
    targets: list[TargetOut]
    n_rows: int
    n_source_rows: int
    created_at: datetime
    url: str
    api_url: str


class DatasetOut(DatasetSummaryOut):
    created: bool
    description: str
    citation: str
    source_name: str
    smiles_column: str
    columns: list[str]
    n_row_errors: int
    row_errors: list[dict[str, Any]]
    duplicates: dict[str, Any]
    stats: dict[str, Any]
    table_url: str


def dataset_out(request, dataset: Dataset, *, detail: bool = True, created: bool = False) -> dict:
    absolute = request.build_absolute_uri
    out = {
        "id": dataset.pk, "name": dataset.name, "version": dataset.version, "content_hash": dataset.content_hash,
        "builtin": dataset.builtin, "owner": "" if dataset.builtin else dataset.owner.email,
        "shared": dataset.shared, "targets": dataset.targets, "n_rows": dataset.n_rows,
        "n_source_rows": dataset.n_source_rows, "created_at": dataset.created_at,
        "lab": dataset.lab and {"id": dataset.lab.pk, "slug": dataset.lab.slug, "name": dataset.lab.name},
        "url": absolute(dataset.get_absolute_url()),
        "api_url": absolute(reverse("api:training_dataset", args=[dataset.pk])),
    }
    if detail:
        out.update({
            "created": created, "description": dataset.description, "citation": dataset.citation,
            "source_name": dataset.source_name, "smiles_column": dataset.smiles_column,
            "columns": dataset.columns, "n_row_errors": len(dataset.row_errors), "row_errors": dataset.row_errors,
            "duplicates": dataset.duplicates, "stats": dataset.stats,
            "table_url": absolute(reverse("api:training_dataset_table", args=[dataset.pk])),
        })
    return out


def _targets(payload: DatasetUploadIn) -> dict[str, str | None]:
    from training.compute.table import TASKS

    if not payload.targets:
        raise ParamsError("targets", "Name at least one target column.")
    if payload.tasks and len(payload.tasks) != len(payload.targets):
        raise ParamsError("tasks", f"Give one task per target ({len(payload.targets)}), or none to infer them.")
    tasks = payload.tasks or [INFER] * len(payload.targets)
    for task in tasks:
        if task not in (INFER, "infer", *TASKS):
            raise ParamsError("tasks", f"Unknown task “{task}”: use regression, classification, or infer.")
    return {t: (None if task in (INFER, "infer") else task) for t, task in zip(payload.targets, tasks)}


@router.post("/datasets", response={201: DatasetOut, 200: DatasetOut, 400: ErrorOut},
             url_name="training_dataset_upload")
def upload_dataset(request, file: File[UploadedFile], payload: Form[DatasetUploadIn]):
    """Upload a CSV or SDF (multipart: `file`, and one `targets` field per target column, with
    `tasks` in the same order or none to infer them). Answers 201 with the new version, or 200
    with the version of that name that already has exactly this content; 400 names the problem
    (row errors are not a 400: the good rows are kept and the others listed in `row_errors`)."""
    from django.conf import settings

    from accounts.sharing import lab_from_api, remember_lab
    from training.compute.datasets import DatasetError

    if file.size > settings.BIOFM_UPLOAD_MAX_BYTES:
        raise ParamsError("file", f"“{file.name}” is {file.size / 1e6:.1f} MB; the limit is "
                                  f"{settings.BIOFM_UPLOAD_MAX_BYTES / 1e6:.1f} MB.")
    if not payload.name.strip():
        raise ParamsError("name", "Give the dataset a name.")
    targets = _targets(payload)
    lab = lab_from_api(request.user, payload.lab) or request.user.profile.default_lab
    try:
        stored = parse_and_store(
            owner=request.user, name=payload.name.strip()[:200], data=file.read(), filename=file.name or "upload",
            smiles_column=payload.smiles_column or None, targets=targets, keep_columns=payload.keep_columns,
            lab=lab, shared=payload.shared, description=payload.description)
    except DatasetError as exc:
        raise ParamsError("file", f"“{file.name}”: {exc}") from None
    remember_lab(request.user, lab)
    return Reply(201 if stored.created else 200, dataset_out(request, stored.dataset, created=stored.created))


@router.get("/datasets", response=list[DatasetSummaryOut], url_name="training_datasets")
def list_datasets(request, builtin: bool | None = None):
    """Datasets you may see: yours, your labs' shared ones and the built-ins, newest first."""
    datasets = Dataset.objects.visible_to(request.user).select_related("owner", "lab").defer(
        "row_errors", "duplicates", "stats")
    if builtin is not None:
        datasets = datasets.filter(builtin=builtin)
    return [dataset_out(request, d, detail=False) for d in datasets]


@router.get("/datasets/{dataset_id}", response=DatasetOut, url_name="training_dataset")
def dataset_detail(request, dataset_id: int):
    return dataset_out(request, get_visible_or_404(Dataset, request.user, dataset_id, "dataset"))


@router.get("/datasets/{dataset_id}/table.csv", response={200: None}, url_name="training_dataset_table")
def dataset_table(request, dataset_id: int):
    """The validated rows as CSV: what training reads."""
    dataset = get_visible_or_404(Dataset, request.user, dataset_id, "dataset")
    return FileResponse(dataset.table.open("rb"), as_attachment=True, content_type="text/csv",
                        filename=f"{dataset.name}-v{dataset.version}-validated.csv")


# ---------------------------------------------------------------- runs

class SplitIn(Schema):
    method: str = Field("random", description="random, scaffold, stratified or column")
    sizes: list[float] = Field(default_factory=lambda: [0.8, 0.1, 0.1], description="train, validation, test")
    seed: int = 0
    column: str | None = Field(None, description="For method column: the kept column naming each row's set")


class RunIn(Schema):
    dataset_id: int
    targets: list[str] = Field(default_factory=list, description="Empty: every target of the dataset")
    family: str = Field("fingerprint_rf", description="fingerprint_rf, dmpnn or attentivefp")
    hparams: dict[str, Any] = Field(default_factory=dict, description="The family's; its defaults for the rest")
    split: SplitIn = Field(default_factory=SplitIn)
    folds: int = Field(0, description="k-fold cross-validation (3-10); 0: one split")
    ensemble: int = Field(1, description="Members (1-10), seeds seed..seed+N-1")
    seed: int = 0
    title: str = ""
    shared: bool = False
    lab: int | str | None = LAB_FIELD


class EpochOut(Schema):
    member: int
    epoch: int
    train_loss: float | None
    val_loss: float | None
    val_metric: float | None
    seconds: float | None
    best_epoch: int | None
    attempt: int | None = None
    fold: int | None = None


class RunOut(Schema):
    job: UUID
    status: str
    progress: float
    progress_message: str
    dataset: DatasetSummaryOut
    family: str
    hparams: dict[str, Any]
    split: dict[str, Any]
    ensemble: int
    n_epochs: int
    epochs: list[EpochOut]
    metrics: dict[str, Any]
    describe: str | None
    method: str | None
    cancelled: bool
    job_api_url: str


@router.post("/runs", response={202: JobOut, 400: ErrorOut, 403: ErrorOut}, url_name="training_run_submit")
def submit_training_run(request, response: HttpResponse, payload: RunIn):
    """Start a training run (the kind training.train). Answers 202 with the job; follow its
    metrics and epochs at GET /training/runs/{job id}. Another user's dataset is answered as a
    missing one (400 naming dataset_id)."""
    params = payload.dict(exclude={"title", "shared", "lab"})
    job = submit_from_api(request, RUN_KIND, params, payload, submit=submit_run)
    return accepted(response, job, job_out(request, job))


@router.get("/runs/{job_id}", response=RunOut, url_name="training_run")
def training_run(request, job_id: UUID, since: int = Query(0, ge=0, description="Leave out the first N epochs "
                                                                                "(those already read)")):
    """A run's epochs so far (while it runs, too) and, once it has ended, its test metrics."""
    job = get_visible_job(request.user, job_id)
    run = TrainingRun.objects.select_related("dataset__owner", "dataset__lab").filter(job=job).first()
    if run is None:
        raise Http404("No such training run.")
    result = job.result or {}
    return {
        "job": job.pk, "status": job.status, "progress": job.progress, "progress_message": job.progress_message,
        "dataset": dataset_out(request, run.dataset, detail=False), "family": run.family,
        "hparams": run.hparams, "split": run.split, "ensemble": run.ensemble,
        "n_epochs": len(run.epochs), "epochs": run.epochs[since:], "metrics": run.metrics,
        "describe": result.get("describe"), "method": result.get("method"),
        "cancelled": bool(result.get("cancelled")),
        "job_api_url": request.build_absolute_uri(reverse("api:job_status", args=[job.pk])),
    }


# ---------------------------------------------------------------- model registry


class ModelSummaryOut(Schema):
    id: int
    name: str
    version: int
    display_name: str
    owner: str
    shared: bool
    lab: LabOut | None
    targets: list[TargetOut]
    cancelled: bool
    created_at: datetime
    url: str
    api_url: str


class ModelOut(ModelSummaryOut):
    bundle_sha256: str
    bundle_url: str
    dataset: dict[str, Any] | None = Field(None, description="The training data: id, name, version, content_hash, "
                                                               "rows; url where you may still see it")
    run_url: str | None = None
    card: dict[str, Any] = Field(description="The model card: family, label, method, hparams, split, metrics "
                                             "(per_target and mean), targets, tasks, libraries, training_seconds, ...")


def model_out(request, model: ModelVersion, *, detail: bool = True) -> dict:
    absolute = request.build_absolute_uri
    out = {
        "id": model.pk, "name": model.name, "version": model.version, "display_name": model.display_name,
        "owner": model.owner.email, "shared": model.shared, "targets": model.targets,
        "cancelled": bool((model.card or {}).get("cancelled")), "created_at": model.created_at,
        "lab": model.lab and {"id": model.lab.pk, "slug": model.lab.slug, "name": model.lab.name},
        "url": absolute(model.get_absolute_url()),
        "api_url": absolute(reverse("api:training_model", args=[model.pk])),
    }
    if detail:
        from .views.models import card_context

        shown = card_context(model, request.user)
        dataset = dict(shown["dataset_info"]) or None
        if dataset is not None and shown["dataset"] is not None:
            dataset["url"] = absolute(shown["dataset"].get_absolute_url())
        out.update({
            "bundle_sha256": model.bundle_sha256, "card": model.card, "dataset": dataset,
            "bundle_url": absolute(reverse("training:model_bundle", args=[model.pk])),
            "run_url": absolute(shown["run"].get_absolute_url()) if shown["run"] else None,
        })
    return out


@router.get("/models", response=list[ModelSummaryOut], url_name="training_models")
def list_models(request, name: str | None = None, limit: int = Query(100, ge=1, le=500),
                offset: int = Query(0, ge=0, le=1_000_000)):
    """Registered models you may see (yours and those shared with a lab of yours), by name, newest version first."""
    models = ModelVersion.objects.visible_to(request.user).select_related("owner", "lab").order_by(
        "name", "-version", "pk")
    if name:
        models = models.filter(name=name)
    return [model_out(request, m, detail=False) for m in models[offset:offset + limit]]


@router.get("/models/{model_id}", response={200: ModelOut, 404: ErrorOut}, url_name="training_model")
def model_detail(request, model_id: int):
    """A registered model and its card."""
    model = get_visible_or_404(ModelVersion.objects.select_related("owner", "lab"), request.user, model_id, "model")
    return model_out(request, model)
