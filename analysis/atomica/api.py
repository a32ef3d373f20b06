"""ATOMICA over the API: the hosted endpoint's scoring format, and job submission.

`POST /api/v1/atomica/score` takes
`{"input_data": {"columns": ["pdb_data"], "index": [0, 1], "data": [[url], [base64]]}}`
and answers `{"predictions": [...]}` in index order, one per item: the
complex's three embeddings, or `{"error": ...}` naming the item. Small
requests (BIOFM_ATOMICA_SYNC_MAX_ITEMS) are answered once a worker has run
them; larger ones, or ones not done in BIOFM_ATOMICA_SYNC_WAIT_SECONDS,
answer 202 with the job to follow."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from django.conf import settings
from ninja import Field, Router, Schema
from ninja import Status as Reply

from workers import lifecycle
from workers.api import LAB_FIELD, ErrorOut, JobOut, job_out, submit_from_api
from workers.errors import ParamsError
from workers.models import Job, Status

from .inputs import item_from_text

router = Router(tags=["atomica"])


class InputData(Schema):
    columns: list[str]
    index: list[Any] | None = None
    data: list[list[str]]


class ScoreIn(Schema):
    input_data: InputData


class ScoreOut(Schema):
    predictions: list[dict[str, Any]] | None = None
    job: JobOut | None = None
    wait: str | None = None


class EmbedIn(Schema):
    items: list[str] = Field(..., description="http(s) URLs or base64 of .jsonl.gz files")
    importance: bool = False
    title: str = ""
    shared: bool = False
    lab: int | str | None = LAB_FIELD


def _items(rows: list[list[str]], column: int, labels: list) -> tuple[list[dict], list[int], dict]:
    items, indices, errors = [], [], {}
    for position, row in enumerate(rows):
        label = labels[position]
        try:
            if column >= len(row):
                raise ParamsError(f"input_data.data[{position}]", f"Item {label} has no pdb_data value.")
            items.append(item_from_text(row[column], label))
            indices.append(position)
        except ParamsError as exc:
            errors[position] = exc.message
    return items, indices, errors


@router.post("/score", response={200: ScoreOut, 202: ScoreOut, 400: ErrorOut, 403: ErrorOut},
             url_name="atomica_score")
def score(request, payload: ScoreIn):
    data = payload.input_data
    if "pdb_data" not in data.columns:
        raise ParamsError("input_data.columns", "The columns must include “pdb_data”.")
    labels = data.index if data.index is not None else list(range(len(data.data)))
    if len(labels) != len(data.data):
        raise ParamsError("input_data.index", "input_data.index and input_data.data differ in length.")
    if not data.data:
        raise ParamsError("input_data.data", "No items.")
    items, positions, errors = _items(data.data, data.columns.index("pdb_data"), labels)
    if not items:
        first = min(errors)
        raise ParamsError(f"input_data.data[{first}]", errors[first])
    job = lifecycle.submit(request.user, "analysis.atomica_embeddings",
                           {"items": items, "origin": "score", "request_index": positions})
    if len(items) > settings.BIOFM_ATOMICA_SYNC_MAX_ITEMS:
        return Reply(202, {"job": job_out(request, job), "wait": (
            f"More than {settings.BIOFM_ATOMICA_SYNC_MAX_ITEMS} items: follow the job.")})
    deadline = time.monotonic() + settings.BIOFM_ATOMICA_SYNC_WAIT_SECONDS
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_final:
            return Reply(200, {"predictions": predictions(job, len(data.data), errors, labels)})
        time.sleep(0.2)
    return Reply(202, {"job": job_out(request, job), "wait": "Still running: follow the job."})


def predictions(job: Job, count: int, request_errors: dict[int, str], labels: list) -> list[dict]:
    """One prediction per request position, in order."""
    out: list[dict] = [{"error": request_errors[i]} if i in request_errors else {} for i in range(count)]
    positions = job.params["request_index"]
    if job.status != Status.SUCCEEDED:
        for position in positions:
            out[position] = {"error": f"Item {labels[position]}: {job.error_message or job.status}"}
        return out
    item_errors = {e["index"]: e["error"] for e in job.result.get("errors", [])}
    answers = job.result.get("prediction_for_item", {})
    npz = job.files.get(name="atomica_embeddings.npz")
    with npz.file.open("rb") as fh, np.load(fh) as arrays:
        for item_index, position in enumerate(positions):
            if item_index in item_errors:
                out[position] = {"error": f"Item {labels[position]}: {item_errors[item_index]}"}
                continue
            cid = answers[str(item_index)]
            out[position] = {
                "id": cid,
                "graph_embedding": arrays[f"{cid}/graph_embedding"].tolist(),
                "block_embedding": arrays[f"{cid}/block_embedding"].tolist(),
                "atom_embedding": arrays[f"{cid}/atom_embedding"].tolist(),
            }
    return out


@router.post("/embeddings", response={202: JobOut, 400: ErrorOut, 403: ErrorOut}, url_name="atomica_embeddings")
def submit_embeddings(request, payload: EmbedIn):
    items = [item_from_text(value, i) for i, value in enumerate(payload.items)]
    job = submit_from_api(request, "analysis.atomica_embeddings",
                          {"items": items, "importance": payload.importance, "origin": "api"}, payload)
    return Reply(202, job_out(request, job))
