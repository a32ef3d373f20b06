"""Checking the parameters of an ATOMICA embedding job."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.conf import settings

from workers.errors import ParamsError
from workers.kinds import JobKind

STORED_NAME = re.compile(r"atomica_inputs/[0-9a-f]{32}[^/\\]*")  # see inputs.store_input


def clean_atomica_params(params: dict) -> dict:
    items = params.get("items")
    if not isinstance(items, list) or not items:
        raise ParamsError("items", "Give at least one input: a .jsonl.gz (upload, URL or base64) or a structure.")
    if len(items) > settings.BIOFM_ATOMICA_MAX_ITEMS:
        raise ParamsError("items", f"{len(items)} inputs; the limit is {settings.BIOFM_ATOMICA_MAX_ITEMS} per job.")
    clean = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or item.get("source") not in ("url", "stored", "structure"):
            raise ParamsError(f"items[{index}]", f"Item {index} has no valid source.")
        if item["source"] == "url":
            parts = urlsplit(str(item.get("url", "")))
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ParamsError(f"items[{index}].url", f"Item {index}: only http and https URLs are fetched.")
        else:
            # Stored files are written by the portal itself, never named by users:
            # one file directly under atomica_inputs/, named from a random id.
            for key in ("path", "records_path", "ligand_sdf_path"):
                if (key == "path" or key in item) and not STORED_NAME.fullmatch(str(item.get(key, ""))):
                    raise ParamsError(f"items[{index}]", f"Item {index} refers to no stored input.")
        clean.append(item)
    request_index = params.get("request_index") or list(range(len(clean)))
    if len(request_index) != len(clean):
        raise ParamsError("request_index", "One request index per item.")
    return {"items": clean, "importance": bool(params.get("importance", False)),
            "origin": str(params.get("origin", "page"))[:20],
            "request_index": [int(i) for i in request_index],
            "request_errors": list(params.get("request_errors", []))}


def summarize(params: dict, facts: dict) -> str:
    n = len(params.get("items", []))
    return f"{n} input{'s' if n != 1 else ''} (ATOMICA)"


KIND = JobKind(
    name="analysis.atomica_embeddings",
    label="ATOMICA interaction embeddings",
    queue="gpu",
    runner="analysis.atomica.jobs:run_atomica_embeddings",
    clean_params=clean_atomica_params,
    result_template="analysis/atomica/result.html",
    soft_time_limit=8 * 3600, time_limit=8 * 3600 + 600,
    description="Atom, block and complex embeddings of interaction interfaces "
                "(ATOMICA), from .jsonl.gz records or structure files.",
    submit_url_name="analysis:atomica_new",
    summarize_params=summarize,
)
