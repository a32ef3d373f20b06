"""Batched ATOMICA inference: records in, per-complex embeddings out.

Batching is only for speed: every complex gets exactly the embedding it gets
on its own (see the model's docstring for why that needs care).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .model import AtomicaModel, ComplexBatch
from .records import AtomicaRecord


@dataclass(frozen=True, eq=False)
class ComplexEmbedding:
    """ATOMICA's embeddings of one complex. Rows follow the record's order and
    include the global blocks/atoms (flagged), as ATOMICA's get_embeddings.py
    returns them. All rows are L2-normalised."""

    id: str
    graph_embedding: np.ndarray  # [D] float32
    block_embedding: np.ndarray  # [Nb, D] float32
    atom_embedding: np.ndarray  # [Na, D] float32
    block_types: np.ndarray  # [Nb] int64, the record's B (ATOMICA calls it block_id)
    atom_types: np.ndarray  # [Na] int64, the record's A (ATOMICA calls it atom_id)
    is_global_block: np.ndarray  # [Nb] bool, the per-segment global blocks
    is_global_atom: np.ndarray  # [Na] bool, their atoms


def collate(records: Sequence[AtomicaRecord]) -> ComplexBatch:
    """Concatenate records the way ATOMICA's collate does (coordinates to float32)."""
    if not records:
        raise ValueError("collate needs at least one record")
    return ComplexBatch(
        X=torch.from_numpy(np.concatenate([r.X for r in records]).astype(np.float32)),
        B=torch.from_numpy(np.concatenate([r.B for r in records])),
        A=torch.from_numpy(np.concatenate([r.A for r in records])),
        block_lengths=torch.from_numpy(np.concatenate([r.block_lengths for r in records])),
        segment_ids=torch.from_numpy(np.concatenate([r.segment_ids for r in records])),
        lengths=torch.tensor([r.num_blocks for r in records], dtype=torch.long),
    )


def check_fits(model: AtomicaModel, record: AtomicaRecord) -> None:
    num_blocks = model.block_embedding.block_embedding.num_embeddings
    num_atoms = model.block_embedding.atom_embedding.num_embeddings
    if record.B.max() >= num_blocks:
        raise ValueError(f"ATOMICA record {record.id!r}: field 'data.B' has block type {int(record.B.max())}, "
                         f"outside this model's vocabulary of {num_blocks}")
    if record.A.max() >= num_atoms:
        raise ValueError(f"ATOMICA record {record.id!r}: field 'data.A' has atom type {int(record.A.max())}, "
                         f"outside this model's vocabulary of {num_atoms}")


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def embed_records(model: AtomicaModel, records: Sequence[AtomicaRecord], batch_size: int = 8,
                  max_atoms_per_batch: int = 20000,
                  progress: Callable[[int, int], None] | None = None) -> list[ComplexEmbedding]:
    """Embed ``records`` in input order.

    Consecutive records are batched, up to ``batch_size`` complexes and about
    ``max_atoms_per_batch`` atoms (a single larger complex runs alone).
    Results do not depend on either limit. ``progress(done, total)`` is
    called after each batch with the number of records embedded (a caller
    that raises there, to cancel, stops the loop).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    for record in records:
        check_fits(model, record)
    model.eval()
    device = _device_of(model)
    results: list[ComplexEmbedding] = []
    batch: list[AtomicaRecord] = []
    atoms = 0
    for record in records:
        if batch and (len(batch) >= batch_size or atoms + record.num_atoms > max_atoms_per_batch):
            results.extend(_embed_batch(model, batch, device))
            batch, atoms = [], 0
            if progress is not None:
                progress(len(results), len(records))
        batch.append(record)
        atoms += record.num_atoms
    if batch:
        results.extend(_embed_batch(model, batch, device))
        if progress is not None:
            progress(len(results), len(records))
    return results


@torch.inference_mode()
def _embed_batch(model: AtomicaModel, batch: list[AtomicaRecord], device) -> list[ComplexEmbedding]:
    out = model(collate(batch).to(device))
    atom_repr = out.atom_repr.float().cpu().numpy()
    block_repr = out.block_repr.float().cpu().numpy()
    graph_repr = out.graph_repr.float().cpu().numpy()
    results = []
    block_at = atom_at = 0
    for index, record in enumerate(batch):
        results.append(ComplexEmbedding(
            id=record.id,
            graph_embedding=graph_repr[index].copy(),
            block_embedding=block_repr[block_at:block_at + record.num_blocks].copy(),
            atom_embedding=atom_repr[atom_at:atom_at + record.num_atoms].copy(),
            block_types=record.B.copy(),
            atom_types=record.A.copy(),
            is_global_block=record.is_global_block.copy(),
            is_global_atom=record.is_global_atom.copy(),
        ))
        block_at += record.num_blocks
        atom_at += record.num_atoms
    return results
