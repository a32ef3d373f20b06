from __future__ import annotations

import numpy as np
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from workers.access import get_visible_job
from workers.submit_page import job_form_page

from .compute.charts import contact_figure
from .forms import EsmForm


@login_required
@require_http_methods(["GET", "POST"])
def new_esm(request: HttpRequest) -> HttpResponse:
    return job_form_page(
        request, EsmForm(request.POST or None, request.FILES or None, user=request.user), "analysis.esm_embeddings",
        heading="ESM-2 protein embeddings",
        intro="Per-sequence and per-residue embeddings and contact maps from the published ESM-2 "
              "models, exact to fair-esm's own forward pass. Results download as .npz and in fair-esm "
              "extract.py's per-sequence .pt layout.",
        template="analysis/new.html",
        note=lambda facts: facts["n_rejected"] and (f"{facts['n_rejected']} record(s) were left out; "
                                                    f"{facts['n_records']} will be embedded."))


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
    return render(request, "analysis/esm/contact_map.html",
                  {"figure": figure, "record_id": ids[index], "chart_id": f"contact-{index}",
                   "figure_id": f"contact-{index}-figure",
                   "sequence": _sequence_of(job, ids[index])[:len(contacts)]})


def _sequence_of(job, record_id: str) -> str:
    """The sequence of one record of the job's canonical FASTA, for matching
    a structure's chain to the contact map ("" when not found)."""
    from analysis.fasta import read_records

    fasta = (job.params or {}).get("fasta")
    if not isinstance(fasta, str):
        return ""
    return next((r.sequence for r in read_records(fasta) if r.id == record_id), "")
