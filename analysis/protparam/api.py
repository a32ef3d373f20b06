"""A convenience endpoint; the same job can be submitted through POST /jobs."""

from __future__ import annotations

from typing import Any

from ninja import Field, Router, Schema, Status

from workers.api import LAB_FIELD, ErrorOut, JobOut, job_out, submit_from_api

router = Router(tags=["analysis"])


class SequenceIn(Schema):
    id: str
    sequence: str


class ProtParamIn(Schema):
    fasta: str | None = Field(None, description="FASTA text (many records)")
    sequences: list[SequenceIn] | None = None
    example: str | None = None
    window: int = 9
    title: str = ""
    shared: bool = False
    lab: int | str | None = LAB_FIELD


@router.post("/protparam", response={202: JobOut, 400: ErrorOut, 403: ErrorOut}, url_name="protparam")
def submit_protparam(request, payload: ProtParamIn):
    params: dict[str, Any] = {"window": payload.window}
    if payload.fasta is not None:
        params["fasta"] = payload.fasta
    if payload.sequences is not None:
        params["sequences"] = [s.dict() for s in payload.sequences]
    if payload.example is not None:
        params["example"] = payload.example
    job = submit_from_api(request, "analysis.protparam", params, payload)
    return Status(202, job_out(request, job))
