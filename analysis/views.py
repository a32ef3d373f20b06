from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET
import numpy as np

from workers.access import get_visible_job

from workers import lifecycle
from workers.errors import ParamsError
from workers.quotas import QuotaExceeded

from .charts import contact_figure
from .esm_forms import EsmForm
from .forms import AnalysisForm


def _job_form_page(request, form, kind: str, heading: str, intro: str,
                   rejected_note) -> HttpResponse:
    """Shared by the submission pages: validate, submit, go to the job."""
    if request.method == "POST" and form.is_valid():
        params = form.cleaned_data["params"]
        try:
            job = lifecycle.submit(request.user, kind, params, title=form.cleaned_data["title"],
                                   shared=form.cleaned_data["shared"])
        except (QuotaExceeded, ParamsError) as exc:
            form.add_error(None, getattr(exc, "message", str(exc)))
        else:
            note = rejected_note(params)
            if note:
                messages.warning(request, note)
            return redirect(job)
    return render(request, "analysis/new.html", {"form": form, "heading": heading, "intro": intro},
                  status=400 if form.errors else 200)


@login_required
def new_analysis(request: HttpRequest) -> HttpResponse:
    return _job_form_page(
        request, AnalysisForm(request.POST or None, request.FILES or None), "analysis.protparam",
        "Protein sequence analysis",
        "Biopython ProtParam figures, amino-acid composition and a Kyte-Doolittle hydropathy "
        "plot. Records that fail validation are listed with the reason; the others are analysed.",
        lambda p: p["n_rejected"] and (f"{p['n_rejected']} record(s) will be reported as rejected; "
                                       f"{p['n_records']} will be analysed."))


@login_required
def new_esm(request: HttpRequest) -> HttpResponse:
    return _job_form_page(
        request, EsmForm(request.POST or None, request.FILES or None), "analysis.esm_embeddings",
        "ESM-2 protein embeddings",
        "Per-sequence and per-residue embeddings and contact maps from the published ESM-2 "
        "models, exact to fair-esm's own forward pass. Results download as .npz and in fair-esm "
        "extract.py's per-sequence .pt layout.",
        lambda p: p["rejected"] and (f"{len(p['rejected'])} record(s) were left out; "
                                     f"{p['n_records']} will be embedded."))


@login_required
@require_GET
def esm_contacts(request: HttpRequest, job_id, index: int) -> HttpResponse:
    """The contact map of one sequence of a finished job, as a Plotly heatmap."""
    job = get_visible_job(request.user, job_id)
    ids = job.result.get("contact_ids", []) if job.kind == "analysis.esm_embeddings" else []
    if not 0 <= index < len(ids):
        raise Http404("No contact map for that sequence.")
    npz_file = job.files.filter(name="embeddings.npz").first()
    if npz_file is None:
        raise Http404("No results file.")
    with npz_file.file.open("rb") as fh:
        contacts = np.load(fh)[f"{ids[index]}/contacts"]
    figure = contact_figure(ids[index], contacts)
    return render(request, "analysis/partials/contact_map.html",
                  {"figure": figure, "record_id": ids[index], "chart_id": f"contact-{index}",
                   "figure_id": f"contact-{index}-figure"})
