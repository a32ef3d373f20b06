"""Predicting with a registered model over the API: submit a training.predict
job for a model, fetch its predictions as JSON or CSV. Mounted beside the other
training endpoints (training/api.py adds this router). Another user's model or
job is a 404, as a missing one."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from django.http import FileResponse, Http404, JsonResponse
from ninja import Field, Router, Schema
from ninja import Status as Reply

from accounts.scoping import get_visible_or_404
from workers.access import get_visible_job
from workers.api import LAB_FIELD, ErrorOut, JobOut, job_out, submit_from_api

from ..models import ModelVersion

router = Router(tags=["training"])


class PredictIn(Schema):
    molecules: str | None = Field(None, description="CSV with a header, SMILES per line, or SDF text")
    smiles: list[str] | None = Field(None, description="SMILES strings, instead of molecules")
    format: Literal["csv", "sdf", "smi"] | None = None
    smiles_column: str | None = Field(None, description="CSV only; found by its name (smiles) when omitted")
    title: str = ""
    shared: bool = False
    lab: int | str | None = LAB_FIELD


@router.post("/models/{model_id}/predict", response={202: JobOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
             url_name="training_model_predict")
def submit_prediction(request, model_id: int, payload: PredictIn):
    model = get_visible_or_404(ModelVersion, request.user, model_id, "model")
    params = payload.dict(exclude={"title", "shared", "lab"}, exclude_none=True)
    params["model_id"] = model.pk
    job = submit_from_api(request, "training.predict", params, payload)
    return Reply(202, job_out(request, job))


@router.get("/predictions/{job_id}", response={200: None, 404: ErrorOut, 409: ErrorOut},
            url_name="training_predictions")
def prediction_results(request, job_id: UUID, format: Literal["json", "csv"] = "json"):
    """The predictions of a training.predict job: JSON (the first 500 rows, the
    model named with its method, training data and test metric) or the full CSV."""
    job = get_visible_job(request.user, job_id)
    if job.kind != "training.predict":
        raise Http404("Not a prediction job.")
    if job.status != "succeeded":
        return Reply(409, {"error": f"The job is {job.status}; predictions exist once it has succeeded.",
                           "field": None})
    if format == "json":
        return JsonResponse({"job": str(job.id), "kind": job.kind, "result": job.result})
    jf = job.files.filter(name="predictions.csv").first()
    if jf is None:
        raise Http404("This job has no predictions file.")
    return FileResponse(jf.file.open("rb"), as_attachment=True, filename=jf.name, content_type=jf.content_type)
