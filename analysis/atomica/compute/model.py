"""ATOMICA's embedding network, re-implemented on e3nn and PyTorch Geometric.

ATOMICA (Fang et al. 2025, github.com/mims-harvard/ATOMICA) embeds an
interaction complex at three scales:

1. **Atoms.** Every atom is a node. Each atom receives messages from its
   k nearest atoms of the same segment ("intra" edges) and, separately, its
   k nearest atoms of the other segment ("inter" edges). Messages are
   e3nn tensor products of the neighbour's features with the spherical
   harmonics of the edge direction, weighted per edge by an MLP of the edge
   length, edge type and both endpoints' scalars.
2. **Blocks** (residues, nucleotides, ligand fragments). A block starts from
   its type embedding plus cross-attention over its atoms' embeddings, then
   runs the same kind of equivariant network on block centroids, with extra
   edges to and between the per-segment global nodes.
3. **Graph.** Self-attention over the blocks of the complex, a sum and a
   linear layer.

Each scale's output is L2-normalised. Module and parameter names follow
ATOMICA's ``PredictionModel`` so its state dicts load unchanged.

Behaviour kept on purpose to reproduce ATOMICA's numbers:

- "Global-like" nodes are blocks whose type is the global block *or UNK*
  (ATOMICA compares block types with ``[<G>, 2]``, and 2 is UNK in the block
  vocabulary). They get no kNN edges at either level.
- Atom->block attention pads every block's atom list to the longest block of
  its complex with zero rows that are *not* masked, so padding keys/values
  (the projection biases) take part in the softmax.

What differs from ATOMICA on purpose: ATOMICA pads to the longest block and
largest complex of the whole *batch*, so a complex's embedding depends on
what it was batched with. Here the padding is per complex (extra batch
padding is masked out), so batching never changes a result.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

with warnings.catch_warnings():
    # e3nn 0.5.1 and PyG script some code with torch.jit.script at import,
    # which newer torch deprecates noisily; the code itself works.
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*is deprecated", category=DeprecationWarning)
    from e3nn import o3
    from torch_geometric.utils import scatter, to_dense_batch

from .vocab import GLOBAL_ATOM, GLOBAL_BLOCK, UNK_BLOCK, get_vocabulary

# Distance given to node pairs that may not be neighbours. float32 holds 1e10
# exactly, and any real distance is far below it.
_NOT_A_NEIGHBOUR = 1e10

# Block types the edge builder treats as global nodes (see module docstring).
GLOBAL_LIKE_BLOCK_TYPES = (GLOBAL_BLOCK, UNK_BLOCK)

EDGE_INTRA, EDGE_INTER, EDGE_GLOBAL_NORMAL, EDGE_GLOBAL_GLOBAL = 0, 1, 2, 3


@dataclass(frozen=True)
class AtomicaConfig:
    """The hyper-parameters ATOMICA writes to ``config.json``."""

    atom_hidden_size: int = 32
    block_hidden_size: int = 32
    edge_size: int = 32
    n_layers: int = 4
    k_neighbors: int = 8
    dropout: float = 0.0  # training only; inference never drops
    global_message_passing: bool = True
    bottom_global_message_passing: bool = False
    fragmentation_method: str | None = "PS_300"

    @classmethod
    def from_dict(cls, raw: dict) -> "AtomicaConfig":
        """From an ATOMICA config.json; keys for training-only heads are ignored."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in names}
        # ATOMICA's constructor default: configs written before the option
        # existed mean "no fragment vocabulary".
        values.setdefault("fragmentation_method", None)
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------
# Batched input
# --------------------------------------------------------------------------


@dataclass
class ComplexBatch:
    """Several complexes concatenated, as ATOMICA's collate builds them."""

    X: Tensor  # [Na, 3] float32
    B: Tensor  # [Nb] block types
    A: Tensor  # [Na] atom types
    block_lengths: Tensor  # [Nb]
    segment_ids: Tensor  # [Nb]
    lengths: Tensor  # [G] blocks per complex

    def to(self, device) -> "ComplexBatch":
        return ComplexBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def _segment_ids_from_counts(counts: Tensor) -> Tensor:
    """[3, 1, 2] -> [0, 0, 0, 1, 2, 2]"""
    return torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)


