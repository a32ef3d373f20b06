"""Starting a training run (the form); the run page, history and compare are
in run_pages.py."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.scoping import find_visible
from workers.access import get_visible_job
from workers.submit_page import submit_form

from ..forms import RunForm
from ..models import Dataset
from ..runs import KIND, submit_run


def _initial(request: HttpRequest) -> tuple[dict, object]:
    """The form's starting values: a dataset named in ?dataset=, or another
    run's parameters (?from=<job id>, to train again with a change)."""
    initial, source = {}, None
    if request.GET.get("from"):
        source = get_visible_job(request.user, request.GET["from"])
        if source.kind != KIND:
            raise Http404("Not a training run.")
        p = source.params
        train, val, test = p["split"]["sizes"]
        initial = {"dataset": p["dataset_id"], "targets": ", ".join(p["targets"]), "family": p["family"],
                   "hparams": json.dumps(p["hparams"]), "split_method": p["split"]["method"], "train_size": train,
                   "val_size": val, "test_size": test, "split_seed": p["split"]["seed"],
                   "split_column": p["split"]["column"] or "", "folds": p["folds"], "ensemble": p["ensemble"],
                   "seed": p["seed"], "title": source.title}
    elif request.GET.get("dataset"):
        dataset = find_visible(Dataset, request.user, request.GET["dataset"])
        if dataset is None:
            raise Http404("No such dataset.")
        initial["dataset"] = dataset.pk
    return initial, source


@login_required
@require_http_methods(["GET", "POST"])
def run_new(request: HttpRequest) -> HttpResponse:
    initial, source = _initial(request)
    form = RunForm(request.POST or None, initial=initial, user=request.user)
    if request.method == "POST" and form.is_valid():
        job = submit_form(form, KIND, rerun_of=source, submit=submit_run)
        if job is not None:
            return redirect(job)
    return render(request, "training/train/form.html", {
        "form": form, "source": source, "families": form.families, "split_methods": form.split_methods,
    }, status=400 if form.errors else 200)
