"""Embedding protein sequences with ESM-2: batching, long sequences, outputs.

What comes out matches fair-esm's ``scripts/extract.py`` for the same model
and sequences: per-residue representations (the <cls> and <eos> positions
left out), their mean, the <cls> ("bos") representation, and contact maps,
for each requested layer. Layers are numbered as extract.py numbers them:
0 is the embedding layer, num_layers the last one; negative numbers count
from the end (-1 is the last layer).
"""

from __future__ import annotations

import numbers
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch

from . import alphabet
from .checkpoints import CONTACT_KEYS, Checkpoint, CheckpointError, WeightsMissing, load_checkpoint
from .model import ESM2

MAX_WINDOW = 1022  # residues; ESM-2 was trained on at most 1024 tokens incl. <cls> and <eos>
INCLUDE_CHOICES = frozenset({"mean", "per_tok", "bos", "contacts"})
LONG_SEQUENCE_MODES = ("truncate", "window")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# On CPU, batches whose activations stay in cache beat big ones: with the
# 35M model 2048 tokens ran 10-20% faster than 4096 and 8192 (bench/RESULTS.md).
DEFAULT_TOKS_PER_BATCH = {"cpu": 2048, "cuda": 16384}
# While a batch runs, progress is reported at least this often (seconds) and
# should_stop is polled between layers: a batch of a big model on a CPU takes
# a minute, too long to show no movement or to finish before a cancel counts.
REPORT_EVERY = 2.0
STOP_POLL = 0.25


class EmbeddingCancelled(Exception):
    """``should_stop`` returned true; nothing is returned."""


@dataclass
class EmbedOptions:
    """What to compute. ``window`` is the most residues one forward pass sees:
    longer sequences are cut to their first ``window`` residues
    (``long_sequences="truncate"``, fair-esm's behaviour at the default 1022)
    or embedded in overlapping windows (``"window"``, see ``stitch_windows``).
    ``toks_per_batch`` None means 2048 on CPU, 16384 on GPU; ``dtype`` "auto"
    means the engine's dtype (an explicit one must equal it).
    ``deduplicate`` embeds identical sequences once (results are copies)."""

    repr_layers: list[int] = field(default_factory=lambda: [-1])
    include: frozenset[str] = frozenset({"mean"})
    long_sequences: str = "truncate"
    toks_per_batch: int | None = None
    dtype: str = "auto"
    window: int = MAX_WINDOW
    window_overlap: int = 256
    deduplicate: bool = True

    def __post_init__(self):
        self.include = frozenset(self.include)
        layers = list(self.repr_layers)
        if not self.include or not self.include <= INCLUDE_CHOICES:
            raise ValueError(
                f"include must be a non-empty subset of {sorted(INCLUDE_CHOICES)}, got {sorted(self.include)}")
        if not layers or any(isinstance(i, bool) or not isinstance(i, numbers.Integral) for i in layers):
            raise ValueError(f"repr_layers must be a non-empty list of layer numbers, got {self.repr_layers!r}")
        self.repr_layers = [int(i) for i in layers]
        if self.long_sequences not in LONG_SEQUENCE_MODES:
            raise ValueError(f"long_sequences must be one of {LONG_SEQUENCE_MODES}, got {self.long_sequences!r}")
        if self.dtype != "auto" and self.dtype not in DTYPES:
            raise ValueError(f"dtype must be 'auto' or one of {sorted(DTYPES)}, got {self.dtype!r}")
        if not 1 <= self.window <= MAX_WINDOW:
            raise ValueError(f"window must be between 1 and {MAX_WINDOW} residues, got {self.window}")
        if self.long_sequences == "window" and not 0 <= self.window_overlap < self.window:
            raise ValueError(
                f"window_overlap must be at least 0 and less than window ({self.window}), got {self.window_overlap}")
        if self.toks_per_batch is not None and self.toks_per_batch < 1:
            raise ValueError(f"toks_per_batch must be positive, got {self.toks_per_batch}")


