from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods

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
