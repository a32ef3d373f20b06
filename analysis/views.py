from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from workers import lifecycle
from workers.errors import ParamsError
from workers.quotas import QuotaExceeded

from .forms import AnalysisForm


@login_required
def new_analysis(request: HttpRequest) -> HttpResponse:
    form = AnalysisForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        params = form.cleaned_data["params"]
        try:
            job = lifecycle.submit(request.user, "analysis.protparam", params,
                                   title=form.cleaned_data["title"],
                                   shared=form.cleaned_data["shared"])
        except QuotaExceeded as exc:
            form.add_error(None, str(exc))
        except ParamsError as exc:
            form.add_error(None, exc.message)
        else:
            if params["n_rejected"]:
                messages.warning(request, f"{params['n_rejected']} record(s) will be reported as "
                                          f"rejected; {params['n_records']} will be analysed.")
            return redirect(job)
    return render(request, "analysis/new.html", {"form": form}, status=400 if form.errors else 200)
