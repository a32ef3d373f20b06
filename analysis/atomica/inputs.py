"""Turning submitted ATOMICA inputs into records, one item at a time.

An item is a `.jsonl.gz` of ATOMICA records (uploaded, given as base64, or at
a URL) or a structure file to convert. Uploads and base64 are stored at
submission as the submitter's StoredInput rows (so a rerun needs nothing
else), and items name them by id; URLs are fetched by the worker
through biofm_site.safe_fetch. A bad item becomes an error naming its index;
the other items go on.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json

from django.conf import settings
from django.core.files.base import ContentFile

from biofm_site.safe_fetch import FetchError, FetchLimits, fetch, gunzip_capped
from workers.errors import ParamsError

GZIP_MAGIC = b"\x1f\x8b"


def fetch_limits() -> FetchLimits:
    return FetchLimits(max_bytes=settings.BIOFM_FETCH_MAX_BYTES, timeout=settings.BIOFM_FETCH_TIMEOUT,
                       allow_hosts=frozenset(settings.BIOFM_FETCH_ALLOW_HOSTS))


def store_input(data: bytes, name: str, owner, suffix: str = ".jsonl.gz") -> dict:
    """Keep `data` as `owner`'s StoredInput; the item that names it."""
    from .models import StoredInput

    if len(data) > settings.BIOFM_UPLOAD_MAX_BYTES:
        raise ValueError(f"“{name}” is {len(data):,} bytes; the limit is {settings.BIOFM_UPLOAD_MAX_BYTES:,}.")
    row = StoredInput(owner=owner, name=name[:255], size=len(data))
    row.file.save(f"input{suffix}", ContentFile(data), save=True)
    return {"source": "stored", "input_id": str(row.pk), "name": name}


def read_input(input_id: str, index: int) -> bytes:
    from .models import StoredInput

    row = StoredInput.objects.filter(pk=input_id).first()
    if row is None:
        raise ValueError(f"Item {index}: its stored input is no longer kept.")
    return row.read()


def item_from_text(value: str, index: int, owner) -> dict:
    """A scoring-API cell: an http(s) URL or base64 of a .jsonl.gz."""
    value = (value or "").strip()
    if not value:
        raise ParamsError(f"input_data.data[{index}]", f"Item {index} is empty.")
    if value.lower().startswith(("http://", "https://")):
        return {"source": "url", "url": value}
    if "://" in value[:16]:
        raise ParamsError(f"input_data.data[{index}]", f"Item {index}: only http and https URLs are fetched.")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ParamsError(f"input_data.data[{index}]",
                          f"Item {index} is neither an http(s) URL nor base64 data.") from None
    if not raw.startswith(GZIP_MAGIC):
        raise ParamsError(f"input_data.data[{index}]", f"Item {index} is base64 but not a gzip file (.jsonl.gz).")
    try:
        return store_input(raw, f"item {index}", owner)
    except ValueError as exc:
        raise ParamsError(f"input_data.data[{index}]", f"Item {index}: {exc}") from None


def load_item(item: dict, index: int) -> tuple[list, list[str], list[dict]]:
    """The records of one item, an error for each of its lines that is not a
    record (the good lines still count), and for a structure the report on
    each ligand (convert.LigandReport.as_dict). Raises ValueError/FetchError
    naming the item when none of it can be read."""
    from .compute.records import record_from_dict

    ligands = list(item.get("ligands") or [])
    if item["source"] == "structure":
        if not item.get("records_input_id"):  # not converted at submission (over the upload cap)
            conversion = convert_structure(item, index)
            return conversion.records, [], [report.as_dict() for report in conversion.ligands]
        data = read_input(item["records_input_id"], index)  # converted when the form checked the upload
    elif item["source"] == "url":
        data = fetch(item["url"], fetch_limits())
    elif item["source"] == "stored":
        data = read_input(item["input_id"], index)
    else:
        raise ValueError(f"unknown source {item['source']!r}")
    text = gunzip_capped(data, settings.BIOFM_MAX_DECOMPRESSED_BYTES, what=f"item {index}") \
        if data.startswith(GZIP_MAGIC) else data
    try:
        lines = text.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"Item {index} is not UTF-8 JSON lines.") from None
    records, bad_lines = [], []
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            bad_lines.append(f"Item {index}, line {line_number}: not JSON ({exc.msg}).")
            continue
        try:
            records.append(record_from_dict(raw, where=f"item {index}, line {line_number}"))
        except ValueError as exc:
            bad_lines.append(str(exc))
    if not records:
        raise ValueError("; ".join(bad_lines[:3]) if bad_lines else f"Item {index} holds no ATOMICA record.")
    return records, bad_lines, ligands


def records_jsonl_gz(records) -> bytes:
    """Records as the bytes of an ATOMICA .jsonl.gz (floats round-trip exactly)."""
    from .compute.records import record_line

    return gzip.compress("".join(record_line(r) for r in records).encode("utf-8"))


def convert_structure(item: dict, index: int = 0):
    """The conversion (records and ligand reports) of a stored structure
    file, with the sides the user chose (or the first side the file suggests)."""
    import tempfile
    from pathlib import Path

    from .compute import convert

    with tempfile.TemporaryDirectory(prefix="biofm-structure-") as tmp:
        path = Path(tmp) / safe_name(item.get("name", "structure.pdb"))
        path.write_bytes(read_input(item["input_id"], index))
        sdf = None
        if item.get("ligand_sdf_input_id"):
            sdf = Path(tmp) / "ligand.sdf"
            sdf.write_bytes(read_input(item["ligand_sdf_input_id"], index))
        side = item.get("side") or default_side(path)
        return convert.convert_structure_report(
            path, side["chains1"], side.get("chains2") or None,
            ligand_code=side.get("ligand_code") or None,
            ligand_smiles=item.get("smiles") or None, ligand_sdf=sdf,
            mode=item.get("mode", "default"), cutoff=float(item.get("cutoff", 8.0)))


# Glycans, buffer and cryo-protectant molecules: rarely the ligand of interest.
COMMON_ADDITIVES = frozenset("""NAG NDG BMA MAN FUC GAL GLC SO4 PO4 GOL EDO PEG PG4 PGE ACT ACE
DMS MPD TRS CIT FMT EPE MES IMD BME DTT HOH CL NA K""".split())


def ranked_sides(path) -> list:
    """The file's suggested sides, the likeliest ligand of interest first."""
    from .compute import convert

    options = convert.suggest_sides(path)
    return sorted(options, key=lambda o: o.kind == "ligand" and (o.ligand_code or "") in COMMON_ADDITIVES)


def default_side(path) -> dict:
    options = ranked_sides(path)
    if not options:
        raise ValueError(f"{path.name}: no interface found to suggest; choose the chains.")
    return side_dict(options[0])


def side_dict(option) -> dict:
    kwargs = option.kwargs()
    return {"chains1": list(kwargs.get("chains1") or []), "chains2": list(kwargs.get("chains2") or []),
            "ligand_code": kwargs.get("ligand_code") or "", "label": option.label}


def safe_name(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[-100:]
    return keep.lstrip(".") or "structure.pdb"


__all__ = ["FetchError", "load_item", "item_from_text", "store_input", "fetch_limits"]
