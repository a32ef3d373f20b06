"""Writing ESM-2 embedding results, for the job and the `esm_embed` command.

Free of Django. Layouts:
* `embeddings.npz`: one array per sequence and output, keyed
  `<id>/mean/<layer>`, `<id>/per_tok/<layer>`, `<id>/bos/<layer>`,
  `<id>/contacts`, plus `__ids__` (record ids in input order). One line in
  NumPy: `np.load("embeddings.npz")["P69905/mean/33"]`.
* fair-esm `extract.py` layout: one `<id>.pt` per sequence holding `label`,
  `representations`, `mean_representations`, `bos_representations`,
  `contacts` as extract.py writes them (tensors, layer numbers as keys).
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np

from biofm_site.csvfile import dict_csv_text

HEADER_FIELD = re.compile(r"(\w+)=(.*?)(?=\s+\w+=|$)")


def npz_arrays(results, include) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {"__ids__": np.array([r.id for r in results])}
    for r in results:
        for part in ("mean", "per_tok", "bos"):
            if part in include:
                for layer, array in getattr(r, part).items():
                    arrays[f"{r.id}/{part}/{layer}"] = np.asarray(array, dtype=np.float32)
        if "contacts" in include and r.contacts is not None:
            arrays[f"{r.id}/contacts"] = np.asarray(r.contacts, dtype=np.float32)
    return arrays


def write_npz(results, include, path: Path) -> Path:
    with open(path, "wb") as fh:
        np.savez(fh, **npz_arrays(results, include))
    return path


def safe_filename(label: str) -> str:
    # extract.py writes f"{label}.pt"; a "/" in an id would make a directory.
    return label.replace("/", "_").replace("\x00", "_") or "unnamed"


def extract_pt_payload(result, include) -> dict:
    import torch

    payload: dict = {"label": result.id}
    if "per_tok" in include:
        payload["representations"] = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in result.per_tok.items()}
    if "mean" in include:
        payload["mean_representations"] = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in result.mean.items()}
    if "bos" in include:
        payload["bos_representations"] = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in result.bos.items()}
    if "contacts" in include and result.contacts is not None:
        payload["contacts"] = torch.from_numpy(np.ascontiguousarray(result.contacts))
    return payload


def write_extract_pt_dir(results, include, out_dir: Path) -> list[Path]:
    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for r in results:
        path = out_dir / f"{safe_filename(r.id)}.pt"
        torch.save(extract_pt_payload(r, include), path)
        paths.append(path)
    return paths


def write_extract_pt_zip(results, include, path: Path) -> Path:
    import torch

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for r in results:
            buffer = io.BytesIO()
            torch.save(extract_pt_payload(r, include), buffer)
            zf.writestr(f"{safe_filename(r.id)}.pt", buffer.getvalue())
    return path


def summary_rows(results, descriptions: dict[str, str]) -> list[dict]:
    return [{
        "id": r.id, "description": descriptions.get(r.id, ""), "length": r.length,
        "truncated": r.truncated, "windows": r.windows, "warnings": "; ".join(r.warnings),
    } for r in results]


def summary_csv(rows: list[dict]) -> str:
    return dict_csv_text(["id", "description", "length", "truncated", "windows", "warnings"], rows)


def header_fields(record_id: str, description: str) -> dict[str, str]:
    """Fields a user can colour a plot by: `KEY=value` pairs of UniProt-style
    headers (OS=, OX=, GN=, ...), the database and accession of `db|acc|name`
    ids, and the first word of the description."""
    fields = {k: v.strip() for k, v in HEADER_FIELD.findall(description)}
    parts = record_id.split("|")
    if len(parts) >= 3:
        fields.setdefault("database", parts[0])
    words = HEADER_FIELD.split(description)[0].split() if description else []
    if words:
        fields.setdefault("first word", words[0])
    return fields


def pca_2d(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project rows on their first two principal components (SVD of the
    centred matrix). Returns coordinates [N, 2] and explained variance ratios."""
    centred = matrix - matrix.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(2, vt.shape[0])
    coords = centred @ vt[:k].T
    if k < 2:
        coords = np.hstack([coords, np.zeros((coords.shape[0], 2 - k))])
    variance = s**2
    ratio = variance[:2] / variance.sum() if variance.sum() > 0 else np.zeros(2)
    return coords, np.pad(ratio, (0, 2 - len(ratio)))
