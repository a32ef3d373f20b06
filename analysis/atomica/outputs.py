"""Writing ATOMICA embeddings and building their charts. Free of Django.

Per complex: `graph_embedding` [32], `block_embedding` [blocks, 32],
`atom_embedding` [atoms, 32], one row per block and atom of the record,
global ones included, in record order (as ATOMICA does), with boolean arrays
flagging the global rows. Blocks are mapped back to chain and residue through
the record's `block_to_pdb_indexes`.
"""

from __future__ import annotations

import io
import json

import numpy as np


def block_labels(record) -> list[str]:
    """One label per block, unique within the record: “A:30 (GLU)” where the
    record maps a block to a residue (ATOMICA writes “A_30”: chain, underscore,
    residue number and insertion code); the blocks of one residue split into
    several (a fragmented ligand, or one block per atom) are numbered,
    “A:2001 frag 2 (c1ccccc1)”, so charts and tables never merge them."""
    from collections import Counter

    from .compute.vocab import get_vocabulary

    vocab = get_vocabulary()
    pdb_of = {i: record.block_to_pdb_indexes.get(i) for i in range(len(record.B))
              if not record.is_global_block[i]}
    shared = Counter(p for p in pdb_of.values() if p)
    seen: Counter = Counter()
    labels = []
    for index, block_type in enumerate(record.B):
        if record.is_global_block[index]:
            labels.append(f"global (side {int(record.segment_ids[index]) + 1})")
            continue
        pdb = pdb_of[index]
        name = vocab.block_name(int(block_type))
        if not pdb:
            labels.append(f"block {index} ({name})")
            continue
        where = pdb.replace("_", ":", 1)
        if shared[pdb] > 1:
            seen[pdb] += 1
            where = f"{where} frag {seen[pdb]}"
        labels.append(f"{where} ({name})")
    counts = Counter(labels)
    return [f"{label} #{i}" if counts[label] > 1 else label for i, label in enumerate(labels)]


def npz_arrays(embeddings) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {"__ids__": np.array([e.id for e in embeddings])}
    for e in embeddings:
        arrays[f"{e.id}/graph_embedding"] = e.graph_embedding
        arrays[f"{e.id}/block_embedding"] = e.block_embedding
        arrays[f"{e.id}/atom_embedding"] = e.atom_embedding
        arrays[f"{e.id}/is_global_block"] = np.asarray(e.is_global_block, dtype=bool)
        arrays[f"{e.id}/is_global_atom"] = np.asarray(e.is_global_atom, dtype=bool)
    return arrays


def write_npz(embeddings, path) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **npz_arrays(embeddings))


def as_json(embeddings, labels: dict[str, list[str]]) -> dict:
    return {"complexes": [{
        "id": e.id,
        "graph_embedding": e.graph_embedding.tolist(),
        "block_embedding": e.block_embedding.tolist(),
        "atom_embedding": e.atom_embedding.tolist(),
        "is_global_block": np.asarray(e.is_global_block).tolist(),
        "is_global_atom": np.asarray(e.is_global_atom).tolist(),
        "block_labels": labels.get(e.id, []),
    } for e in embeddings]}


