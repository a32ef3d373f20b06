"""Design endpoints under /api/v1/design: submit a campaign run, a property
prediction or a docking job, and fetch a design job's results as JSON, CSV
or SDF. Jobs are also reachable through the generic /api/v1/jobs."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from django.http import FileResponse, Http404, JsonResponse
from ninja import Field, Router, Schema
from ninja import Status as Reply

from accounts.scoping import get_visible_or_404
from workers.access import get_visible_job
from workers.api import LAB_FIELD, ErrorOut, JobOut, job_out, submit_from_api

from .models import Campaign
from .runs import submit_run

router = Router(tags=["design"])


class Objective(Schema):
    property: str = Field(description="A numeric property key, or a registered model's target: "
                                      "model:<model id>:<target> (see GET /design/properties/available)")
    direction: Literal["max", "min"] = "max"
    weight: float = 1.0


class CampaignRunIn(Schema):
    seeds: list[str] = Field(default_factory=list, description="SMILES; empty = common ring systems")
    objectives: list[Objective] = Field(default_factory=lambda: [Objective(property="qed")])
    mode: Literal["weighted", "pareto"] = "weighted"
    filters: dict[str, Any] = Field(default_factory=dict, description='{"no_alerts": ["PAINS"], "mw_min", "mw_max"}')
    population_size: int = 50
    generations: int = 10
    random_seed: int = 0
    brics_seeds: int = 0
    docking: dict[str, Any] = Field(default_factory=dict,
                                    description='{"enabled", "exhaustiveness", "max_dockings", "weight"}')
    scatter: dict[str, str] = Field(default_factory=dict)
    title: str = ""
    shared: bool = False
    lab: int | str | None = LAB_FIELD


@router.post("/campaigns/{campaign_id}/runs", response={202: JobOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
             url_name="design_campaign_run")
def submit_campaign_run(request, campaign_id: int, payload: CampaignRunIn):
    campaign = get_visible_or_404(Campaign, request.user, campaign_id)
    params = payload.dict(exclude={"title", "shared", "lab"})
    params["campaign_id"] = campaign.pk
    job = submit_from_api(request, "design.campaign_run", params, payload,
                          submit=lambda user, params, **options: submit_run(user, campaign, params, **options))
    return Reply(202, job_out(request, job))


class PropertiesIn(Schema):
    molecules: str | None = Field(None, description="CSV with a header, SMILES per line, or SDF text")
    smiles: list[str] | None = None
    format: Literal["csv", "sdf", "smi"] | None = None
    smiles_column: str | None = None
    name_column: str | None = None
    model_properties: list[str] | None = Field(
        None, description="Registered models' targets to predict too, as model:<model id>:<target>")
    title: str = ""
    shared: bool = False
    lab: int | str | None = LAB_FIELD


class PropertyOut(Schema):
    key: str
    label: str
    unit: str
    method: str
    objective: bool = Field(description="Usable as a campaign objective (numeric)")


@router.get("/properties/available", response=list[PropertyOut], url_name="design_property_list")
def list_properties(request):
    """Every property a design job can compute: the built-in ones, each with its
    method, and every target of the registered models you may see."""
    from design.compute.properties import PROPERTIES

    from . import model_properties

    out = [{"key": s.key, "label": s.label, "unit": s.unit, "method": s.method,
            "objective": s.unit not in ("list", "bool")} for s in PROPERTIES.values()]
    for model in model_properties.visible_models(request.user).select_related("run__dataset"):
        for target in model_properties.target_names(model):
            out.append({"key": model_properties.model_key(model.pk, target),
                        "label": model_properties.label(model, target),
                        "unit": model_properties.unit(model, target),
                        "method": model_properties.method(model, target), "objective": True})
    return out


@router.post("/properties", response={202: JobOut, 400: ErrorOut, 403: ErrorOut}, url_name="design_properties")
def submit_properties(request, payload: PropertiesIn):
    params = payload.dict(exclude={"title", "shared", "lab"}, exclude_none=True)
    job = submit_from_api(request, "design.properties", params, payload)
    return Reply(202, job_out(request, job))


class LigandIn(Schema):
    name: str = ""
    smiles: str


class DockingIn(Schema):
    target_id: int
    site_id: int | None = None
    center: list[float] | None = None
    size: list[float] | float | None = None
    ligands: list[LigandIn] = Field(default_factory=list)
    ligands_sdf: str | None = Field(None, description="SDF text, one ligand per record (parsed in the worker)")
    molecules: str | None = Field(None, description="Ligands as SDF, SMILES lines or CSV text")
    format: Literal["csv", "sdf", "smi"] | None = None
    exhaustiveness: int = 8
    n_poses: int = 9
    cpu: int = 0
    random_seed: int = 0
    title: str = ""
    shared: bool = False
    lab: int | str | None = LAB_FIELD


@router.post("/docking", response={202: JobOut, 400: ErrorOut, 403: ErrorOut}, url_name="design_docking")
def submit_docking(request, payload: DockingIn):
    # The kind's check_access (run by every submission) answers someone
    # else's target or site id as a missing one, naming the field.
    params = payload.dict(exclude={"title", "shared", "lab"}, exclude_none=True)
    job = submit_from_api(request, "design.docking", params, payload)
    return Reply(202, job_out(request, job))


# Which stored file answers each format, per kind.
RESULT_FILES = {
    "design.properties": {"csv": "properties.csv", "sdf": "properties.sdf"},
    "design.docking": {"csv": "docking.csv", "sdf": "poses.sdf"},
    "design.campaign_run": {"csv": "population.csv", "sdf": "population.sdf"},
}


@router.get("/jobs/{job_id}/results", response={200: None, 404: ErrorOut, 409: ErrorOut},
            url_name="design_results")
def job_results(request, job_id: UUID, format: Literal["json", "csv", "sdf"] = "json"):
    job = get_visible_job(request.user, job_id)
    if job.kind not in RESULT_FILES:
        raise Http404("Not a design job.")
    if job.status != "succeeded":
        return Reply(409, {"error": f"The job is {job.status}; results exist once it has succeeded.",
                           "field": None})
    if format == "json":
        return JsonResponse({"job": str(job.id), "kind": job.kind, "result": job.result})
    jf = job.files.filter(name=RESULT_FILES[job.kind][format]).first()
    if jf is None:
        raise Http404(f"This job has no {format} result.")
    return FileResponse(jf.file.open("rb"), as_attachment=True, filename=jf.name, content_type=jf.content_type)
