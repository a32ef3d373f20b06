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

``forward_packed`` is the same model for embeddings only, with sequences laid
end to end instead of padded into a rectangle (see its docstring for why).

A sequence is ``<cls> residues <eos>``, padded with ``<pad>`` to the longest
sequence in the batch. Shapes: B batch, T tokens, E embedding width,
H heads, D = E / H per-head width.
"""

from __future__ import annotations

from typing import Callable

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


def rotary_tables(inv_freq: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of each position's angles, [N, D/2] (the halves fair-esm
    repeats are equal, so one is enough)."""
    top = int(positions.max()) + 1
    angles = torch.outer(torch.arange(top, device=inv_freq.device, dtype=inv_freq.dtype), inv_freq)
    return angles.cos()[positions], angles.sin()[positions]


def _same_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


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

    def fused_qkv(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The q, k and v projections stacked, [3E, E] and [3E], so one matrix
        multiply reads the input once. The three parameters become views into
        the stacked tensors, so the model holds their weights once; this is
        redone if a parameter was since replaced (by ``.to()``, say)."""
        projections = (self.q_proj, self.k_proj, self.v_proj)
        fused = getattr(self, "_fused", None)
        if fused is None or not all(_same_storage(p.weight, fused[0]) and _same_storage(p.bias, fused[1])
                                    for p in projections):
            weight = torch.cat([p.weight.detach() for p in projections])
            bias = torch.cat([p.bias.detach() for p in projections])
            E = self.q_proj.in_features
            for k, proj in enumerate(projections):
                proj.weight.data = weight[k * E : (k + 1) * E]
                proj.bias.data = bias[k * E : (k + 1) * E]
            fused = self._fused = (weight, bias)
        return fused

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
        after_layer: Callable[[int, int], None] | None = None,
    ) -> dict:
        """tokens: [B, T] token indices (see alphabet.py).

        Returns {"representations": {layer: [B, T, E]}} for each layer in
        repr_layers (0 = the embedding, num_layers = the last layer, which
        has the final layer norm applied, as in fair-esm), plus "contacts"
        [B, T-2, T-2] (residue x residue probabilities; rows past a
        sequence's end are meaningless) and "logits" [B, T, vocab] when
        asked for. ``after_layer(done, depth)`` is called after each layer
        (see ``forward_packed``).
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
            if after_layer is not None:
                after_layer(i + 1, depth)

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

    def forward_packed(self, tokens: torch.Tensor, lengths: list[int], repr_layers,
                       after_layer: Callable[[int, int], None] | None = None) -> dict[int, torch.Tensor]:
        """Representations of sequences laid end to end: {layer: [N, E]}.

        tokens: [N], each sequence's ``<cls> residues <eos>`` one after the
        other; lengths: each sequence's token count (summing to N). The
        arithmetic is ``forward``'s, so the rows are the same numbers (to
        float rounding) as the unpadded rows of its output.

        Why a second path: on a CPU the linear layers, which take most of
        the time, cost as much per padding token as per real one, and
        attention over padded keys needs a mask that slows the fused kernel.
        Here no token is padding and each run of equal-length neighbours
        (the batcher sorts by length) attends in one unmasked call. The
        query, key and value projections run as one matrix multiply (see
        ``SelfAttention.fused_qkv``). There are no contacts or logits here.

        ``after_layer(done, depth)``, if given, is called after each of the
        ``depth`` layers run: a big model's batch can take a minute on a CPU,
        and the caller reports progress and stops a cancelled job from there
        (by raising).
        """
        wanted = set(repr_layers)
        if any(not 0 <= layer <= self.num_layers for layer in wanted):
            raise ValueError(f"repr_layers must lie in 0..{self.num_layers}, got {sorted(wanted)}")
        if sum(lengths) != tokens.numel():
            raise ValueError(f"lengths add up to {sum(lengths)}, but there are {tokens.numel()} tokens")
        device = tokens.device
        N, E, H = tokens.numel(), self.embed_dim, self.attention_heads
        D = E // H
        lengths_t = torch.tensor(lengths, device=device)
        seq_of_token = torch.repeat_interleave(torch.arange(len(lengths), device=device), lengths_t)
        starts = torch.cumsum(lengths_t, 0) - lengths_t
        positions = torch.arange(N, device=device) - starts[seq_of_token]

        x = self.embed_tokens(tokens)
        if self.token_dropout:  # as in forward, per sequence
            is_mask = tokens.eq(alphabet.MASK)
            x = x.masked_fill(is_mask.unsqueeze(-1), 0.0)
            masked = torch.zeros(len(lengths), device=device).index_add_(0, seq_of_token, is_mask.float())
            observed = masked.to(x.dtype) / lengths_t
            x = x * (1 - MASK_RATIO_TRAIN) / (1 - observed)[seq_of_token, None]

        representations = {}
        if 0 in wanted:
            representations[0] = x
        depth = max(wanted, default=0)

        # Runs of equal-length neighbours: (first token, sequences, tokens each).
        runs, offset = [], 0
        for length in lengths:
            if runs and runs[-1][2] == length:
                runs[-1][1] += 1
            else:
                runs.append([offset, 1, length])
            offset += length

        # Every layer's intermediates have the same shapes, so they live in
        # buffers reused from layer to layer: a fresh allocation this large
        # comes from the kernel as zeroed pages, and the page faults on first
        # touch cost as much as the GELU that follows.
        def buffer(width):
            return torch.empty(N, width, device=device, dtype=x.dtype)

        qkv, ffn, attn_out, proj = buffer(3 * E), buffer(4 * E), buffer(E), buffer(E)
        rotated = torch.empty(N, 2, H, D, device=device, dtype=torch.float32)
        half = D // 2
        for i, layer in enumerate(self.layers[:depth]):
            attn = layer.self_attn
            weight, bias = attn.fused_qkv()
            torch.addmm(bias, layer.self_attn_layer_norm(x), weight.t(), out=qkv)  # q | k | v
            qkv[:, :E].mul_(attn.scaling)  # fair-esm scales the query before rotating it
            qk = qkv[:, : 2 * E].view(N, 2, H, D).float()
            # Each layer's own frequencies, as forward uses them; broadcast over
            # (query | key) x heads, in float32 as in forward.
            cos, sin = (t[:, None, None, :] for t in rotary_tables(attn.rot_emb.inv_freq, positions))
            # x * cos + rotate_half(x) * sin, one half of the head at a time.
            torch.mul(qk[..., :half], cos, out=rotated[..., :half])
            rotated[..., :half].addcmul_(qk[..., half:], sin, value=-1)
            torch.mul(qk[..., half:], cos, out=rotated[..., half:])
            rotated[..., half:].addcmul_(qk[..., :half], sin)
            q_k = rotated.to(x.dtype)
            v = qkv[:, 2 * E :].view(N, H, D)
            heads_out = attn_out.view(N, H, D)
            for first, count, length in runs:
                rows = slice(first, first + count * length)
                # [count * length, H, D] -> [count, H, length, D]
                q, k, v_ = (t.view(count, length, H, D).transpose(1, 2) for t in (q_k[rows, 0], q_k[rows, 1], v[rows]))
                o = F.scaled_dot_product_attention(q, k, v_, scale=1.0)
                heads_out[rows].view(count, length, H, D).copy_(o.transpose(1, 2))
            torch.addmm(attn.out_proj.bias, attn_out, attn.out_proj.weight.t(), out=proj)
            x = x + proj
            torch.addmm(layer.fc1.bias, layer.final_layer_norm(x), layer.fc1.weight.t(), out=ffn)
            torch.ops.aten.gelu_(ffn)  # exact (erf) GELU, as fair-esm
            torch.addmm(layer.fc2.bias, ffn, layer.fc2.weight.t(), out=proj)
            x = x + proj
            if i + 1 in wanted:
                representations[i + 1] = x
            if after_layer is not None:
                after_layer(i + 1, depth)

        if self.num_layers in wanted:
            representations[self.num_layers] = self.emb_layer_norm_after(x)
        return representations
