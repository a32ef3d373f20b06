"""ESM-2 (Lin et al., 2023), written for inference.

The arithmetic is fair-esm's ``esm.model.esm2.ESM2`` step for step, and the
module names are the same, so ``ESM2.load_state_dict`` takes an official
checkpoint's weights after the prefix upgrade in ``checkpoints.py``. What is
different is only what the model does not compute:

* attention goes through ``scaled_dot_product_attention`` (a fused kernel
  that never materialises the T x T probabilities) unless contact maps are
  asked for, and then through an explicit softmax, as fair-esm always does;
* the language-model head runs only when logits are asked for;
* layers above the highest one asked for are skipped;
* the contact head is accumulated one layer at a time instead of over a
  stacked batch x layers x heads x T x T tensor.

A sequence is ``<cls> residues <eos>``, padded with ``<pad>`` to the longest
sequence in the batch. Shapes: B batch, T tokens, E embedding width,
H heads, D = E / H per-head width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import alphabet

# Fraction of tokens replaced by <mask> during training (15% selected, 80% of
# those masked). See ESM2.forward for why it matters at inference.
MASK_RATIO_TRAIN = 0.15 * 0.8


class _KeepsFloat32(nn.Module):
    """A module that follows the model to a device but not to a lower precision.

    ``model.to(torch.bfloat16)`` would otherwise round the rotary frequencies,
    and the position angles computed from them (bf16 holds integers exactly
    only up to 256), and the contact regression's weights.
    """

    def _apply(self, fn, recurse=True):
        return super()._apply(lambda t: t.to(device=fn(t).device), recurse)


class RotaryEmbedding(_KeepsFloat32):
    """Rotary position embedding (RoFormer), applied to queries and keys."""

    def __init__(self, dim: int):
        super().__init__()
        # A buffer, not a constant, because official checkpoints store it and
        # fair-esm uses the stored values.
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim)))

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotate q and k ([B, H, T, D]) by their positions, in float32."""
        positions = torch.arange(q.shape[-2], device=q.device, dtype=self.inv_freq.dtype)
        angles = torch.outer(positions, self.inv_freq)
        angles = torch.cat((angles, angles), dim=-1)  # [T, D]: frequency i drives dims i and i + D/2
        cos, sin = angles.cos(), angles.sin()
        return _rotate(q, cos, sin), _rotate(k, cos, sin)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x32 = x.float()  # a no-op in float32
    first, second = x32.chunk(2, dim=-1)
    rotated_half = torch.cat((-second, first), dim=-1)
    return (x32 * cos + rotated_half * sin).to(x.dtype)


class SelfAttention(nn.Module):
    def __init__(self, embed_dim: int, num_heads: int):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.scaling = self.head_dim**-0.5
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        self.rot_emb = RotaryEmbedding(self.head_dim)

    def forward(
        self, x: torch.Tensor, padding_mask: torch.Tensor | None, need_weights: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: [B, T, E]; padding_mask: [B, T], True at <pad>, or None.

        Returns the attention output and, if need_weights, the float32
        attention probabilities [B, H, T, T].
        """
        B, T, E = x.shape
        # fair-esm's order: scale the query, then rotate. Rotation is linear,
        # so the order only matters in the last bit, but that is what the
        # parity tests compare.
        q = self.q_proj(x) * self.scaling
        k = self.k_proj(x)
        v = self.v_proj(x)
        q, k, v = (t.view(B, T, self.num_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        q, k = self.rot_emb(q, k)

        probs = None
        if need_weights:
            scores = q @ k.transpose(-1, -2)
            if padding_mask is not None:
                scores = scores.masked_fill(padding_mask[:, None, None, :], float("-inf"))
            probs = scores.softmax(dim=-1, dtype=torch.float32)
            out = probs.to(v.dtype) @ v
        else:
            keep = None if padding_mask is None else ~padding_mask[:, None, None, :]
            # scale=1: the query is already scaled.
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=1.0)
        out = out.transpose(1, 2).reshape(B, T, E)
        return self.out_proj(out), probs


class TransformerLayer(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + ffn(norm(x))."""

    def __init__(self, embed_dim: int, ffn_dim: int, num_heads: int):
        super().__init__()
        self.self_attn = SelfAttention(embed_dim, num_heads)
        self.self_attn_layer_norm = nn.LayerNorm(embed_dim)
        self.fc1 = nn.Linear(embed_dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, embed_dim)
        self.final_layer_norm = nn.LayerNorm(embed_dim)

    def forward(self, x, padding_mask, need_weights):
        attn, probs = self.self_attn(self.self_attn_layer_norm(x), padding_mask, need_weights)
        x = x + attn
        # Exact (erf) GELU, as fair-esm; one fused kernel instead of its five
        # elementwise passes over the widest activation in the model.
        x = x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))
        return x, probs


def apc(x: torch.Tensor) -> torch.Tensor:
    """Average product correction: subtract row sum x column sum / total."""
    row = x.sum(-1, keepdim=True)
    col = x.sum(-2, keepdim=True)
    total = x.sum((-1, -2), keepdim=True)
    return x - row * col / total


