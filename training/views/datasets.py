"""Dataset pages: the list, the two-step upload (the file, then its columns
on a preview of the first rows), a dataset's page and its downloads."""

from __future__ import annotations

from pathlib import PurePath

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accounts.scoping import get_visible_or_404
from training.compute.datasets import DatasetError, read_preview

from .. import uploads
from ..forms import DatasetFileForm, DatasetForm
from ..models import Dataset
from ..models.datasets import dataset_limits, parse_and_store

# A page lists this many row errors and duplicate groups; the CSV download has the validated rows.
SHOWN = 500


@login_required
@require_GET
def dataset_list(request: HttpRequest) -> HttpResponse:
    visible = Dataset.objects.visible_to(request.user).select_related("owner", "lab").defer(
        "row_errors", "duplicates", "stats")
    return render(request, "training/datasets/list.html", {
        "mine": visible.filter(owner=request.user, builtin=False),
        "shared": visible.filter(builtin=False).exclude(owner=request.user),
        "builtins": visible.filter(builtin=True).order_by("name", "-version"),
    })


@login_required
@require_http_methods(["GET", "POST"])
def dataset_new(request: HttpRequest) -> HttpResponse:
    form = DatasetFileForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        token = uploads.stash(request.session, form.data_bytes, upload.name)
        return redirect("training:dataset_columns", token=token)
    return render(request, "training/datasets/upload.html", {"form": form, "step": 1},
                  status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def dataset_columns(request: HttpRequest, token: str) -> HttpResponse:
    pending = uploads.fetch(request.session, token)
    if pending is None:
        messages.error(request, "That upload is no longer here (each browser keeps its last "
                                f"{uploads.MAX_PENDING}); upload the file again.")
        return redirect("training:dataset_new")
    data, filename = pending
    preview = read_preview(data, filename, limits=dataset_limits())
    form = DatasetForm(request.POST or None, preview=preview, user=request.user,
                       initial={"name": PurePath(filename).stem[:200]})
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            stored = parse_and_store(
                owner=request.user, name=d["name"], data=data, filename=filename,
                smiles_column=d["smiles_column"], targets=d["targets"],
                keep_columns=d["keep_columns"], lab=form.chosen_lab(), shared=d["shared"],
                description=d["description"])
        except DatasetError as exc:
            form.add_error(None, str(exc))
        else:
            uploads.discard(request.session, token)
            dataset = stored.dataset
            if stored.created:
                messages.success(request, f"Dataset “{dataset}” stored: {dataset.n_rows} rows kept, "
                                          f"{len(dataset.row_errors)} left out with an error.")
            else:
                messages.info(request, f"“{dataset}” already has exactly this content (the same file and "
                                       "the same column choices); nothing new was stored.")
            return redirect(dataset)
    return render(request, "training/datasets/upload.html", {
        "form": form, "step": 2, "preview": preview, "filename": filename,
        "columns": form.columns_table()}, status=400 if form.errors else 200)


@login_required
@require_GET
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = get_visible_or_404(Dataset, request.user, pk, "dataset")
    versions = (Dataset.objects.visible_to(request.user).filter(owner=dataset.owner, name=dataset.name)
                .only("pk", "name", "version", "created_at", "n_rows", "content_hash").order_by("-version"))
    groups = dataset.duplicates.get("groups", [])
    return render(request, "training/datasets/detail.html", {
        "dataset": dataset, "versions": versions, "figures": target_figures(dataset),
        "errors": dataset.row_errors[:SHOWN], "duplicates": groups[:SHOWN],
        "merged_rows": dataset.n_source_rows - dataset.n_rows - len(dataset.row_errors),
        "shown": SHOWN, "is_owner": dataset.owner_id == request.user.pk,
    })


@login_required
@require_GET
def dataset_table(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = get_visible_or_404(Dataset, request.user, pk, "dataset")
    return FileResponse(dataset.table.open("rb"), as_attachment=True, content_type="text/csv",
                        filename=f"{dataset.name}-v{dataset.version}-validated.csv")


@login_required
@require_GET
def dataset_source(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = get_visible_or_404(Dataset, request.user, pk, "dataset")
    return FileResponse(dataset.source.open("rb"), as_attachment=True,
                        content_type="application/octet-stream", filename=dataset.source_name or "dataset")


def target_figures(dataset: Dataset) -> list[dict]:
    """One Plotly figure per target: the histogram of a regression target's
    labels, the class balance of a classification target's."""
    figures = []
    for target in dataset.targets:
        name, stat = target["name"], dataset.stats.get(target["name"], {})
        if target["task"] == "classification":
            counts = stat.get("counts", {})
            trace = {"type": "bar", "x": [f"class {k}" for k in counts], "y": list(counts.values())}
            axis = "class"
        else:
            histogram = stat.get("histogram", {})
            edges, counts = histogram.get("edges", []), histogram.get("counts", [])
            centres = [(a + b) / 2 for a, b in zip(edges, edges[1:])]
            widths = [b - a for a, b in zip(edges, edges[1:])]
            trace = {"type": "bar", "x": centres, "y": counts, "width": widths}
            axis = name
        figures.append({"name": name, "task": target["task"], "stat": stat, "figure": {
            "data": [trace],
            "layout": {"height": 260, "margin": {"l": 50, "r": 10, "t": 10, "b": 40},
                       "xaxis": {"title": {"text": axis}}, "yaxis": {"title": {"text": "molecules"}},
                       "bargap": 0.05}}})
    return figures
