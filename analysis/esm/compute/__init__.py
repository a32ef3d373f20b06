"""ESM-2 protein embeddings without Django: checkpoints, model, engine, cache.

Typical use::

    ckpt = load_checkpoint("esm2_t12_35M_UR50D", weights_dir=..., allow_download=False)
    engine = Engine(ckpt, device="cuda")
    results = engine.embed([("P1", "MKTAYIAK...")], EmbedOptions(include={"mean", "per_tok"}))
"""

from .cache import ModelCache
from .checkpoints import (
    ESM2_MODELS,
    Checkpoint,
    CheckpointError,
    ModelSpec,
    WeightsMissing,
    fair_esm_model,
    hub_checkpoints_dir,
    load_checkpoint,
)
from .engine import EmbedOptions, EmbeddingCancelled, Engine, SequenceEmbedding, stitch_windows, window_starts
from .model import ESM2

__all__ = [
    "ESM2",
    "ESM2_MODELS",
    "Checkpoint",
    "CheckpointError",
    "EmbedOptions",
    "EmbeddingCancelled",
    "Engine",
    "ModelCache",
    "ModelSpec",
    "SequenceEmbedding",
    "WeightsMissing",
    "fair_esm_model",
    "hub_checkpoints_dir",
    "load_checkpoint",
    "stitch_windows",
    "window_starts",
]