def write_parquet(embeddings, labels: dict[str, list[str]], path) -> None:
    """One row per block, global blocks flagged; the graph embedding repeated
    on each row of its complex so one table answers both kinds of question."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = {"complex_id": [], "block_index": [], "block_label": [], "is_global": [],
            "block_embedding": [], "graph_embedding": []}
    for e in embeddings:
        names = labels.get(e.id, [""] * len(e.block_embedding))
        for i, vector in enumerate(e.block_embedding):
            rows["complex_id"].append(e.id)
            rows["block_index"].append(i)
            rows["block_label"].append(names[i])
            rows["is_global"].append(bool(e.is_global_block[i]))
            rows["block_embedding"].append(vector.astype(np.float32).tolist())
            rows["graph_embedding"].append(e.graph_embedding.astype(np.float32).tolist())
    table = pa.table({
        **{k: rows[k] for k in ("complex_id", "block_index", "block_label", "is_global")},
        "block_embedding": pa.array(rows["block_embedding"], type=pa.list_(pa.float32(), 32)),
        "graph_embedding": pa.array(rows["graph_embedding"], type=pa.list_(pa.float32(), 32)),
    })
    pq.write_table(table, path)


def atom_scatter_figure(record, embedding) -> dict:
    """Interface atoms in 3D, coloured by the first principal component of
    their ATOMICA atom embeddings (global atoms left out)."""
    keep = ~np.asarray(record.is_global_atom)
    coords = np.asarray(record.X)[keep]
    vectors = np.asarray(embedding.atom_embedding)[keep].astype(np.float64)
    centred = vectors - vectors.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    pc1 = centred @ vt[0]
    explained = float(s[0] ** 2 / (s**2).sum()) if s.sum() > 0 else 0.0
    segment = np.asarray(record.segment_ids)[record.atom_block_index][keep]
    return {
        "data": [{
            "type": "scatter3d", "mode": "markers",
            "x": np.round(coords[:, 0], 3).tolist(), "y": np.round(coords[:, 1], 3).tolist(),
            "z": np.round(coords[:, 2], 3).tolist(),
            "marker": {"size": 3, "color": np.round(pc1, 4).tolist(), "colorscale": "Viridis",
                       "colorbar": {"title": {"text": "PC1"}},
                       "symbol": ["circle" if s == 0 else "diamond" for s in segment]},
            "hovertext": [f"side {s + 1}" for s in segment], "hoverinfo": "text",
        }],
        "layout": {
            "title": {"text": f"{record.id}: interface atoms coloured by PC1 of ATOMICA atom embeddings "
                              f"({100 * explained:.0f}% of variance); circles side 1, diamonds side 2"},
            "scene": {"xaxis": {"title": {"text": "x (Å)"}}, "yaxis": {"title": {"text": "y (Å)"}},
                      "zaxis": {"title": {"text": "z (Å)"}}, "aspectmode": "data"},
            "height": 560, "margin": {"t": 60},
        },
    }


IMPORTANCE_METHOD = ("1 − cosine similarity between the complex (graph) embedding and the "
                     "embedding of the same complex with that block masked (block type set to "
                     "ATOMICA's MASK token, its atoms' element types to the atom mask)")


def importance_figure(record_id: str, labels: list[str], importance: list[float]) -> dict:
    return {
        "data": [{"type": "bar", "x": labels, "y": [round(v, 6) for v in importance],
                  "marker": {"color": "#2456c7"}}],
        "layout": {
            "title": {"text": f"{record_id}: interaction importance per block"},
            "yaxis": {"title": {"text": "1 − cos(graph, graph with block masked)"}},
            "xaxis": {"title": {"text": "Block (chain:residue)"}, "tickangle": -60},
            "height": 420, "margin": {"b": 140},
        },
    }


def block_atoms(record, labels: list[str], importance: list[float]) -> list[dict]:
    """Each non-global block's label, importance and atom coordinates (Å, as
    the structure file gives them), in importance order: what the 3D viewer
    paints on the structure (it finds atoms by coordinates, so a ligand
    fragment is painted atom by atom)."""
    coords = np.round(np.asarray(record.X, dtype=np.float64), 3)
    blocks = [i for i in range(record.num_blocks) if not record.is_global_block[i]]
    rows = [{"label": labels[b], "value": round(float(v), 6),
             "atoms": coords[np.asarray(record.atom_block_index) == b].tolist()}
            for b, v in zip(blocks, importance)]
    return sorted(rows, key=lambda r: -r["value"])


def to_json_bytes(payload: dict) -> bytes:
    buffer = io.StringIO()
    json.dump(payload, buffer)
    return buffer.getvalue().encode()
