"""The predict submission page; the result is the job's page (result.html)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods

from workers.submit_page import job_form_page

from .forms import PredictForm


@login_required
@require_http_methods(["GET", "POST"])
def predict_new(request: HttpRequest) -> HttpResponse:
    # ?model=<id> (the model card's "Predict" link) preselects the model.
    initial = {"model": request.GET.get("model")} if request.GET.get("model", "").isdigit() else {}
    form = PredictForm(request.POST or None, request.FILES or None, user=request.user, initial=initial)
    return job_form_page(
        request, form, "training.predict", heading="Predict with a trained model",
        template="training/predict/form.html",
        intro="Each molecule gets the model's prediction per target, the ensemble's standard deviation where "
              "the model is an ensemble, the conformal interval for regression targets, and its largest "
              "Tanimoto similarity to the training set with the applicability-domain threshold named. Rows "
              "RDKit cannot read are listed with RDKit's reason; the others are predicted.")
