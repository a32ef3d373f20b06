"""Tiny ESM-2 checkpoints in the official file format, for tests and benchmarks.

The layout follows what fair-esm's loader undoes: the model file is
``{"model": state_dict, "cfg": {"model": argparse.Namespace(...)}}`` with the
encoder's tensors under ``encoder.sentence_encoder.`` and the LM head under
``encoder.``; the contact regression ships as a separate
``<name>-contact-regression.pt`` holding ``{"model": {...}}`` with unprefixed
``contact_head.regression.*`` keys.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

VOCAB_SIZE = 33  # the ESM-1b/ESM-2 alphabet


def tiny_state_dict(num_layers: int, embed_dim: int, heads: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights with fair-esm's ESM2 names (no prefixes).

    Layer norms get random gains and biases too: with the default ones and
    zeros a layer norm applied in the wrong place would go unnoticed.
    """
    g = torch.Generator().manual_seed(seed)

    def normal(*shape, std=1.0):
        return torch.randn(*shape, generator=g) * std

    def linear(prefix, n_in, n_out):
        return {f"{prefix}.weight": normal(n_out, n_in, std=1 / math.sqrt(n_in)),
                f"{prefix}.bias": normal(n_out, std=0.1)}

    def norm(prefix, n):
        return {f"{prefix}.weight": 1 + normal(n, std=0.3), f"{prefix}.bias": normal(n, std=0.3)}

    head_dim = embed_dim // heads
    embed = normal(VOCAB_SIZE, embed_dim)
    state = {"embed_tokens.weight": embed}
    for i in range(num_layers):
        p = f"layers.{i}"
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
            state.update(linear(f"{p}.self_attn.{proj}", embed_dim, embed_dim))
        state[f"{p}.self_attn.rot_emb.inv_freq"] = 1.0 / (
            10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
        state.update(norm(f"{p}.self_attn_layer_norm", embed_dim))
        state.update(linear(f"{p}.fc1", embed_dim, 4 * embed_dim))
        state.update(linear(f"{p}.fc2", 4 * embed_dim, embed_dim))
        state.update(norm(f"{p}.final_layer_norm", embed_dim))
    state.update(linear("contact_head.regression", num_layers * heads, 1))
    state.update(norm("emb_layer_norm_after", embed_dim))
    state["lm_head.weight"] = embed  # tied to the token embedding
    state["lm_head.bias"] = normal(VOCAB_SIZE, std=0.1)
    state.update(linear("lm_head.dense", embed_dim, embed_dim))
    state.update(norm("lm_head.layer_norm", embed_dim))
    return state


def write_tiny_esm2(
    directory: Path,
    name: str = "esm2_t6_8M_UR50D",
    num_layers: int = 2,
    embed_dim: int = 32,
    heads: int = 4,
    seed: int = 0,
    with_regression: bool = True,
) -> Path:
    """Write ``<directory>/checkpoints/<name>.pt`` (+ regression); return that path.

    ``directory`` plays the role of torch hub's directory
    (``torch.hub.set_dir(directory)`` makes the files findable by name).
    """
    state = tiny_state_dict(num_layers, embed_dim, heads, seed)
    regression = {k: state.pop(k) for k in ("contact_head.regression.weight", "contact_head.regression.bias")}
    official = {
        ("encoder." if k.startswith("lm_head.") else "encoder.sentence_encoder.") + k: v
        for k, v in state.items()
    }
    cfg = argparse.Namespace(
        arch="esm2",
        encoder_layers=num_layers,
        encoder_embed_dim=embed_dim,
        encoder_ffn_embed_dim=4 * embed_dim,
        encoder_attention_heads=heads,
        token_dropout=True,
        max_positions=1024,
    )
    out = Path(directory) / "checkpoints"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.pt"
    torch.save({"model": official, "cfg": {"model": cfg}}, path)
    if with_regression:
        torch.save({"model": regression}, out / f"{name}-contact-regression.pt")
    return path