def _offsets(counts: Tensor) -> list[int]:
    """Start offsets of consecutive groups, plus the end: [3, 1, 2] -> [0, 3, 4, 6]."""
    return [0] + torch.cumsum(counts, 0).tolist()


# --------------------------------------------------------------------------
# Edge construction
# --------------------------------------------------------------------------


def _nearest(dist: Tensor, allowed: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """For each row node, up to k allowed columns by increasing distance.

    ``k`` is capped at the number of columns (the complex's node count), as
    ATOMICA does for a batch of one; which equal-distance neighbour wins a tie
    is then decided by the same ``torch.topk`` call.
    """
    masked = torch.where(allowed, dist, torch.full_like(dist, _NOT_A_NEIGHBOUR))
    k = min(k, dist.shape[1])
    nearest_dist, cols = torch.topk(masked, k, dim=1, largest=False)
    keep = nearest_dist < _NOT_A_NEIGHBOUR
    rows = torch.arange(dist.shape[0], device=dist.device)[:, None].expand(-1, k)
    return rows[keep], cols[keep]


def build_edges(
    pos: Tensor,
    segment: Tensor,
    global_like: Tensor,
    graph_offsets: list[int],
    k: int,
    with_global_edges: bool,
    row_chunk: int = 1024,
) -> tuple[Tensor, Tensor]:
    """Message-passing edges of one level (atoms or blocks) for a batch.

    Returns ``edge_index`` [2, E] with row 0 the receiving node and row 1 the
    sending neighbour, and ``edge_type`` [E]. Edges are grouped by type
    (intra, inter, global-normal, global-global); within a type, by receiving
    node, and neighbours by increasing distance. Every node therefore sees
    its messages in the same order as in a batch of one.
    """
    by_type: list[list[Tensor]] = [[], [], [], []]
    for start, end in zip(graph_offsets[:-1], graph_offsets[1:]):
        n = end - start
        p, seg, gl = pos[start:end], segment[start:end], global_like[start:end]
        for row0 in range(0, n, row_chunk):
            rows = slice(row0, min(row0 + row_chunk, n))
            # The same per-pair norm(x_i - x_j) ATOMICA evaluates (not cdist's
            # matmul shortcut), so near-ties pick the same neighbours.
            dist = torch.linalg.vector_norm(p[rows, None, :] - p[None, :, :], dim=-1)
            local_rows = torch.arange(rows.start, rows.stop, device=pos.device)
            not_self = local_rows[:, None] != torch.arange(n, device=pos.device)[None, :]
            ordinary = not_self & ~gl[rows, None] & ~gl[None, :]
            same_segment = seg[rows, None] == seg[None, :]
            for edge_type, allowed in ((EDGE_INTRA, ordinary & same_segment),
                                       (EDGE_INTER, ordinary & ~same_segment)):
                src, dst = _nearest(dist, allowed, k)
                by_type[edge_type].append(torch.stack([src + rows.start + start, dst + start]))
        if with_global_edges:
            # Every pair involving a global node of the same segment, and
            # every pair of global nodes in any segment; a same-segment
            # global pair is in both lists, as in ATOMICA.
            not_self = ~torch.eye(n, dtype=torch.bool, device=pos.device)
            involves_global = gl[:, None] | gl[None, :]
            normal = not_self & involves_global & (seg[:, None] == seg[None, :])
            both = not_self & gl[:, None] & gl[None, :]
            by_type[EDGE_GLOBAL_NORMAL].append(normal.nonzero().T + start)
            by_type[EDGE_GLOBAL_GLOBAL].append(both.nonzero().T + start)

    index_parts, type_parts = [], []
    for edge_type, parts in enumerate(by_type):
        for part in parts:
            index_parts.append(part)
            type_parts.append(torch.full((part.shape[1],), edge_type, dtype=torch.long, device=pos.device))
    if not index_parts:
        empty = torch.zeros((2, 0), dtype=torch.long, device=pos.device)
        return empty, torch.zeros(0, dtype=torch.long, device=pos.device)
    return torch.cat(index_parts, dim=1), torch.cat(type_parts)


# --------------------------------------------------------------------------
# Equivariant message passing
# --------------------------------------------------------------------------


class GaussianSmearing(nn.Module):
    """Edge length -> Gaussian radial basis on evenly spaced centres."""

    def __init__(self, start: float = 0.0, stop: float = 5.0, num_gaussians: int = 32):
        super().__init__()
        offset = torch.linspace(start, stop, num_gaussians)
        self.register_buffer("offset", offset)
        # Width from the float32 spacing, as ATOMICA computes it.
        self.coeff = -0.5 / (offset[1] - offset[0]).item() ** 2

    def forward(self, dist: Tensor) -> Tensor:
        return torch.exp(self.coeff * torch.pow(dist[:, None] - self.offset[None, :], 2))


class EquivariantLayerNorm(nn.Module):
    """Layer norm that keeps equivariance (Equiformer's "V2" variant, component
    normalisation).

    Each irrep type is normalised separately: even scalars are mean-centred
    across their copies; every type is divided by the RMS (over components,
    then copies) of its features. The learned scale is per irrep copy and the
    learned shift only applies to even scalars, the only features a shift
    cannot rotate.
    """

    def __init__(self, irreps, eps: float = 1e-5):
        super().__init__()
        self.irreps = o3.Irreps(irreps)
        self.eps = eps
        num_even_scalars = sum(mul for mul, ir in self.irreps if ir.l == 0 and ir.p == 1)
        self.affine_weight = nn.Parameter(torch.ones(self.irreps.num_irreps))
        self.affine_bias = nn.Parameter(torch.zeros(num_even_scalars))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.irreps.dim:
            raise ValueError(f"expected {self.irreps.dim} features ({self.irreps}), got {x.shape[-1]}")
        pieces = []
        feature = weight_at = bias_at = 0
        for mul, ir in self.irreps:
            block = x[:, feature:feature + mul * ir.dim].reshape(-1, mul, ir.dim)
            feature += mul * ir.dim
            even_scalar = ir.l == 0 and ir.p == 1
            if even_scalar:
                block = block - block.mean(dim=1, keepdim=True)
            mean_square = block.pow(2).mean(-1).mean(dim=1, keepdim=True)  # [N, 1]
            scale = (mean_square + self.eps).pow(-0.5) * self.affine_weight[None, weight_at:weight_at + mul]
            weight_at += mul
            block = block * scale.reshape(-1, mul, 1)
            if even_scalar:
                block = block + self.affine_bias[bias_at:bias_at + mul].reshape(mul, 1)
                bias_at += mul
            pieces.append(block.reshape(-1, mul * ir.dim))
        return torch.cat(pieces, dim=-1)


class TensorProductConv(nn.Module):
    """One round of equivariant messages: each edge's message is a tensor
    product of the sender's features with the edge's spherical harmonics,
    with weights an MLP computes from the edge's scalar features. Messages
    are averaged per receiver, then layer-normalised."""

    def __init__(self, in_irreps: str, sh_irreps: o3.Irreps, out_irreps: str, n_edge_features: int):
        super().__init__()
        with warnings.catch_warnings():
            # As at import: e3nn's torch.jit.script use warns on newer torch.
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*is deprecated", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message="The TorchScript type system", category=UserWarning)
            self.tp = o3.FullyConnectedTensorProduct(in_irreps, sh_irreps, out_irreps, shared_weights=False)
        # Identity where ATOMICA has dropout, so parameter indices (fc.0, fc.3) match.
        self.fc = nn.Sequential(
            nn.Linear(n_edge_features, n_edge_features),
            nn.ReLU(),
            nn.Identity(),
            nn.Linear(n_edge_features, self.tp.weight_numel),
        )
        self.norm_layer = EquivariantLayerNorm(out_irreps)

    def forward(self, h: Tensor, edge_index: Tensor, edge_features: Tensor, edge_sh: Tensor,
                edge_chunk: int) -> Tensor:
        receiver, sender = edge_index
        num_nodes = h.shape[0]
        total = h.new_zeros(num_nodes, self.tp.irreps_out.dim)
        # The per-edge weight tensors are large (E x up to 11264 floats);
        # chunking edges bounds memory without changing any message.
        for start in range(0, edge_index.shape[1], edge_chunk):
            part = slice(start, start + edge_chunk)
            weights = self.fc(edge_features[part])
            messages = self.tp(h[sender[part]], edge_sh[part], weights)
            total = total + scatter(messages, receiver[part], dim=0, dim_size=num_nodes, reduce="sum")
        count = scatter(torch.ones_like(receiver, dtype=h.dtype), receiver, dim=0, dim_size=num_nodes,
                        reduce="sum").clamp(min=1)
        # A node without edges gets a zero message, which the norm maps to its bias.
        return self.norm_layer(total / count[:, None])


def _irreps_sequence(ns: int, nv: int) -> list[str]:
    """Node irreps after each layer: scalars first, then vectors and rank-2
    tensors of both parities, finally pseudo-scalars."""
    return [
        f"{ns}x0e",
        f"{ns}x0e + {nv}x1o + {nv}x2e",
        f"{ns}x0e + {nv}x1o + {nv}x2e + {nv}x1e + {nv}x2o",
        f"{ns}x0e + {nv}x1o + {nv}x2e + {nv}x1e + {nv}x2o + {ns}x0o",
    ]


class EquivariantStack(nn.Module):
    """The message-passing network of one level (ATOMICA's InteractionModule,
    embedding path only)."""

    def __init__(self, ns: int, edge_size: int, n_layers: int, max_edge_length: float = 5.0):
        super().__init__()
        self.ns = ns
        self.n_layers = n_layers
        self.sh_irreps = o3.Irreps.spherical_harmonics(lmax=2)
        self.edge_embedder = nn.Sequential(
            GaussianSmearing(stop=max_edge_length, num_gaussians=edge_size),
            nn.Linear(edge_size, edge_size),
            nn.ReLU(),
            nn.Identity(),
            nn.Linear(edge_size, edge_size),
        )
        irreps = _irreps_sequence(ns, ns // 2)
        n_edge_features = 2 * ns + 2 * edge_size  # length, type, receiver and sender scalars
        self.layers = nn.ModuleList(
            TensorProductConv(irreps[min(i, 3)], self.sh_irreps, irreps[min(i + 1, 3)], n_edge_features)
            for i in range(n_layers)
        )
        # From three layers on the pseudo-scalars exist and join the scalars.
        out_in = ns if n_layers < 3 else 2 * ns
        self.out_ffn = nn.Sequential(nn.Linear(out_in, out_in), nn.ReLU(), nn.Identity(), nn.Linear(out_in, ns))

    def forward(self, h: Tensor, pos: Tensor, edge_index: Tensor, edge_type_emb: Tensor,
                edge_chunk: int = 8192) -> Tensor:
        receiver, sender = edge_index
        edge_vec = pos[sender] - pos[receiver]
        edge_sh = o3.spherical_harmonics(self.sh_irreps, edge_vec, normalize=True, normalization="component")
        length_emb = self.edge_embedder(edge_vec.norm(dim=-1))
        for layer in self.layers:
            edge_features = torch.cat(
                (length_emb, edge_type_emb, h[receiver, :self.ns], h[sender, :self.ns]), dim=1)
            update = layer(h, edge_index, edge_features, edge_sh, edge_chunk)
            h = F.pad(h, (0, update.shape[-1] - h.shape[-1])) + update
        if self.n_layers < 3:
            invariants = h[:, :self.ns]
        else:
            invariants = torch.cat((h[:, :self.ns], h[:, -self.ns:]), dim=1)
        return self.out_ffn(invariants)


class LevelEncoder(nn.Module):
    """Wraps a level's network and L2-normalises its output (ATOMICAEncoder)."""

    def __init__(self, hidden_size: int, edge_size: int, n_layers: int):
        super().__init__()
        self.encoder = EquivariantStack(hidden_size, edge_size, n_layers, max_edge_length=5.0)

    def forward(self, h, pos, edge_index, edge_type_emb, edge_chunk: int = 8192) -> Tensor:
        return F.normalize(self.encoder(h, pos, edge_index, edge_type_emb, edge_chunk), dim=-1)


# --------------------------------------------------------------------------
# Attention parts
# --------------------------------------------------------------------------


class AtomToBlockAttention(nn.Module):
    """Each block (one query token) attends over its atoms' embeddings."""

    def __init__(self, dim_query: int, dim_kv: int, dim_out: int, num_heads: int):
        super().__init__()
        self.query_proj = nn.Linear(dim_query, dim_out)
        self.key_proj = nn.Linear(dim_kv, dim_out)
        self.value_proj = nn.Linear(dim_kv, dim_out)
        self.output_proj = nn.Linear(dim_out, dim_out)
        self.num_heads = num_heads
        self.head_dim = dim_out // num_heads
        self.scale = self.head_dim ** -0.5

    def forward(self, query: Tensor, atoms: Tensor, slot_valid: Tensor) -> Tensor:
        """query [Nb, Dq]; atoms [Nb, L, Dkv] zero-padded; slot_valid [Nb, L]
        says which slots (real atoms *and* the complex's own zero padding)
        take part. Returns [Nb, Dout]."""
        nb, slots, _ = atoms.shape
        q = self.query_proj(query).view(nb, 1, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.key_proj(atoms).view(nb, slots, self.num_heads, self.head_dim).transpose(1, 2)
        v = self.value_proj(atoms).view(nb, slots, self.num_heads, self.head_dim).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-2, -1)) * self.scale  # [Nb, H, 1, L]
        scores = scores.masked_fill(~slot_valid[:, None, None, :], float("-inf"))
        mixed = torch.matmul(scores.softmax(dim=-1), v)  # [Nb, H, 1, dh]
        return self.output_proj(mixed.transpose(1, 2).reshape(nb, -1))


class GraphAttentionPooling(nn.Module):
    """Rounds of self-attention among a complex's blocks, then sum -> linear."""

    def __init__(self, hidden_size: int, num_heads: int = 4, num_layers: int = 4):
        super().__init__()
        self.attention_layers = nn.ModuleList(
            nn.MultiheadAttention(hidden_size, num_heads=num_heads, batch_first=True) for _ in range(num_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_size) for _ in range(num_layers))
        self.graph_repr_fc = nn.Linear(hidden_size, hidden_size)

    def forward(self, block_repr: Tensor, graph_index: Tensor, num_graphs: int) -> Tensor:
        dense, present = to_dense_batch(block_repr, graph_index, batch_size=num_graphs)
        # Masking the batch padding makes each complex attend only to its own
        # blocks, which is exactly what ATOMICA computes for a batch of one.
        padding = None if bool(present.all()) else ~present
        for attention, norm in zip(self.attention_layers, self.norms):
            # need_weights=True keeps nn.MultiheadAttention on its explicit
            # (non-fused) path, the one ATOMICA's outputs were computed with.
            mixed, _ = attention(dense, dense, dense, key_padding_mask=padding, need_weights=True)
            dense = norm(dense + mixed)
        pooled = scatter(dense[present], graph_index, dim=0, dim_size=num_graphs, reduce="sum")
        return F.normalize(self.graph_repr_fc(pooled), dim=-1)


class TypeEmbeddings(nn.Module):
    def __init__(self, num_block_types: int, num_atom_types: int, atom_size: int, block_size: int):
        super().__init__()
        self.block_embedding = nn.Embedding(num_block_types, block_size)
        self.atom_embedding = nn.Embedding(num_atom_types, atom_size)


# --------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------


@dataclass
class AtomicaOutput:
    atom_repr: Tensor  # [Na, D], every atom incl. global atoms
    block_repr: Tensor  # [Nb, D], every block incl. global blocks
    graph_repr: Tensor  # [G, D]


class AtomicaModel(nn.Module):
    def __init__(self, config: AtomicaConfig | None = None):
        super().__init__()
        self.config = config = config or AtomicaConfig()
        vocab = get_vocabulary(config.fragmentation_method)
        self.block_embedding = TypeEmbeddings(
            vocab.num_block_types, vocab.num_atom_types, config.atom_hidden_size, config.block_hidden_size)
        self.edge_embedding_bottom = nn.Embedding(4, config.edge_size)
        self.edge_embedding_top = nn.Embedding(4, config.edge_size)
        self.encoder = LevelEncoder(config.atom_hidden_size, config.edge_size, config.n_layers)
        self.top_encoder = LevelEncoder(config.block_hidden_size, config.edge_size, config.n_layers)
        self.atom_block_attn = AtomToBlockAttention(
            config.block_hidden_size, config.atom_hidden_size, config.block_hidden_size, num_heads=4)
        self.atom_block_attn_norm = nn.LayerNorm(config.block_hidden_size)
        self.attention_pooling = GraphAttentionPooling(config.block_hidden_size, num_heads=4, num_layers=4)
        self.edge_chunk = 8192

    @property
    def embedding_size(self) -> int:
        return self.config.block_hidden_size

    def forward(self, batch: ComplexBatch) -> AtomicaOutput:
        cfg = self.config
        X, B, A = batch.X, batch.B, batch.A
        num_graphs = int(batch.lengths.shape[0])
        graph_of_block = _segment_ids_from_counts(batch.lengths)  # [Nb]
        block_of_atom = _segment_ids_from_counts(batch.block_lengths)  # [Na]
        block_offsets = _offsets(batch.lengths)
        atoms_per_graph = scatter(batch.block_lengths, graph_of_block, dim=0, dim_size=num_graphs, reduce="sum")
        atom_offsets = _offsets(atoms_per_graph)

        block_global_like = torch.zeros_like(B, dtype=torch.bool)
        for block_type in GLOBAL_LIKE_BLOCK_TYPES:
            block_global_like |= B == block_type

        # Atom level.
        edges, edge_type = build_edges(
            X, batch.segment_ids[block_of_atom], block_global_like[block_of_atom], atom_offsets,
            cfg.k_neighbors, with_global_edges=cfg.bottom_global_message_passing)
        atom_repr = self.encoder(self.block_embedding.atom_embedding(A), X, edges,
                                 self.edge_embedding_bottom(edge_type), self.edge_chunk)

        # Block level: start from the type embedding plus what the atoms say.
        block_type_emb = self.block_embedding.block_embedding(B)
        block_h = self.atom_block_attn_norm(
            block_type_emb + self._attend_atoms(block_type_emb, atom_repr, A, block_of_atom, graph_of_block,
                                                num_blocks=B.shape[0], num_graphs=num_graphs))
        centroids = scatter(X, block_of_atom, dim=0, dim_size=B.shape[0], reduce="mean")
        edges, edge_type = build_edges(
            centroids, batch.segment_ids, block_global_like, block_offsets,
            cfg.k_neighbors, with_global_edges=cfg.global_message_passing)
        block_repr = self.top_encoder(block_h, centroids, edges, self.edge_embedding_top(edge_type),
                                      self.edge_chunk)

        # Graph level. Without global message passing the global blocks
        # carry no information and are left out of the pooling.
        if cfg.global_message_passing:
            graph_repr = self.attention_pooling(block_repr, graph_of_block, num_graphs)
        else:
            keep = B != GLOBAL_BLOCK
            graph_repr = self.attention_pooling(block_repr[keep], graph_of_block[keep], num_graphs)
        return AtomicaOutput(atom_repr=atom_repr, block_repr=block_repr, graph_repr=graph_repr)

    def _attend_atoms(self, block_type_emb, atom_repr, A, block_of_atom, graph_of_block, num_blocks, num_graphs):
        if self.config.bottom_global_message_passing:
            kept = torch.ones_like(A, dtype=torch.bool)
        else:
            kept = A != GLOBAL_ATOM
        atoms, _ = to_dense_batch(atom_repr[kept], block_of_atom[kept], batch_size=num_blocks)
        # ATOMICA pads every block to the longest block of the batch and does
        # not mask the padding. Keep exactly the slots a batch of one would
        # have: up to the longest block of the block's own complex.
        atoms_per_block = scatter(kept.long(), block_of_atom, dim=0, dim_size=num_blocks, reduce="sum")
        longest = scatter(atoms_per_block, graph_of_block, dim=0, dim_size=num_graphs, reduce="max")
        own_width = longest[graph_of_block]  # [Nb]
        width = int(own_width.max())
        if atoms.shape[1] < width:
            atoms = F.pad(atoms, (0, 0, 0, width - atoms.shape[1]))
        slot_valid = torch.arange(width, device=A.device)[None, :] < own_width[:, None]
        return self.atom_block_attn(block_type_emb, atoms, slot_valid)