class ContactPredictionHead(_KeepsFloat32):
    """Logistic regression over every head's symmetrised, APC-corrected map.

    The regression's features are indexed layer-major (layer * heads + head),
    as fair-esm stacks them. Because the regression is linear and APC acts on
    each map alone, the layers' contributions can be summed as they are
    produced, and only one layer's maps are ever in memory.
    """

    def __init__(self, num_layers: int, heads: int):
        super().__init__()
        self.heads = heads
        self.regression = nn.Linear(num_layers * heads, 1)

    def layer_logits(self, layer: int, probs: torch.Tensor, keep_pairs: torch.Tensor) -> torch.Tensor:
        """One layer's share of the contact logits, [B, T-2, T-2].

        probs: [B, H, T, T]; keep_pairs: [B, 1, T, T], 1 where both tokens are
        residues or <cls>. Zeroing <eos> and <pad> rows and columns, then
        cutting the first and last row and column, leaves one residue per row
        for every sequence in the batch, zeros after its end.
        """
        maps = (probs * keep_pairs)[..., 1:-1, 1:-1]
        maps = apc(maps + maps.transpose(-1, -2))
        weights = self.regression.weight[0, layer * self.heads : (layer + 1) * self.heads]
        return torch.einsum("bhij,h->bij", maps, weights)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits + self.regression.bias)


class LMHead(nn.Module):
    """Masked-language-model head; its output matrix is the token embedding."""

    def __init__(self, embed_dim: int, vocab_size: int, weight: nn.Parameter):
        super().__init__()
        self.dense = nn.Linear(embed_dim, embed_dim)
        self.layer_norm = nn.LayerNorm(embed_dim)
        self.weight = weight
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, x):
        return F.linear(self.layer_norm(F.gelu(self.dense(x))), self.weight) + self.bias


class ESM2(nn.Module):
    def __init__(self, num_layers: int, embed_dim: int, attention_heads: int, token_dropout: bool = True):
        super().__init__()
        self.num_layers = num_layers
        self.embed_dim = embed_dim
        self.attention_heads = attention_heads
        self.token_dropout = token_dropout
        vocab_size = len(alphabet.TOKENS)
        self.embed_tokens = nn.Embedding(vocab_size, embed_dim, padding_idx=alphabet.PAD)
        self.layers = nn.ModuleList(
            TransformerLayer(embed_dim, 4 * embed_dim, attention_heads) for _ in range(num_layers)
        )
        self.contact_head = ContactPredictionHead(num_layers, attention_heads)
        self.emb_layer_norm_after = nn.LayerNorm(embed_dim)
        self.lm_head = LMHead(embed_dim, vocab_size, self.embed_tokens.weight)

    def forward(
        self,
        tokens: torch.Tensor,
        repr_layers: list[int] | tuple[int, ...] = (),
        need_contacts: bool = False,
        need_logits: bool = False,
    ) -> dict:
        """tokens: [B, T] token indices (see alphabet.py).

        Returns {"representations": {layer: [B, T, E]}} for each layer in
        repr_layers (0 = the embedding, num_layers = the last layer, which
        has the final layer norm applied, as in fair-esm), plus "contacts"
        [B, T-2, T-2] (residue x residue probabilities; rows past a
        sequence's end are meaningless) and "logits" [B, T, vocab] when
        asked for.
        """
        wanted = set(repr_layers)
        if any(not 0 <= layer <= self.num_layers for layer in wanted):
            raise ValueError(f"repr_layers must lie in 0..{self.num_layers}, got {sorted(wanted)}")
        padding_mask = tokens.eq(alphabet.PAD)

        x = self.embed_tokens(tokens)
        if self.token_dropout:
            # ESM-2 was trained with <mask> embeddings zeroed and the rest
            # scaled by 1 / (1 - masked fraction). fair-esm applies the same
            # scaling at inference with the observed masked fraction, so a
            # sequence with no <mask> is still scaled by 0.88; we must too.
            is_mask = tokens.eq(alphabet.MASK)
            x = x.masked_fill(is_mask.unsqueeze(-1), 0.0)
            src_lengths = (~padding_mask).sum(-1)
            observed = is_mask.sum(-1).to(x.dtype) / src_lengths
            x = x * (1 - MASK_RATIO_TRAIN) / (1 - observed)[:, None, None]
        x = x.masked_fill(padding_mask.unsqueeze(-1), 0.0)

        representations = {}
        if 0 in wanted:
            representations[0] = x

        run_all = need_contacts or need_logits or self.num_layers in wanted
        depth = self.num_layers if run_all else max(wanted, default=0)
        if not padding_mask.any():
            padding_mask = None  # lets the fused attention skip masking
        if need_contacts:
            keep = tokens.ne(alphabet.PAD) & tokens.ne(alphabet.EOS)
            keep_pairs = (keep[:, :, None] & keep[:, None, :]).unsqueeze(1).float()
            contact_logits = 0

        for i, layer in enumerate(self.layers[:depth]):
            x, probs = layer(x, padding_mask, need_weights=need_contacts)
            if need_contacts:
                contact_logits = contact_logits + self.contact_head.layer_logits(i, probs, keep_pairs)
            if i + 1 in wanted:
                representations[i + 1] = x

        result = {"representations": representations}
        if depth == self.num_layers and (need_logits or self.num_layers in wanted):
            x = self.emb_layer_norm_after(x)
            if self.num_layers in wanted:
                representations[self.num_layers] = x
            if need_logits:
                result["logits"] = self.lm_head(x)
        if need_contacts:
            result["contacts"] = self.contact_head(contact_logits)
        return result
