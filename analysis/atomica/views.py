from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from workers.access import get_visible_job
from workers.models import Job, Status
from workers.submit_page import job_form_page

from .forms import AtomicaForm
from .models import StoredInput


@login_required
@require_http_methods(["GET", "POST"])
def new_atomica(request: HttpRequest) -> HttpResponse:
    return job_form_page(
        request, AtomicaForm(request.POST or None, request.FILES or None, user=request.user),
        "analysis.atomica_embeddings",
        heading="ATOMICA interaction embeddings",
        intro="Atom, block and complex embeddings of interaction interfaces from ATOMICA records. "
              "Downloads: .npz, Parquet and JSON.",
        template="analysis/new.html")


def _same_complex(a: dict, b: dict) -> bool:
    """The same input complex embedded twice: a rerun of the same records
    gives the same id and, up to GPU float noise, the same embedding."""
    return a.get("id") == b.get("id") and np.allclose(
        np.asarray(a["graph_embedding"], dtype=float), np.asarray(b["graph_embedding"], dtype=float),
        rtol=1e-4, atol=1e-6)


@login_required
@require_GET
def atomica_similar(request: HttpRequest, job_id, index: int) -> HttpResponse:
    """Complexes most like this one, by cosine similarity of ATOMICA graph
    embeddings (interface fingerprints), across the jobs the user can see.

    One row per distinct complex: the copies that reruns of the same input
    made (same record id, same embedding) collapse into the newest job's row,
    which says how many other runs hold it; copies of the query itself are
    left out (a complex is not "similar" to itself)."""
    job = get_visible_job(request.user, job_id)
    complexes = job.result.get("complexes", []) if job.kind == "analysis.atomica_embeddings" else []
    if not 0 <= index < len(complexes):
        raise Http404("No such complex.")
    query_entry = complexes[index]
    query = np.asarray(query_entry["graph_embedding"])
    candidates: list[dict] = []  # distinct complexes, newest job first
    copies_of_query = 0
    others = Job.objects.visible_to(request.user).filter(
        kind="analysis.atomica_embeddings", status=Status.SUCCEEDED).only(
        "id", "title", "created_at", "result").order_by("-created_at", "pk")
    for other in others:
        for n, entry in enumerate(other.result.get("complexes", [])):
            if other.pk == job.pk and n == index:
                continue
            if _same_complex(entry, query_entry):
                copies_of_query += 1
                continue
            seen = next((c for c in candidates if _same_complex(c["entry"], entry)), None)
            if seen is not None:
                seen["other_runs"] += 1
                continue
            candidates.append({"job": other, "index": n, "entry": entry, "other_runs": 0})
    hits = []
    if candidates:
        matrix = np.asarray([c["entry"]["graph_embedding"] for c in candidates])
        scores = matrix @ query / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(query))
        # A stable sort keeps the newest job first among equal scores.
        order = np.argsort(-scores, kind="stable")[:25]
        hits = [{"job": candidates[i]["job"], "index": candidates[i]["index"], "id": candidates[i]["entry"]["id"],
                 "other_runs": candidates[i]["other_runs"], "score": float(scores[i])} for i in order]
    return render(request, "analysis/atomica/similar.html",
                  {"job": job, "query": query_entry, "hits": hits, "searched": len(candidates),
                   "copies_of_query": copies_of_query})


@login_required
@require_POST
def atomica_sides(request: HttpRequest) -> HttpResponse:
    """The interface sides a structure file offers, as <option>s (htmx)."""
    from .inputs import ranked_sides, safe_name, side_dict

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
    return render(request, "analysis/atomica/side_options.html", {
        "options": [(json.dumps(o), o["label"]) for o in options], "error": error})


@login_required
@require_GET
def atomica_input(request: HttpRequest, input_id) -> FileResponse:
    """A stored input (the structure a job converted, its ligand SDF) for the
    3D viewer: the user's own, or one of a job the user can see."""
    row = StoredInput.objects.usable_by(request.user).filter(pk=input_id).first()
    if row is None:
        raise Http404("No such input.")
    # An attachment of plain text: a user's file is never rendered by the browser as a page.
    return FileResponse(row.file.open("rb"), as_attachment=True, filename=row.name,
                        content_type="text/plain; charset=utf-8")