@dataclass
class SequenceEmbedding:
    """One record's outputs; arrays are float32, layers keyed 0..num_layers.

    ``length`` is the input's length; ``embedded_length`` the number of
    residues the arrays cover (smaller only when truncated). ``mean``,
    ``per_tok`` ([L, E]), ``bos`` ([E]) and ``contacts`` ([L, L]) are filled
    only when included.
    """

    id: str
    length: int
    truncated: bool
    windows: int
    mean: dict[int, np.ndarray] = field(default_factory=dict)
    per_tok: dict[int, np.ndarray] = field(default_factory=dict)
    bos: dict[int, np.ndarray] = field(default_factory=dict)
    contacts: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)
    embedded_length: int = 0


@dataclass
class _Piece:
    """One forward pass's worth of one record: the whole sequence or a window."""

    record: int
    index: int  # window number within the record
    residues: str
    whole: bool  # False for one of several windows


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be 'auto' or one of {sorted(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def window_starts(length: int, window: int, overlap: int) -> list[int]:
    """Start offsets of the windows covering ``length`` residues.

    Windows advance by ``window - overlap``; the last one is moved back to
    end at the sequence's end, so every window is full length and the last
    overlap may be longer than ``overlap``.
    """
    if length <= window:
        return [0]
    return [*range(0, length - window, window - overlap), length - window]


def window_weights(start: int, window: int, overlap: int, length: int) -> np.ndarray:
    """Blending weight of each residue of one window; see ``stitch_windows``."""
    weights = np.ones(window)
    ramp = np.arange(1, overlap + 1) / (overlap + 1)
    if start > 0:
        weights[:overlap] = np.minimum(weights[:overlap], ramp)
    if start + window < length:
        weights[window - overlap :] = np.minimum(weights[window - overlap :], ramp[::-1])
    return weights


def stitch_windows(rows: list[np.ndarray], starts: list[int], overlap: int, length: int) -> np.ndarray:
    """Per-residue embeddings of a long sequence from its windows' embeddings.

    Each residue's stitched embedding is the weighted average of its
    embeddings in the windows that contain it. In a window of W residues
    with overlap O, a residue j residues in from an edge that lies inside the
    sequence (j = 0 at the edge residue, j < O) has weight (j + 1) / (O + 1);
    every other residue has weight 1, including those at the sequence's own
    ends. Two windows that overlap by exactly O residues therefore cross-fade
    linearly, with weights summing to 1 at every residue; where the last
    window overlaps more, the middle of the overlap is a plain average.
    Residues in only one window take that window's embedding unchanged.
    """
    window = rows[0].shape[0]
    total = np.zeros((length, rows[0].shape[1]))
    weight_sum = np.zeros(length)
    for r, s in zip(rows, starts):
        w = window_weights(s, window, overlap, length)
        total[s : s + window] += w[:, None] * r
        weight_sum[s : s + window] += w
    return (total / weight_sum[:, None]).astype(np.float32)


def stitch_contacts(maps: list[np.ndarray], starts: list[int], length: int) -> np.ndarray:
    """Contact probabilities averaged over the windows holding both residues;
    NaN for pairs that share no window."""
    window = maps[0].shape[0]
    total = np.zeros((length, length), dtype=np.float32)
    count = np.zeros((length, length), dtype=np.int32)
    for m, s in zip(maps, starts):
        total[s : s + window, s : s + window] += m
        count[s : s + window, s : s + window] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan).astype(np.float32)


class Engine:
    """An ESM-2 model loaded on one device in one dtype, ready to embed.

    Thread-safe for concurrent ``embed`` calls (the model has no state that
    a forward pass changes).
    """

    def __init__(self, checkpoint: Checkpoint, device: str | torch.device = "cpu", dtype: str | torch.dtype = "auto"):
        self.device = torch.device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.name = checkpoint.name
        self.num_layers = checkpoint.num_layers
        self.embed_dim = checkpoint.embed_dim
        self.has_contact_regression = checkpoint.has_contact_regression
        self._regression_hint = checkpoint.regression_hint

        model = ESM2(checkpoint.num_layers, checkpoint.embed_dim, checkpoint.attention_heads, checkpoint.token_dropout)
        missing, unexpected = model.load_state_dict(checkpoint.state_dict, strict=False)
        allowed_missing = set() if checkpoint.has_contact_regression else set(CONTACT_KEYS)
        if unexpected or set(missing) - allowed_missing:
            raise CheckpointError(
                f"{checkpoint.path} does not fit the ESM-2 architecture its config describes: "
                f"missing {sorted(set(missing) - allowed_missing)}, unexpected {sorted(unexpected)}"
            )
        self.model = model.eval().requires_grad_(False).to(device=self.device, dtype=self.dtype)
        # Embeddings without contacts go through ESM2.forward_packed on a
        # CPU, where padding costs as much as real tokens. On a GPU the
        # padded batch runs as one set of kernels, which matters more there.
        self.packed = self.device.type == "cpu"
        # On a CPU, batches run side by side, one per intra-op thread torch
        # was given (see _run_on_cpu_workers); 1 runs them one after another.
        self.cpu_workers = max(1, torch.get_num_threads())
        if self.packed:
            for layer in self.model.layers:
                layer.self_attn.fused_qkv()  # once here, not racing in concurrent embed calls
        # Called with each batch's token tensor just before the forward pass.
        # A test seam: the OOM tests make it raise torch.cuda.OutOfMemoryError.
        self.before_forward: Callable[[torch.Tensor], None] | None = None

    @classmethod
    def load(cls, name_or_path: str, *, weights_dir=None, allow_download: bool = True,
             device: str | torch.device = "cpu", dtype: str | torch.dtype = "auto") -> "Engine":
        return cls(load_checkpoint(name_or_path, weights_dir=weights_dir, allow_download=allow_download),
                   device=device, dtype=dtype)

    @property
    def param_bytes(self) -> int:
        tensors = [*self.model.parameters(), *self.model.buffers()]  # parameters() skips the tied copy
        return sum(t.numel() * t.element_size() for t in tensors)

    def resolve_layers(self, repr_layers: Iterable[int]) -> list[int]:
        """Layer numbers as extract.py resolves them (-1 -> num_layers), deduplicated."""
        n = self.num_layers
        resolved = []
        for layer in repr_layers:
            if not -(n + 1) <= layer <= n:
                raise ValueError(f"layer {layer} does not exist: {self.name} has layers 0..{n} (or -{n + 1}..-1)")
            layer = (layer + n + 1) % (n + 1)
            if layer not in resolved:
                resolved.append(layer)
        return resolved

    def embed(
        self,
        records: list[tuple[str, str]],
        options: EmbedOptions | None = None,
        progress: Callable[[float, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        report_every: float = REPORT_EVERY,
    ) -> list[SequenceEmbedding]:
        """Embed (id, sequence) records; results in input order.

        Sequences are sorted by length and packed into batches whose padded
        size (sequences x longest, counting <cls> and <eos>) stays within
        ``toks_per_batch``; a sequence longer than that goes alone.
        ``progress(done, total)`` is called after every batch with the number
        of records finished, and while batches run, whenever ``report_every``
        seconds passed since the last call, with a fractional ``done`` that
        counts the running batches by their share of layers run (the
        values never decrease). ``should_stop`` is polled between layers
        (every ``STOP_POLL`` seconds while workers run batches). A batch that
        runs out of GPU memory is split in two and retried. Raises
        ValueError for characters outside the ESM-2 alphabet (naming record
        and position) and EmbeddingCancelled when ``should_stop()`` turns
        true.
        """
        options = options or EmbedOptions()
        if options.dtype != "auto" and DTYPES[options.dtype] != self.dtype:
            raise ValueError(f"this engine runs in {self.dtype}; load another engine for {options.dtype}")
        layers = self.resolve_layers(options.repr_layers)
        include = options.include
        if "contacts" in include and not self.has_contact_regression:
            raise WeightsMissing(
                f"Contact maps need the contact regression weights, which were not found for {self.name}: "
                f"{self._regression_hint}."
            )
        for record_id, seq in records:
            if not seq:
                raise ValueError(f"record {record_id!r}: the sequence is empty")
            alphabet.check_residues(seq, record_id)

        W, O = options.window, options.window_overlap
        results, pieces, starts = [], [], []
        # Identical sequences (synonymous variants in a mutational scan, a
        # FASTA with repeats) are embedded once and the result copied.
        first_with: dict[str, int] = {}
        twins: dict[int, list[int]] = {}
        for r, (record_id, seq) in enumerate(records):
            L = len(seq)
            windowed = L > W and options.long_sequences == "window"
            truncated = L > W and not windowed
            record_starts = window_starts(L, W, O) if windowed else [0]
            starts.append(record_starts)
            res = SequenceEmbedding(id=record_id, length=L, truncated=truncated, windows=len(record_starts),
                                    embedded_length=min(L, W) if truncated else L)
            if truncated:
                res.warnings.append(
                    f"{L} residues, longer than the {W} residues one pass can see: only residues 1-{W} "
                    "were embedded (choose windowed embedding to cover the whole sequence)."
                )
            results.append(res)
            if options.deduplicate and seq in first_with:
                twins[first_with[seq]].append(r)
                continue
            first_with[seq] = r
            twins[r] = []
            pieces += [_Piece(r, k, seq[s : s + W], whole=not windowed) for k, s in enumerate(record_starts)]

        budget = options.toks_per_batch or DEFAULT_TOKS_PER_BATCH.get(self.device.type, DEFAULT_TOKS_PER_BATCH["cpu"])
        batches = _pack(pieces, budget)
        pending = {r: len(starts[r]) for r in twins}  # pieces still to embed, per record embedded
        window_outputs: dict[int, list[dict]] = {}
        done = 0
        # For fractional progress: records a piece stands for (its record's
        # twins included, its windows sharing them), the pieces' weight
        # finished, and [weight, share of layers run] of each batch in flight.
        weight = {r: (1 + len(twins[r])) / len(starts[r]) for r in twins}
        weighted_done = 0.0
        flights: list[list[float]] = []
        last_report, reported = time.monotonic(), 0.0

        def report(value: float) -> None:
            nonlocal last_report, reported
            last_report, reported = time.monotonic(), max(reported, value)  # never backwards
            if progress is not None:
                progress(reported, len(records))

        def tick() -> None:
            """Between layers (on this thread) or while waiting for workers."""
            if should_stop is not None and should_stop():
                raise EmbeddingCancelled()
            if progress is not None and time.monotonic() - last_report >= report_every:
                running = sum(w * share for w, share in list(flights))
                report(min(float(len(records)), max(float(done), weighted_done + running)))

        def finish(batch: list[_Piece], outputs: list[dict]):
            nonlocal done, weighted_done
            for piece, out in zip(batch, outputs):
                r = piece.record
                weighted_done += weight[r]
                res = results[r]
                if res.windows == 1:
                    _fill_single(res, out, include)
                else:
                    window_outputs.setdefault(r, []).append(out | {"index": piece.index})
                pending[r] -= 1
                if pending[r] == 0:
                    if res.windows > 1:
                        parts = sorted(window_outputs.pop(r), key=lambda o: o["index"])
                        _fill_windowed(res, parts, starts[r], O, include)
                    for twin in twins[r]:
                        _copy_outputs(res, results[twin])
                    done += 1 + len(twins[r])
            report(done)

        def flight_of(batch: list[_Piece]) -> list[float]:
            return [sum(weight[p.record] for p in batch), 0.0]

        if self.device.type == "cpu" and self.cpu_workers > 1 and len(batches) > 1:
            self._run_on_cpu_workers(batches, layers, include, finish, should_stop, tick, flights, flight_of)
        else:
            with torch.inference_mode():
                for batch in batches:
                    if should_stop is not None and should_stop():
                        raise EmbeddingCancelled()
                    flight = flight_of(batch)
                    flights.append(flight)

                    def after_layer(n, depth, flight=flight):
                        flight[1] = n / depth
                        tick()

                    self._run(batch, layers, include, finish, after_layer)
                    flights.remove(flight)
        return results

    def _run_on_cpu_workers(self, batches, layers, include, finish, should_stop, tick, flights, flight_of):
        """Run batches on ``cpu_workers`` threads, one core each; ``finish``
        gets them in order, on this thread.

        Why: one batch per core kept both cores of a small machine busier
        than both cores on each batch in turn (about 5% faster, see
        bench/RESULTS.md); there is no barrier after each of a layer's
        operations, and the fused attention's uneven split over heads idles
        no one. torch releases the GIL inside every operation. At most one
        batch more than there are workers is handed out at a time. While
        it waits, this thread calls ``tick`` (progress, ``should_stop``)
        every STOP_POLL seconds; on a stop, or any error, the workers give
        up their batches at their next layer, so a cancel takes effect in
        about a layer's time, not a batch's.
        """
        stop = threading.Event()

        def work(batch, flight):
            def after_layer(n, depth):
                flight[1] = n / depth
                if stop.is_set():
                    raise EmbeddingCancelled()

            done = []
            with torch.inference_mode():  # grad mode is per thread
                self._run(batch, layers, include, lambda b, outputs: done.append((b, outputs)), after_layer)
            return done

        pending: deque = deque()

        def finish_oldest():
            future, flight = pending[0]
            while True:
                try:
                    outputs = future.result(timeout=STOP_POLL)
                    break
                except TimeoutError:
                    tick()
            pending.popleft()
            flights.remove(flight)
            for done in outputs:
                finish(*done)
            if pending and should_stop is not None and should_stop():
                raise EmbeddingCancelled()

        # torch.set_num_threads in a thread it did not start sets that thread's count only.
        with ThreadPoolExecutor(self.cpu_workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            try:
                for batch in batches:
                    if should_stop is not None and should_stop():
                        raise EmbeddingCancelled()
                    flight = flight_of(batch)
                    flights.append(flight)
                    pending.append((pool.submit(work, batch, flight), flight))
                    if len(pending) > self.cpu_workers:  # one queued, so no core waits for the next
                        finish_oldest()
                while pending:
                    finish_oldest()
            finally:
                stop.set()  # before the pool's exit waits for its threads
                for future, _ in pending:
                    future.cancel()

    def _run(self, batch: list[_Piece], layers, include, finish, after_layer=None):
        try:
            outputs = self._forward(batch, layers, include, after_layer)
        except torch.cuda.OutOfMemoryError:
            if len(batch) == 1:
                raise
            outputs = None  # retry outside the handler, so its frame releases the batch's tensors
        if outputs is None:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            half = len(batch) // 2
            self._run(batch[:half], layers, include, finish, after_layer)
            self._run(batch[half:], layers, include, finish, after_layer)
            return
        finish(batch, outputs)

    def _forward(self, batch: list[_Piece], layers: list[int], include: frozenset,
                 after_layer: Callable[[int, int], None] | None = None) -> list[dict]:
        width = max(len(p.residues) for p in batch) + 2
        tokens = torch.full((len(batch), width), alphabet.PAD, dtype=torch.long)
        for b, piece in enumerate(batch):
            tokens[b, : len(piece.residues) + 2] = torch.tensor(alphabet.tokenize(piece.residues))
        if self.before_forward is not None:
            self.before_forward(tokens)

        lengths = [len(p.residues) for p in batch]
        contacts = None
        if self.packed and "contacts" not in include:
            # Sequences end to end, no padding: rows of one [N, E] tensor per layer.
            token_counts = [n + 2 for n in lengths]
            flat = tokens[tokens.ne(alphabet.PAD)].to(self.device)
            reps = self.model.forward_packed(flat, token_counts, layers, after_layer)
            starts = np.cumsum([0] + token_counts)[:-1].tolist()
        else:
            out = self.model(tokens.to(self.device), repr_layers=layers, need_contacts="contacts" in include,
                             after_layer=after_layer)
            # [B, T, E] -> [B * T, E]: sequence b's rows start at b * T.
            reps = {layer: t.reshape(-1, t.shape[-1]) for layer, t in out["representations"].items()}
            starts = [b * width for b in range(len(batch))]
            contacts = out.get("contacts")

        # One device-to-host copy per output and layer, not one per sequence.
        # Rows leave the device only when used (per_tok, or stitching
        # windows); a whole sequence's mean is reduced on the device, per
        # sequence as extract.py does, in float32 (the same in float32, and
        # better than averaging in bf16/fp16).
        need_rows = "per_tok" in include or ("mean" in include and not all(p.whole for p in batch))
        host_rows = {layer: _numpy(reps[layer]) for layer in layers} if need_rows else {}
        host_means = {}
        if "mean" in include:
            host_means = {layer: _numpy(torch.stack([reps[layer][s + 1 : s + n + 1].float().mean(0)
                                                     for s, n in zip(starts, lengths)]))
                          for layer in layers}
        host_bos = {layer: _numpy(reps[layer][starts]) for layer in layers} if "bos" in include else {}
        host_contacts = _numpy(contacts) if contacts is not None else None

        outputs = []  # copies, like extract.py's clone(): no result pins the whole batch
        for b, (piece, s, n) in enumerate(zip(batch, starts, lengths)):
            o: dict = {}
            if host_rows:
                o["rows"] = {layer: rows[s + 1 : s + n + 1].copy() for layer, rows in host_rows.items()}
            if piece.whole and host_means:
                o["mean"] = {layer: means[b].copy() for layer, means in host_means.items()}
            if host_bos and piece.index == 0:
                o["bos"] = {layer: bos[b].copy() for layer, bos in host_bos.items()}
            if host_contacts is not None:
                o["contacts"] = host_contacts[b, :n, :n].copy()
            outputs.append(o)
        return outputs


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.float().cpu().numpy()


def _pack(pieces: list[_Piece], budget: int) -> list[list[_Piece]]:
    """Greedy length-sorted batches with batch size x longest tokens <= budget."""
    batches: list[list[_Piece]] = []
    current: list[_Piece] = []
    for piece in sorted(pieces, key=lambda p: len(p.residues), reverse=True):
        longest = len(current[0].residues) + 2 if current else len(piece.residues) + 2
        if current and longest * (len(current) + 1) > budget:
            batches.append(current)
            current = []
        current.append(piece)
    if current:
        batches.append(current)
    return batches


def _fill_single(res: SequenceEmbedding, out: dict, include) -> None:
    if "mean" in include:
        res.mean = out["mean"]
    if "per_tok" in include:
        res.per_tok = out["rows"]
    if "bos" in include:
        res.bos = out["bos"]
    if "contacts" in include:
        res.contacts = out["contacts"]


def _copy_outputs(source: SequenceEmbedding, target: SequenceEmbedding) -> None:
    target.mean = {k: v.copy() for k, v in source.mean.items()}
    target.per_tok = {k: v.copy() for k, v in source.per_tok.items()}
    target.bos = {k: v.copy() for k, v in source.bos.items()}
    target.contacts = None if source.contacts is None else source.contacts.copy()
    target.warnings = list(source.warnings)


def _fill_windowed(res: SequenceEmbedding, parts: list[dict], starts: list[int], overlap: int, include) -> None:
    L = res.length
    if "mean" in include or "per_tok" in include:
        stitched = {
            layer: stitch_windows([p["rows"][layer] for p in parts], starts, overlap, L)
            for layer in parts[0]["rows"]
        }
        if "per_tok" in include:
            res.per_tok = stitched
        if "mean" in include:
            res.mean = {layer: rows.mean(0, dtype=np.float64).astype(np.float32) for layer, rows in stitched.items()}
    if "bos" in include:
        res.bos = parts[0]["bos"]
    if "contacts" in include:
        res.contacts = stitch_contacts([p["contacts"] for p in parts], starts, L)
        unseen = int(np.isnan(res.contacts).sum())
        if unseen:
            res.warnings.append(
                f"{unseen} of {L * L} residue pairs are never in the same {len(parts[0]['contacts'])}-residue "
                "window; their contact probabilities are NaN."
            )
