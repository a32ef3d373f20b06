"""The worker side of an ATOMICA embedding job."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
from django.conf import settings

from biofm_site.safe_fetch import FetchError
from workers.context import JobContext, hardware_of_device
from workers.errors import JobInputError, JobSystemError

from . import outputs as out
from .inputs import load_item

MAX_CHARTS = 10  # complexes whose charts are kept on the page; downloads have all
# Masked copies of one complex per batch, in atoms: fewer copies of a large
# complex go together, so its progress (and a cancel) comes every few passes.
IMPORTANCE_ATOMS_PER_BATCH = 4000

_model = None
_model_lock = threading.Lock()


def load_atomica_model():
    """The worker's ATOMICA model: the operator's checkpoint, or the released one."""
    global _model
    from .compute.checkpoints import CheckpointError, load_model, load_pretrained

    with _model_lock:
        if _model is None:
            try:
                if settings.BIOFM_ATOMICA_CONFIG and settings.BIOFM_ATOMICA_WEIGHTS:
                    model = load_model(settings.BIOFM_ATOMICA_CONFIG, settings.BIOFM_ATOMICA_WEIGHTS)
                else:
                    model = load_pretrained(settings.BIOFM_ATOMICA_CHECKPOINT_DIR,
                                            download=settings.BIOFM_ATOMICA_ALLOW_DOWNLOAD)
            except (CheckpointError, OSError) as exc:
                raise JobSystemError(f"The ATOMICA model could not be loaded: {exc}") from None
            import torch

            _model = model.to("cuda" if torch.cuda.is_available() else "cpu")
        return _model


def masked_copy(record, block: int):
    """The record with one block masked: its type set to MASK, its atoms' types
    to the atom mask (see outputs.IMPORTANCE_METHOD)."""
    from .compute.vocab import MASK_BLOCK, UNKNOWN_ELEMENT

    b = record.B.copy()
    a = record.A.copy()
    b[block] = MASK_BLOCK
    a[record.atom_block_index == block] = UNKNOWN_ELEMENT
    return dataclasses.replace(record, id=f"{record.id}#mask{block}", B=b, A=a)


def block_importance(model, record, batch_size: int, progress=None) -> list[float]:
    """One extra pass per non-global block. ``progress(done, total)`` is
    called after each batch of masked copies (and is where a cancel stops it):
    a large complex takes minutes."""
    from .compute.embed import embed_records

    base = embed_records(model, [record])[0].graph_embedding
    blocks = [i for i in range(record.num_blocks) if not record.is_global_block[i]]
    masked = embed_records(model, [masked_copy(record, i) for i in blocks], batch_size=batch_size,
                           max_atoms_per_batch=IMPORTANCE_ATOMS_PER_BATCH, progress=progress)
    # Embeddings are L2-normalised, so the dot product is the cosine.
    return [float(1.0 - np.dot(base, m.graph_embedding)) for m in masked]


def run_atomica_embeddings(ctx: JobContext) -> dict:
    from .compute.embed import embed_records

    items = ctx.params["items"]
    records, item_of, errors, ligands = [], [], [], []
    for index, item in enumerate(items):
        try:
            with ctx.phase("reading inputs"):
                loaded, bad_lines, reports = load_item(item, index)
        except (FetchError, ValueError) as exc:
            errors.append({"index": index, "error": str(exc)})
        else:
            errors.extend({"index": index, "error": message} for message in bad_lines)
            records.extend(loaded)
            item_of.extend([index] * len(loaded))
            ligands.extend({"index": index, **report} for report in reports)
        ctx.progress(10 * (index + 1) / len(items), f"Read input {index + 1} of {len(items)}")
    if not records:
        raise JobInputError("No input could be read: " + "; ".join(e["error"] for e in errors[:5]))
    records = _unique_ids(records, item_of)

    with ctx.phase("loading model"):
        model = load_atomica_model()
    # A GPU-queue job on a worker without CUDA runs on its CPU: charge that.
    ctx.set_hardware(hardware_of_device(next(model.parameters()).device))
    # A record outside the model's vocabulary is an error of its item; the
    # other records, of that item and the others, are still embedded.
    records, item_of = _records_that_fit(model, records, item_of, errors)
    if not records:
        raise JobInputError("No record could be embedded: " + "; ".join(e["error"] for e in errors[:5]))
    batch = settings.BIOFM_ATOMICA_BATCH_SIZE
    # Progress after every batch, which is also where a cancel is seen.
    embeddings = embed_records(model, records, batch_size=batch, progress=lambda done, total: ctx.progress(
        10 + 70 * done / total, f"Embedded {done} of {total} complexes"))

    labels = {r.id: out.block_labels(r) for r in records}
    charts = []
    # The complexes that get importance, within the block budget; the bar
    # from 80 to 95 % moves by masked blocks, one pass each.
    importance_for, budget = set(), settings.BIOFM_ATOMICA_IMPORTANCE_MAX_BLOCKS
    for record in records[:MAX_CHARTS]:
        if ctx.params.get("importance") and record.num_blocks <= budget:
            importance_for.add(record.id)
            budget -= record.num_blocks
    masked_total = sum(int((~r.is_global_block).sum()) for r in records[:MAX_CHARTS] if r.id in importance_for)
    masked_before = 0
    for n, (record, emb) in enumerate(zip(records[:MAX_CHARTS], embeddings)):
        entry = {"id": record.id, "item": item_of[n], "atoms": out.atom_scatter_figure(record, emb)}
        if record.id in importance_for:
            def report(done, total, record=record, before=masked_before):
                ctx.progress(80 + 15 * (before + done) / max(1, masked_total),
                             f"Block importance for {record.id}: {done} of {total} blocks masked")

            report(0, int((~record.is_global_block).sum()))
            scores = block_importance(model, record, batch, progress=report)
            masked_before += len(scores)
            names = [labels[record.id][i] for i in range(record.num_blocks) if not record.is_global_block[i]]
            entry["importance"] = out.importance_figure(record.id, names, scores)
            entry["importance_values"] = dict(zip(names, scores))
            entry["blocks"] = out.block_atoms(record, labels[record.id], scores)
        charts.append(entry)

    ctx.progress(96, "Writing results")
    out.write_npz(embeddings, ctx.workdir / "atomica_embeddings.npz")
    ctx.add_file("atomica_embeddings.npz", ctx.workdir / "atomica_embeddings.npz", "application/octet-stream")
    out.write_parquet(embeddings, labels, ctx.workdir / "atomica_blocks.parquet")
    ctx.add_file("atomica_blocks.parquet", ctx.workdir / "atomica_blocks.parquet", "application/vnd.apache.parquet")
    ctx.add_file("atomica_embeddings.json", out.to_json_bytes(out.as_json(embeddings, labels)), "application/json")

    return {
        "complexes": [{"id": r.id, "item": i, "blocks": r.num_blocks, "atoms": r.num_atoms,
                       "graph_embedding": np.round(e.graph_embedding, 7).tolist()}
                      for r, i, e in zip(records, item_of, embeddings)],
        # {"index": item, "error": ...}, with "record" when one record of the item failed.
        "errors": sorted(errors, key=lambda e: e["index"]),
        # How each converted ligand became blocks: bond orders from the SMILES
        # given, inferred from the structure, or none (then "warning" says so).
        "ligands": ligands,
        "warnings": [f"Item {r['index']}: {r['warning']}" for r in ligands if r.get("warning")],
        "n_items": len(items),
        "charts": charts,
        "importance_method": out.IMPORTANCE_METHOD,
        "method": "ATOMICA (biofm implementation on e3nn/PyG, official checkpoint format); "
                  "embeddings are L2-normalised, 32-d",
    }


def _records_that_fit(model, records, item_of, errors):
    from .compute.embed import check_fits

    kept, kept_items = [], []
    for record, index in zip(records, item_of):
        try:
            check_fits(model, record)
        except ValueError as exc:
            errors.append({"index": index, "record": record.id, "error": f"Item {index}: {exc}"})
        else:
            kept.append(record)
            kept_items.append(index)
    return kept, kept_items


def _unique_ids(records, item_of):
    seen: dict[str, int] = {}
    unique = []
    for record, index in zip(records, item_of):
        if record.id in seen:
            record = dataclasses.replace(record, id=f"{record.id}#{index}")
        seen[record.id] = index
        unique.append(record)
    return unique
