"""Checking the parameters of an ATOMICA embedding job."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from django.conf import settings

from workers.errors import ParamsError
from workers.kinds import JobKind

from .models import INPUT_KEYS


def _input_id(value) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except (TypeError, ValueError, AttributeError):
        return None


_REPORT_TEXT = ("ligand", "bond_orders", "warning")


def _ligand_reports(reports, index: int) -> list[dict]:
    """The form's reports on the ligands it converted, shown with the result."""
    if not isinstance(reports, list) or not all(isinstance(r, dict) for r in reports):
        raise ParamsError(f"items[{index}].ligands", f"Item {index}: ligand reports must be a list of objects.")
    try:
        return [{**{key: str(r.get(key, ""))[:1000] for key in _REPORT_TEXT},
                 "fragmented": bool(r.get("fragmented")), "blocks": int(r.get("blocks", 0))} for r in reports]
    except (TypeError, ValueError):
        raise ParamsError(f"items[{index}].ligands", f"Item {index}: a ligand report has a bad block count.") from None


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
        name = str(item.get("name", ""))[:255]
        if item["source"] == "url":
            url = str(item.get("url", ""))
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ParamsError(f"items[{index}].url", f"Item {index}: only http and https URLs are fetched.")
            clean.append({"source": "url", "url": url, **({"name": name} if name else {})})
            continue
        # Stored files are rows of StoredInput, named by id (check_access has
        # checked the submitter may use them); a storage path is never taken.
        entry = {"source": item["source"], "name": name}
        for key in INPUT_KEYS:
            if key == "input_id" or item.get(key):
                value = _input_id(item.get(key))
                if value is None:
                    raise ParamsError(f"items[{index}].{key}", f"Item {index} refers to no stored input.")
                entry[key] = value
        if item["source"] == "structure":
            for key in ("side", "smiles", "mode", "cutoff"):
                if key in item:
                    entry[key] = item[key]
            if item.get("ligands"):
                entry["ligands"] = _ligand_reports(item["ligands"], index)
        clean.append(entry)

    request_index = params.get("request_index") or list(range(len(clean)))
    if len(request_index) != len(clean):
        raise ParamsError("request_index", "One request index per item.")
    return {"items": clean, "importance": bool(params.get("importance", False)),
            "origin": str(params.get("origin", "page"))[:20],
            "request_index": [int(i) for i in request_index],
            "request_errors": list(params.get("request_errors", []))}


def check_access(params: dict, user) -> None:
    """Refuse stored inputs the user may not use (someone else's, or none)
    with the answer a missing id gets. Malformed ids are left to
    clean_atomica_params to name."""
    from .models import StoredInput

    items = params.get("items")
    for index, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict) or item.get("source") not in ("stored", "structure"):
            continue
        for key in INPUT_KEYS:
            value = _input_id(item.get(key))
            if value is not None and not StoredInput.objects.usable_by(user).filter(pk=value).exists():
                raise ParamsError(f"items[{index}].{key}", f"Item {index}: no stored input {value}.")


def summarize(params: dict, facts: dict) -> str:
    n = len(params.get("items", []))
    return f"{n} input{'s' if n != 1 else ''} (ATOMICA)"


KIND = JobKind(
    name="analysis.atomica_embeddings",
    label="ATOMICA interaction embeddings",
    queue="gpu",
    runner="analysis.atomica.jobs:run_atomica_embeddings",
    clean_params=clean_atomica_params,
    check_access=check_access,
    result_template="analysis/atomica/result.html",
    soft_time_limit=8 * 3600, time_limit=8 * 3600 + 600,
    description="Atom, block and complex embeddings of interaction interfaces "
                "(ATOMICA), from .jsonl.gz records or structure files.",
    submit_url_name="analysis:atomica_new",
    summarize_params=summarize,
)
