"""The model registry's pages: the models a user may see (their own and those
shared with a lab of theirs), a model's card, and its bundle to download."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.scoping import get_visible_or_404

from .. import charts
from ..models import Dataset, ModelVersion, TrainingRun


def card_context(model: ModelVersion, user) -> dict:
    """The card as the page (and the API) shows it: the stored card, with links
    to the dataset and the run where the user may still see them."""
    card = model.card or {}
    dataset_info = card.get("dataset") or {}
    dataset = None
    if dataset_info.get("id") is not None:
        dataset = Dataset.objects.visible_to(user).filter(pk=dataset_info["id"]).only(
            "pk", "name", "version", "content_hash").first()
    run = None
    if model.run_id:
        run = TrainingRun.objects.visible_to(user).filter(pk=model.run_id).only("pk", "job_id").first()
    return {
        "model": model, "card": card, "dataset_info": dataset_info, "dataset": dataset, "run": run,
        "has_metrics": bool(card.get("metrics")),
        "metric_table": charts.metric_table(card.get("metrics") or {}, model.targets),
        "hparams": sorted((card.get("hparams") or {}).items()),
        "libraries": sorted((card.get("library_versions") or card.get("libraries") or {}).items()),
        "split": card.get("split") or {},
        "training_seconds": card.get("training_seconds"),
    }


@login_required
@require_GET
def model_list(request: HttpRequest) -> HttpResponse:
    models = ModelVersion.objects.visible_to(request.user).select_related("owner", "lab").order_by("name", "-version")
    return render(request, "training/models/list.html", {"sections": [
        ("Your models", [m for m in models if m.owner_id == request.user.pk], "mine"),
        ("Shared with your labs", [m for m in models if m.owner_id != request.user.pk], "shared"),
    ]})


@login_required
@require_GET
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    model = get_visible_or_404(ModelVersion.objects.select_related("owner", "lab"), request.user, pk, "model")
    context = card_context(model, request.user)
    context["versions"] = ModelVersion.objects.visible_to(request.user).filter(
        owner=model.owner, name=model.name).order_by("-version").only("pk", "name", "version", "display_name")
    return render(request, "training/models/detail.html", context)


@login_required
@require_GET
def model_bundle(request: HttpRequest, pk: int) -> FileResponse:
    model = get_visible_or_404(ModelVersion, request.user, pk, "model")
    filename = f"{model.name}-v{model.version}.zip".replace("/", "_").replace('"', "")
    return FileResponse(model.bundle.open("rb"), as_attachment=True, filename=filename,
                        content_type="application/zip")
