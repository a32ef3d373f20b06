"""ATOMICA over the API: the hosted endpoint's scoring format, and job submission.

`POST /api/v1/atomica/score` takes
`{"input_data": {"columns": ["pdb_data"], "index": [0, 1], "data": [[url], [base64]]}}`
and answers `{"predictions": [...]}` in index order: one per record of each
item (an item's `.jsonl.gz` may hold several), with the item's `index`, the
record's `id` and its three embeddings, or `{"index", "error"}` naming the
item (and `id`, the record). A bad item never costs the good ones their
answer. Small requests (BIOFM_ATOMICA_SYNC_MAX_ITEMS) are answered once a
worker has run them; larger ones, or ones not done in
BIOFM_ATOMICA_SYNC_WAIT_SECONDS, answer 202 with the job, `Location` and
`Retry-After`."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.conf import settings
from django.http import HttpResponse
from ninja import Field, Router, Schema
from ninja import Status as Reply

from workers import lifecycle
from workers.api import LAB_FIELD, ErrorOut, JobOut, job_out, submit_from_api
from workers.errors import ParamsError
from workers.models import Job, Status
from workers.waiting import accepted, wait_for_job

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


def _items(rows: list[list[str]], column: int, labels: list, user) -> tuple[list[dict], list[int], dict]:
    items, indices, errors = [], [], {}
    for position, row in enumerate(rows):
        label = labels[position]
        try:
            if column >= len(row):
                raise ParamsError(f"input_data.data[{position}]", f"Item {label} has no pdb_data value.")
            items.append(item_from_text(row[column], label, user))
            indices.append(position)
        except ParamsError as exc:
            errors[position] = exc.message
    return items, indices, errors


@router.post("/score", response={200: ScoreOut, 202: ScoreOut, 400: ErrorOut, 403: ErrorOut},
             url_name="atomica_score")
def score(request, response: HttpResponse, payload: ScoreIn):
    data = payload.input_data
    if "pdb_data" not in data.columns:
        raise ParamsError("input_data.columns", "The columns must include “pdb_data”.")
    labels = data.index if data.index is not None else list(range(len(data.data)))
    if len(labels) != len(data.data):
        raise ParamsError("input_data.index", "input_data.index and input_data.data differ in length.")
    if not data.data:
        raise ParamsError("input_data.data", "No items.")
    items, positions, errors = _items(data.data, data.columns.index("pdb_data"), labels, request.user)
    if not items:
        first = min(errors)
        raise ParamsError(f"input_data.data[{first}]", errors[first])
    job = lifecycle.submit(request.user, "analysis.atomica_embeddings",
                           {"items": items, "origin": "score", "request_index": positions})
    if len(items) > settings.BIOFM_ATOMICA_SYNC_MAX_ITEMS:
        return accepted(response, job, {"job": job_out(request, job), "wait": (
            f"More than {settings.BIOFM_ATOMICA_SYNC_MAX_ITEMS} items: follow the job (Location).")})
    if wait_for_job(job, settings.BIOFM_ATOMICA_SYNC_WAIT_SECONDS):
        return Reply(200, {"predictions": predictions(job, len(data.data), errors, labels)})
    return accepted(response, job, {"job": job_out(request, job),
                                    "wait": "Not finished yet: follow the job (Location)."})


def predictions(job: Job, count: int, request_errors: dict[int, str], labels: list) -> list[dict]:
    """Every record's prediction, in request order and record order within an
    item, each with its request `index` and record `id`; an item or record that
    failed gives `{"index", "error"}` (and `id` where a record failed). An item
    of one record gives one prediction, as the hosted endpoint does."""
    item_at = {position: item for item, position in enumerate(job.params["request_index"])}
    if job.status != Status.SUCCEEDED:
        return [{"index": labels[i], "error": request_errors.get(i) or
                 f"Item {labels[i]}: {job.error_message or job.status}"} for i in range(count)]
    complexes: dict[int, list[str]] = {}
    for entry in job.result.get("complexes", []):
        complexes.setdefault(entry["item"], []).append(entry["id"])
    failures: dict[int, list[dict]] = {}
    for entry in job.result.get("errors", []):
        failures.setdefault(entry["index"], []).append(entry)
    out: list[dict] = []
    npz = job.files.get(name="atomica_embeddings.npz")
    with npz.file.open("rb") as fh, np.load(fh) as arrays:
        for position in range(count):
            label = labels[position]
            if position in request_errors:
                out.append({"index": label, "error": request_errors[position]})
                continue
            item = item_at[position]
            for cid in complexes.get(item, []):
                out.append({
                    "index": label, "id": cid,
                    "graph_embedding": arrays[f"{cid}/graph_embedding"].tolist(),
                    "block_embedding": arrays[f"{cid}/block_embedding"].tolist(),
                    "atom_embedding": arrays[f"{cid}/atom_embedding"].tolist(),
                })
            for failure in failures.get(item, []):
                out.append({"index": label, **({"id": failure["record"]} if "record" in failure else {}),
                            "error": f"Item {label}: {failure['error']}"})
    return out


@router.post("/embeddings", response={202: JobOut, 400: ErrorOut, 403: ErrorOut}, url_name="atomica_embeddings")
def submit_embeddings(request, response: HttpResponse, payload: EmbedIn):
    items = [item_from_text(value, i, request.user) for i, value in enumerate(payload.items)]
    job = submit_from_api(request, "analysis.atomica_embeddings",
                          {"items": items, "importance": payload.importance, "origin": "api"}, payload)
    return accepted(response, job, job_out(request, job))
