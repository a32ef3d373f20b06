"""POST /api/v1/esm/embeddings: submit an ESM-2 job; small ones can be waited for.

`?wait=true` does not run the model in the web process (which never imports
torch): it waits for a worker, whose model stays loaded between jobs, to
finish the job, then answers with the embeddings inline. A request that is too
large, or not finished within BIOFM_ESM_SYNC_WAIT_SECONDS, answers 202 with
the job to follow instead, with `Location` and `Retry-After` (see
workers/waiting.py for the bounds on waiting)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from django.conf import settings
from django.http import HttpResponse
from ninja import Field, Router, Schema, Status

from workers.api import LAB_FIELD, ErrorOut, JobOut, job_out, submit_from_api
from workers.models import Job
from workers.waiting import accepted, wait_for_job

router = Router(tags=["esm"])


class SequenceIn(Schema):
    id: str
    sequence: str


class EsmIn(Schema):
    model: str | None = Field(None, description="A published ESM-2 checkpoint name; without it, the "
                                                "default of the web form (an installed model)")
    sequences: list[SequenceIn] | None = None
    fasta: str | None = None
    repr_layers: list[int] = Field(default_factory=lambda: [-1])
    include: list[Literal["mean", "per_tok", "bos", "contacts"]] = Field(default_factory=lambda: ["mean"])
    long_sequences: Literal["truncate", "window"] = "truncate"
    skip_invalid: bool = Field(False, description="Embed the valid records and list the others, "
                                                  "instead of refusing the request")
    title: str = ""
    shared: bool = False
    lab: int | str | None = LAB_FIELD


class EsmOut(JobOut):
    embeddings: dict[str, Any] | None = None
    wait: str | None = None


@router.post("/embeddings", response={200: EsmOut, 202: EsmOut, 400: ErrorOut, 403: ErrorOut},
             url_name="esm_embeddings")
def submit_embeddings(request, response: HttpResponse, payload: EsmIn, wait: bool = False):
    params: dict[str, Any] = payload.dict(exclude={"title", "shared", "lab", "sequences", "fasta"})
    if params["model"] is None:
        del params["model"]  # clean_esm_params picks the default
    if payload.sequences is not None:
        params["sequences"] = [s.dict() for s in payload.sequences]
    if payload.fasta is not None:
        params["fasta"] = payload.fasta
    job = submit_from_api(request, "analysis.esm_embeddings", params, payload)
    if not wait:
        return accepted(response, job, job_out(request, job))
    if (job.input_facts["n_records"] > settings.BIOFM_ESM_SYNC_MAX_SEQUENCES
            or job.input_facts["max_length"] > settings.BIOFM_ESM_SYNC_MAX_LENGTH):
        return accepted(response, job, {**job_out(request, job), "wait": (
            f"Not waited for: ?wait=true is for up to {settings.BIOFM_ESM_SYNC_MAX_SEQUENCES} "
            f"sequences of up to {settings.BIOFM_ESM_SYNC_MAX_LENGTH} residues.")})
    if wait_for_job(job, settings.BIOFM_ESM_SYNC_WAIT_SECONDS):
        return Status(200, {**job_out(request, job), "embeddings": embeddings_json(job)})
    return accepted(response, job, {**job_out(request, job), "wait": "Not finished yet: follow Location (api_url)."})


def embeddings_json(job: Job) -> dict | None:
    npz = job.files.filter(name="embeddings.npz").first()
    if npz is None:
        return None
    out: dict[str, dict] = {}
    with npz.file.open("rb") as fh, np.load(fh) as arrays:
        for key in arrays.files:
            if key == "__ids__":
                continue
            # Keys are "<id>/contacts" or "<id>/<part>/<layer>"; an id may contain "/".
            if key.endswith("/contacts"):
                out.setdefault(key[: -len("/contacts")], {})["contacts"] = arrays[key].tolist()
            else:
                record_id, part, layer = key.rsplit("/", 2)
                out.setdefault(record_id, {}).setdefault(part, {})[layer] = arrays[key].tolist()
    return out

