from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.http import Http404
from django.shortcuts import redirect, render
from django.conf import settings
from django.views.decorators.http import require_GET, require_POST
import numpy as np

from workers.access import get_visible_job
from workers.models import Job, Status

from workers import lifecycle
from workers.errors import ParamsError
from workers.quotas import QuotaExceeded

from .atomica_forms import AtomicaForm
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


@login_required
def new_atomica(request: HttpRequest) -> HttpResponse:
    return _job_form_page(
        request, AtomicaForm(request.POST or None, request.FILES or None), "analysis.atomica_embeddings",
        "ATOMICA interaction embeddings",
        "Atom, block and complex embeddings of interaction interfaces from ATOMICA records. "
        "Downloads: .npz, Parquet and JSON.",
        lambda p: "")


@login_required
@require_GET
def atomica_similar(request: HttpRequest, job_id, index: int) -> HttpResponse:
    """Complexes most like this one, by cosine similarity of ATOMICA graph
    embeddings (interface fingerprints), across the jobs the user can see."""
    job = get_visible_job(request.user, job_id)
    complexes = job.result.get("complexes", []) if job.kind == "analysis.atomica_embeddings" else []
    if not 0 <= index < len(complexes):
        raise Http404("No such complex.")
    query = np.asarray(complexes[index]["graph_embedding"])
    candidates = []
    others = Job.objects.visible_to(request.user).filter(
        kind="analysis.atomica_embeddings", status=Status.SUCCEEDED).only("id", "title", "result")
    for other in others:
        for n, entry in enumerate(other.result.get("complexes", [])):
            if other.pk == job.pk and n == index:
                continue
            candidates.append((other, n, entry))
    if candidates:
        matrix = np.asarray([c[2]["graph_embedding"] for c in candidates])
        scores = matrix @ query / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(query))
        order = np.argsort(-scores)[:25]
        hits = [{"job": candidates[i][0], "index": candidates[i][1], "id": candidates[i][2]["id"],
                 "score": float(scores[i])} for i in order]
    else:
        hits = []
    return render(request, "analysis/atomica_similar.html",
                  {"job": job, "query": complexes[index], "hits": hits, "searched": len(candidates)})


@login_required
@require_POST
def atomica_sides(request: HttpRequest) -> HttpResponse:
    """The interface sides a structure file offers, as <option>s (htmx)."""
    import json
    import tempfile
    from pathlib import Path

    from .atomica_inputs import ranked_sides, safe_name, side_dict

    upload = request.FILES.get("structure")
    options, error = [], ""
    if upload is None or upload.size > settings.BIOFM_UPLOAD_MAX_BYTES:
        error = "Choose a structure file under the size limit."
    else:
        with tempfile.TemporaryDirectory(prefix="biofm-sides-") as tmp:
            path = Path(tmp) / safe_name(upload.name)
            path.write_bytes(upload.read())
            try:
                options = [side_dict(o) for o in ranked_sides(path)]
            except ValueError as exc:
                error = str(exc)
    return render(request, "analysis/partials/side_options.html", {
        "options": [(json.dumps(o), o["label"]) for o in options], "error": error})
