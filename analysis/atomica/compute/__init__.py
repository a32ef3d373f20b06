"""ATOMICA multi-scale interaction embeddings (our implementation; no Django here).

Typical use::

    from analysis.atomica.compute import load_pretrained, read_records, embed_records
    model = load_pretrained()                      # or load_model(config_json, weights_pt)
    embeddings = embed_records(model, read_records("complexes.jsonl.gz"), batch_size=8)

Names are imported on first use, so reading records does not pull in torch,
e3nn and PyTorch Geometric.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "AtomicaRecord": "records",
    "read_records": "records",
    "iter_records": "records",
    "write_records": "records",
    "record_from_dict": "records",
    "get_vocabulary": "vocab",
    "AtomicaConfig": "model",
    "AtomicaModel": "model",
    "CheckpointError": "checkpoints",
    "load_model": "checkpoints",
    "load_pretrained": "checkpoints",
    "pretrained_checkpoint_paths": "checkpoints",
    "ComplexEmbedding": "embed",
    "embed_records": "embed",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
