"""The worker side of an ESM-2 embedding job."""

from __future__ import annotations

import logging
import threading

import numpy as np
from django.conf import settings

from workers.context import JobContext, hardware_of_device
from workers.errors import JobCancelled, JobSystemError

from . import inventory, outputs as out
from analysis.fasta import read_records

# The job page shows at most this many rows and contact maps; downloads have all.
MAX_TABLE_ROWS = 500
MAX_PCA_POINTS = 20_000

log = logging.getLogger(__name__)

_cache = None
_cache_lock = threading.Lock()


def model_cache():
    global _cache
    from .compute.cache import ModelCache

    with _cache_lock:
        if _cache is None:
            _cache = ModelCache(settings.BIOFM_ESM_CACHE_BYTES)
        return _cache


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_engine(model: str, device: str = "auto", dtype: str | None = None):
    """The worker's engine for `model`, loaded once and kept while the cache has room."""
    from pathlib import Path

    from .compute.checkpoints import WeightsMissing, load_checkpoint
    from .compute.engine import Engine

    device = resolve_device(device)
    dtype = dtype or settings.BIOFM_ESM_DTYPE
    weights_dir = Path(settings.BIOFM_ESM_WEIGHTS_DIR) if settings.BIOFM_ESM_WEIGHTS_DIR else None

    def loader():
        checkpoint = load_checkpoint(model, weights_dir=weights_dir,
                                     allow_download=settings.BIOFM_ESM_ALLOW_DOWNLOAD)
        # It may have just been downloaded: the form can offer it as installed.
        inventory.report_from_job()
        return Engine(checkpoint, device=device, dtype=dtype)

    try:
        return model_cache().get((model, str(weights_dir), device, dtype), loader)
    except WeightsMissing as exc:
        # The submission saw the model in a worker's report, or no report at
        # all: this worker's report was stale or it lacks the file. The user
        # gets a message; the server paths go to the operators (the log, and
        # error_detail in the admin), and the report is refreshed so the form
        # stops offering the model.
        log.error("ESM-2 job on %s: %s", _worker_name(), exc)
        inventory.report_from_job()
        raise JobSystemError(MISSING_MESSAGE.format(model=model), detail=str(exc)) from None


MISSING_MESSAGE = ("This model ({model}) is not installed on the worker that ran the job; "
                   "the operators have been told. Choose an installed model, or try again later.")


def _worker_name() -> str:
    from celery import current_task

    return getattr(getattr(current_task, "request", None), "hostname", None) or "this process"


def run_esm_embeddings(ctx: JobContext) -> dict:
    from .compute.engine import EmbedOptions, EmbeddingCancelled

    p = ctx.params
    # clean_esm_params kept only records ESM-2 can embed; those left out are facts.
    records = read_records(p["fasta"])
    rejected = ctx.facts.get("rejected", [])
    descriptions = {r.id: r.description for r in records}
    ctx.progress(1, f"Loading {p['model']}")
    with ctx.phase("loading model"):
        engine = load_engine(p["model"], settings.BIOFM_ESM_DEVICE)
    # A GPU-queue job on a worker without CUDA runs on its CPU: charge that.
    ctx.set_hardware(hardware_of_device(engine.device))
    include = frozenset(p["include"])
    options = EmbedOptions(repr_layers=list(p["repr_layers"]), include=include,
                           long_sequences=p["long_sequences"])
    # "mean" feeds the PCA plot, so compute it even when it is not downloaded.
    compute = EmbedOptions(repr_layers=options.repr_layers, include=include | {"mean"},
                           long_sequences=options.long_sequences)
    ctx.progress(3, f"Embedding {len(records)} sequences")
    try:
        results = engine.embed(
            [(r.id, r.sequence) for r in records], compute,
            # Called after each batch, and every few seconds within one
            # (done is then fractional); ctx.progress is also where a cancel
            # is seen, and the engine stops its workers at their next layer.
            progress=lambda done, total: ctx.progress(3 + 90 * done / total,
                                                      f"Embedded {int(done)} of {total} sequences"),
            should_stop=ctx.cancel_requested,
        )
    except EmbeddingCancelled:
        raise JobCancelled("Cancelled") from None
    ctx.progress(94, "Writing results")
    ctx.add_file("embeddings.npz", out.write_npz(results, include, ctx.workdir / "embeddings.npz"),
                 "application/octet-stream")
    ctx.add_file("extract_pt.zip",
                 out.write_extract_pt_zip(results, include, ctx.workdir / "extract_pt.zip"),
                 "application/zip")
    rows = out.summary_rows(results, descriptions)
    ctx.add_file("summary.csv", out.summary_csv(rows), "text/csv")
    layers = sorted(results[0].mean) if results else []
    return {
        "model": p["model"],
        "layers": layers,
        "include": sorted(include),
        "n_records": len(results),
        "n_rejected": ctx.facts.get("n_rejected", len(rejected)),
        "rejected": rejected[:MAX_TABLE_ROWS],
        "rows": rows[:MAX_TABLE_ROWS],
        "truncated_rows": len(rows) > MAX_TABLE_ROWS,
        "n_truncated": sum(r.truncated for r in results),
        "pca": pca_payload(results, descriptions, layers[-1] if layers else None),
        "contact_ids": [r.id for r in results if r.contacts is not None][:MAX_TABLE_ROWS],
        "method": f"ESM-2 {p['model']} (fair-esm weights), biofm engine; "
                  f"{'truncated at 1022 residues' if p['long_sequences'] == 'truncate' else 'overlapping windows, stitched'}",
    }


def pca_payload(results, descriptions, layer) -> dict | None:
    if layer is None or len(results) < 2:
        return None
    shown = results[:MAX_PCA_POINTS]
    matrix = np.stack([r.mean[layer] for r in shown]).astype(np.float64)
    coords, ratio = out.pca_2d(matrix)
    fields = [out.header_fields(r.id, descriptions.get(r.id, "")) for r in shown]
    names = sorted({k for f in fields for k in f})
    return {
        "layer": layer,
        "ids": [r.id for r in shown],
        "x": np.round(coords[:, 0], 5).tolist(),
        "y": np.round(coords[:, 1], 5).tolist(),
        "explained": np.round(ratio, 4).tolist(),
        "fields": {name: [f.get(name, "") for f in fields] for name in names},
        "lengths": [r.length for r in shown],
        "method": f"PCA (SVD of centred per-sequence mean embeddings, layer {layer})",
    }
