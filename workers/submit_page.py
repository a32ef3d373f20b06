"""The one submission page every job form uses: validate the form, submit
the job, go to its page; a refused submission is shown on the form."""

from __future__ import annotations

from typing import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from . import lifecycle
from .errors import ParamsError
from .quotas import QuotaExceeded


def job_form_page(request: HttpRequest, form, kind: str, *, heading: str, intro: str,
                  template: str, note: Callable[[dict], str] | None = None) -> HttpResponse:
    """`note(params)` may return a warning shown after a successful submission
    (records left out, say)."""
    if request.method == "POST" and form.is_valid():
        params = form.cleaned_data["params"]
        try:
            job = lifecycle.submit(request.user, kind, params, title=form.cleaned_data["title"],
                                   shared=form.cleaned_data["shared"])
        except (QuotaExceeded, ParamsError) as exc:
            form.add_error(None, getattr(exc, "message", str(exc)))
        else:
            text = note(params) if note else ""
            if text:
                messages.warning(request, text)
            return redirect(job)
    return render(request, template, {"form": form, "heading": heading, "intro": intro},
                  status=400 if form.errors else 200)
