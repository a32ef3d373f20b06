"""The one submission page every job form uses: check the form, submit its
raw parameters once through lifecycle.submit (where the kind's clean_params
checks them), go to the job's page; a refused submission is shown on the
form, next to the field the error names."""

from __future__ import annotations

from typing import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from . import lifecycle
from .errors import ParamsError
from .models import Job
from .quotas import QuotaExceeded


def submit_form(form, kind: str, *, submit: Callable[..., Job] | None = None, **extra) -> Job | None:
    """Submit a valid JobForm's job; None when refused, with the reason on
    the form. `submit` replaces lifecycle.submit(user, kind, params, ...) for
    pages that file the job somewhere too (a campaign run)."""
    data = form.cleaned_data
    options = {"title": data["title"], "shared": data["shared"], "lab": data["lab"], **extra}
    try:
        if submit is None:
            job = lifecycle.submit(form.user, kind, data["params"], **options)
        else:
            job = submit(form.user, data["params"], **options)
    except ParamsError as exc:
        form.add_params_error(exc)
        return None
    except QuotaExceeded as exc:
        form.add_error("lab" if "lab" in form.fields else None, str(exc))
        return None
    form.chosen_lab()
    return job


def job_form_page(request: HttpRequest, form, kind: str, *, heading: str, intro: str,
                  template: str, note: Callable[[dict], str] | None = None) -> HttpResponse:
    """`note(input_facts)` may return a warning shown after a successful
    submission (records left out, say)."""
    if request.method == "POST" and form.is_valid():
        job = submit_form(form, kind)
        if job is not None:
            text = note(job.input_facts) if note else ""
            if text:
                messages.warning(request, text)
            return redirect(job)
    return render(request, template, {"form": form, "heading": heading, "intro": intro},
                  status=400 if form.errors else 200)
