"""Job endpoints: submit any kind, list, status, cancel, rerun, download."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Literal
from uuid import UUID

from django.http import FileResponse, Http404, HttpResponse
from django.urls import reverse
from ninja import Field, Query, Router, Schema

from . import kinds, lifecycle
from .access import can_control, get_visible_job
from .models import HEAVY_FIELDS, Job, Status
from .waiting import accepted

router = Router(tags=["jobs"])


class LabOut(Schema):
    id: int
    slug: str
    name: str


LAB_FIELD = Field(None, description="The lab to share with and to charge: its id (or slug), one of "
                                    "yours; default: your default lab")


class FileOut(Schema):
    name: str
    size: int
    content_type: str
    url: str


class JobSummaryOut(Schema):
    """A job as listings show it: everything but its result."""

    id: UUID
    kind: str
    title: str
    status: str
    progress: float
    progress_message: str
    queue: str
    # What its latest attempt ran on, "cpu" or "gpu" ("" before one started):
    # the quota its worker hours count against.
    hardware: str
    error_kind: str
    error_message: str
    attempts: int
    shared: bool
    lab: LabOut | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    waiting_for_slot: bool
    url: str
    api_url: str
    files: list[FileOut]


class JobOut(JobSummaryOut):
    result: dict[str, Any]
    # What cleaning learnt about the input: counts, records left out and why.
    input_facts: dict[str, Any]


class JobIn(Schema):
    kind: str = Field(..., description="A job kind from GET /api/v1/kinds")
    params: dict[str, Any] = Field(default_factory=dict)
    title: str = ""
    shared: bool = False
    lab: int | str | None = LAB_FIELD


class KindOut(Schema):
    name: str
    label: str
    queue: str
    description: str


class ErrorOut(Schema):
    error: str
    field: str | None


SUMMARY_FIELDS = (
    "id", "kind", "title", "status", "progress", "progress_message", "queue", "hardware",
    "error_kind", "error_message", "attempts", "shared", "created_at", "started_at",
    "finished_at", "waiting_for_slot")


def job_out(request, job: Job, *, with_result: bool = True) -> dict:
    """A job as the API answers it; listings leave out `result`, which can
    weigh megabytes (GET /jobs/<id> has it)."""
    files = [
        {"name": f.name, "size": f.size, "content_type": f.content_type,
         "url": request.build_absolute_uri(reverse("api:job_file", args=[job.id, f.name]))}
        for f in job.files.all()
    ]
    out = {
        **{k: getattr(job, k) for k in SUMMARY_FIELDS},
        "lab": job.lab and {"id": job.lab.pk, "slug": job.lab.slug, "name": job.lab.name},
        "url": request.build_absolute_uri(job.get_absolute_url()),
        "api_url": request.build_absolute_uri(reverse("api:job_status", args=[job.id])),
        "files": files,
    }
    if with_result:
        out["result"] = job.result
        out["input_facts"] = job.input_facts
    return out


@router.get("/kinds", response=list[KindOut], url_name="kinds")
def list_kinds(request):
    return [{"name": k.name, "label": k.label, "queue": k.queue, "description": k.description}
            for k in kinds.all_kinds()]


@router.post("/jobs", response={202: JobOut, 400: ErrorOut, 403: ErrorOut}, url_name="job_submit")
def submit_job(request, response: HttpResponse, payload: JobIn):
    """Submit a job of any kind. Answers 202 with the job; follow `Location` (its `api_url`)."""
    job = submit_from_api(request, payload.kind, payload.params, payload)
    return accepted(response, job, job_out(request, job))


# Beyond PostgreSQL's bigint an OFFSET is a database error; no one has this many jobs.
MAX_OFFSET = 10**12


def submit_from_api(request, kind: str, params: dict, payload, *,
                    submit: Callable[..., Job] | None = None) -> Job:
    """lifecycle.submit with a payload's title, shared and lab (a lab the user
    is not in is a 400 naming `lab`); a lab given is remembered as the one the
    pages' lab picker offers next. `submit(user, params, **options)` replaces
    lifecycle.submit for endpoints that file the job somewhere too."""
    from accounts.sharing import lab_from_api, remember_lab

    lab = lab_from_api(request.user, payload.lab)
    options = {"lab": lab, "shared": payload.shared, "title": payload.title}
    if submit is None:
        job = lifecycle.submit(request.user, kind, params, **options)
    else:
        job = submit(request.user, params, **options)
    remember_lab(request.user, lab)
    return job


@router.get("/jobs", response=list[JobSummaryOut], url_name="job_list")
def list_jobs(request, kind: str | None = None,
              status: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = None,
              limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=MAX_OFFSET)):
    """Jobs you may see, newest first, without their results (GET /jobs/<id> has one)."""
    jobs = Job.objects.visible_to(request.user).defer(*HEAVY_FIELDS).select_related("lab").prefetch_related("files")
    if kind:
        jobs = jobs.filter(kind=kind)
    if status:
        jobs = jobs.filter(status=status)
    return [job_out(request, j, with_result=False) for j in jobs[offset:offset + limit]]


@router.get("/jobs/{job_id}", response=JobOut, url_name="job_status")
def job_status(request, job_id: UUID):
    return job_out(request, get_visible_job(request.user, job_id))


@router.post("/jobs/{job_id}/cancel", response=JobOut, url_name="job_cancel")
def cancel_job(request, job_id: UUID):
    job = get_visible_job(request.user, job_id)
    if not can_control(request.user, job):
        raise Http404("No such job.")
    return job_out(request, lifecycle.cancel(job))


@router.post("/jobs/{job_id}/rerun", response={202: JobOut, 400: ErrorOut, 403: ErrorOut},
             url_name="job_rerun")
def rerun_job(request, response: HttpResponse, job_id: UUID):
    job = lifecycle.rerun(get_visible_job(request.user, job_id), request.user)
    return accepted(response, job, job_out(request, job))


@router.get("/jobs/{job_id}/files/{name}", url_name="job_file", response={200: None})
def job_file(request, job_id: UUID, name: str):
    job = get_visible_job(request.user, job_id)
    jf = job.files.named(name)
    if jf is None:
        raise Http404(f"Job {job_id} has no file “{name}”.")
    return FileResponse(jf.file.open("rb"), as_attachment=True, filename=jf.name,
                        content_type=jf.content_type)


__all__ = ["router", "Status"]
