from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from workers.access import get_visible_job
from workers.models import Status
from workers.submit_page import job_form_page

from .forms import AnalysisForm


@login_required
@require_http_methods(["GET", "POST"])
def new_analysis(request: HttpRequest) -> HttpResponse:
    return job_form_page(
        request, AnalysisForm(request.POST or None, request.FILES or None, user=request.user), "analysis.protparam",
        heading="Protein sequence analysis",
        intro="Biopython ProtParam figures, amino-acid composition and a Kyte-Doolittle hydropathy "
              "plot. Records that fail validation are listed with the reason; the others are analysed.",
        template="analysis/new.html",
        note=lambda facts: facts["n_rejected"] and (
            f"{facts['n_rejected']} record(s) will be reported as rejected; "
            f"{facts['n_records']} will be analysed."))


# The table's sortable columns, in display order: (key in protparam.json, header).
TABLE_COLUMNS = [
    ("id", "Id"), ("description", "Description"), ("length", "Length"), ("molecular_weight", "MW (Da)"),
    ("isoelectric_point", "pI"), ("charge_at_ph7", "Charge pH 7"), ("gravy", "GRAVY"),
    ("instability_index", "Instability"), ("aromaticity", "Aromaticity"),
    ("extinction_coefficient_reduced", "ε280 reduced"), ("extinction_coefficient_oxidized", "ε280 cystines"),
    ("helix_fraction", "Helix"), ("turn_fraction", "Turn"), ("sheet_fraction", "Sheet"),
]
TABLE_PAGE_SIZE = 50


def _sorted_rows(rows: list[dict], sort: str) -> list[dict]:
    key = sort.lstrip("-")
    present = [r for r in rows if r.get(key) is not None]
    # Records without a figure (all-unknown sequences) go last either way.
    present.sort(key=lambda r: r[key].lower() if isinstance(r[key], str) else r[key],
                 reverse=sort.startswith("-"))
    return present + [r for r in rows if r.get(key) is None]


@login_required
@require_GET
def protparam_table(request: HttpRequest, job_id) -> HttpResponse:
    """Every analysed record of a finished job, filtered by id or description
    (?q=), sorted by a column (?sort=, "-" for descending) and paged (?page=).
    The rows come from the job's protparam.json, not from the stored result,
    which keeps only the first 500."""
    job = get_visible_job(request.user, job_id)
    data_file = job.files.named("protparam.json") if (
        job.kind == "analysis.protparam" and job.status == Status.SUCCEEDED) else None
    if data_file is None:
        raise Http404("No analysis table for that job.")
    with data_file.file.open("rb") as fh:
        rows = json.load(fh)["records"]
    q = request.GET.get("q", "").strip()
    if q:
        needle = q.lower()
        rows = [r for r in rows if needle in r["id"].lower() or needle in (r.get("description") or "").lower()]
    sort = request.GET.get("sort", "")
    if sort.lstrip("-") in dict(TABLE_COLUMNS):
        rows = _sorted_rows(rows, sort)
    else:
        sort = ""
    page = Paginator(rows, TABLE_PAGE_SIZE).get_page(request.GET.get("page"))
    methods = job.result.get("methods", {})
    columns = [{"key": key, "label": label, "method": methods.get(key, ""),
                "dir": "asc" if sort == key else "desc" if sort == f"-{key}" else "",
                "sort": f"-{key}" if sort == key else key} for key, label in TABLE_COLUMNS]
    template = "analysis/protparam/table.html" if request.htmx else "analysis/protparam/table_page.html"
    return render(request, template, {"job": job, "page": page, "q": q, "sort": sort, "columns": columns})
