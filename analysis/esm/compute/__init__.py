"""ESM-2 protein embeddings without Django: checkpoints, model, engine, cache.

Typical use::

    ckpt = load_checkpoint("esm2_t12_35M_UR50D", weights_dir=..., allow_download=False)
    engine = Engine(ckpt, device="cuda")
    results = engine.embed([("P1", "MKTAYIAK...")], EmbedOptions(include={"mean", "per_tok"}))

The names are loaded on first use (PEP 562), so importing the package, or its
torch-free ``catalog``, does not import torch: the web process and a worker's
parent process read the catalog and never need it.
"""

from __future__ import annotations

import importlib

# name -> the submodule defining it
_EXPORTS = {
    "ModelCache": "cache",
    "ESM2_MODELS": "catalog",
    "ModelSpec": "catalog",
    "hub_checkpoints_dir": "catalog",
    "installed_models": "catalog",
    "Checkpoint": "checkpoints",
    "CheckpointError": "checkpoints",
    "WeightsMissing": "checkpoints",
    "fair_esm_model": "checkpoints",
    "load_checkpoint": "checkpoints",
    "EmbedOptions": "engine",
    "EmbeddingCancelled": "engine",
    "Engine": "engine",
    "SequenceEmbedding": "engine",
    "stitch_windows": "engine",
    "window_starts": "engine",
    "ESM2": "model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
