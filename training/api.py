"""Training endpoints under /api/v1/training: datasets (upload, list, detail);
runs and models append their sections below."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import FileResponse
from django.urls import reverse
from ninja import File, Form, Router, Schema
from ninja import Status as Reply
from ninja.files import UploadedFile

from accounts.scoping import get_visible_or_404
from workers.api import LAB_FIELD, ErrorOut, LabOut
from workers.errors import ParamsError

from .forms import INFER
from .models import Dataset
from .models.datasets import parse_and_store

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
