"""Throughput of our ESM-2 engine against fair-esm's extract.py, same weights.

    .venv/bin/python bench/esm_throughput.py [--model esm2_t12_35M_UR50D]
        [--device cpu|cuda] [--dtype auto|float32|bfloat16|float16]
        [--toks-per-batch N] [--slice 100] [--dedup] [--threads N]
        [--repeat N] [--weights-dir DIR] [--quick]

Both sides embed the same sequences (bench/data/NC_000932.fasta plus the first
--slice records of bench/data/P62593_first100.fasta, the first 100 records of
fair-esm's P62593.fasta) for the last layer's per-residue and mean
representations. The baseline is extract.py's loop: FastaBatchedDataset,
get_batch_indices(4096, extra_toks_per_seq=1), the batch converter with
truncation at 1022, a full forward (logits included), per-sequence slices and
means. Both sides run in the same dtype (--dtype; auto is float32 on CPU, bf16
or fp16 on GPU): extract.py's float32 against a bf16 engine would measure the
precision, not the code. Each side first runs once, untimed, on a few
sequences (lazy initialisation, allocator, kernels); then the timed runs
alternate, the side that goes first swapping every round. Without
--weights-dir the weights are random, in the real architecture, written as an
official checkpoint to a temporary directory; speed does not depend on the
values. Throughput counts embedded residues (at most 1022 per sequence) per
second of wall time. The engine embeds every record (no deduplication) unless
--dedup is given. --quick runs the smallest model on 10 + 10 records, to check
that the script works. The last line printed is ``ratio X.XX``: engine
throughput over baseline throughput.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analysis.esm.compute import ESM2_MODELS, EmbedOptions, Engine, fair_esm_model, load_checkpoint  # noqa: E402
from tests.esm_fixtures import write_tiny_esm2  # noqa: E402

DATA = ROOT / "bench" / "data"  # provenance in bench/data/SOURCES.md
NC_000932 = DATA / "NC_000932.fasta"
P62593 = DATA / "P62593_first100.fasta"
INPUTS = (NC_000932, P62593)
TRUNCATION = 1022
WARMUP_RECORDS = 4


def read_fasta(path: Path) -> list[tuple[str, str]]:
    from esm.data import FastaBatchedDataset

    ds = FastaBatchedDataset.from_file(path)
    return list(zip(ds.sequence_labels, ds.sequence_strs))


def input_records(n_slice: int, n_nc: int | None = None) -> list[tuple[str, str]]:
    p62593 = read_fasta(P62593)
    if n_slice > len(p62593):
        raise SystemExit(f"--slice {n_slice}: {P62593.name} holds the first {len(p62593)} records only")
    return read_fasta(NC_000932)[:n_nc] + p62593[:n_slice]


def write_fasta(path: Path, records: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f">{label}\n{seq}\n" for label, seq in records))
    return path


def baseline(model, alphabet, fasta: Path, device: torch.device) -> dict[str, dict]:
    """fair-esm's scripts/extract.py, minus writing files (results kept in memory)."""
    from esm.data import FastaBatchedDataset

    model = model.to(device)
    dataset = FastaBatchedDataset.from_file(fasta)
    batches = dataset.get_batch_indices(4096, extra_toks_per_seq=1)
    # extract.py passes num_workers=2; on a 2-core machine worker processes
    # only compete with the forward pass for the same cores, so none here.
    loader = torch.utils.data.DataLoader(
        dataset, collate_fn=alphabet.get_batch_converter(TRUNCATION), batch_sampler=batches)
    repr_layers = [(-1 + model.num_layers + 1) % (model.num_layers + 1)]
    results = {}
    with torch.no_grad():
        for labels, strs, toks in loader:
            toks = toks.to(device=device, non_blocking=True)
            out = model(toks, repr_layers=repr_layers, return_contacts=False)
            _ = out["logits"].to(device="cpu")
            representations = {layer: t.to(device="cpu") for layer, t in out["representations"].items()}
            for i, label in enumerate(labels):
                truncate_len = min(TRUNCATION, len(strs[i]))
                results[label] = {
                    "representations": {layer: t[i, 1 : truncate_len + 1].clone()
                                        for layer, t in representations.items()},
                    "mean_representations": {layer: t[i, 1 : truncate_len + 1].mean(0).clone()
                                             for layer, t in representations.items()},
                }
    return results


def timed(fn, device: torch.device):
    """(result, wall seconds, process CPU seconds). CPU time shows how much
    of the wall time other processes on the machine took."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - start, time.process_time() - cpu


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="esm2_t12_35M_UR50D", choices=sorted(ESM2_MODELS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                        help="both sides' dtype (auto: the engine's choice, float32 on CPU, bf16 or fp16 on GPU)")
    parser.add_argument("--toks-per-batch", type=int, default=None,
                        help="the engine's token budget (default: its own, 2048 on CPU, 16384 on GPU)")
    parser.add_argument("--slice", type=int, default=100, help="records taken from the start of P62593.fasta")
    parser.add_argument("--dedup", action="store_true",
                        help="let the engine embed identical sequences once (its default in the portal); "
                             "off here so the ratio measures compute, not the input's repeats")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for both sides")
    parser.add_argument("--repeat", type=int, default=1,
                        help="alternate baseline and engine this many times and keep each side's fastest run")
    parser.add_argument("--weights-dir", type=Path, default=None,
                        help="use real weights from here (or torch hub's cache) instead of random ones")
    parser.add_argument("--quick", action="store_true",
                        help="esm2_t6_8M_UR50D on the first 10 NC_000932 and 10 P62593 records, one round")
    args = parser.parse_args(argv)
    n_nc = None
    if args.quick:
        args.model, args.slice, args.repeat, n_nc = "esm2_t6_8M_UR50D", min(args.slice, 10), 1, 10
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        records = input_records(args.slice, n_nc)
        fasta = write_fasta(tmp / "bench.fasta", records)
        warm_fasta = write_fasta(tmp / "warmup.fasta", records[:WARMUP_RECORDS])
        if args.weights_dir:
            ckpt = load_checkpoint(args.model, weights_dir=args.weights_dir, allow_download=False)
            weights = f"real weights from {ckpt.path}"
        else:
            spec = ESM2_MODELS[args.model]
            path = write_tiny_esm2(tmp, name=args.model, num_layers=spec.num_layers,
                                   embed_dim=spec.embed_dim, heads=spec.attention_heads)
            ckpt = load_checkpoint(str(path))
            weights = "random weights, official layout"
        ref_model, ref_alphabet = fair_esm_model(ckpt)
        engine = Engine(ckpt, device=device, dtype=args.dtype)
        del ckpt
        # The same precision on both sides: the baseline runs in the engine's dtype.
        ref_model = ref_model.to(device=device, dtype=engine.dtype)
        dtype_name = str(engine.dtype).removeprefix("torch.")

        residues = sum(min(len(s), TRUNCATION) for _, s in records)
        distinct = len({s for _, s in records})
        nc_label = "NC_000932" if n_nc is None else f"first {n_nc} of NC_000932"
        print(f"{args.model} ({weights}) on {device}, both sides {dtype_name}: {len(records)} sequences "
              f"({distinct} distinct), {residues} residues ({nc_label} + first {args.slice} of P62593)")
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_name()}, "
              f"load average {load_average()}")

        options = EmbedOptions(repr_layers=[-1], include=frozenset({"mean", "per_tok"}),
                               toks_per_batch=args.toks_per_batch, deduplicate=args.dedup)
        sides = {
            "baseline": lambda path, recs: baseline(ref_model, ref_alphabet, path, device),
            "engine": lambda path, recs: engine.embed(recs, options),
        }
        # Warm-up, untimed: first calls pay for lazy initialisation and allocation.
        for run_side in sides.values():
            timed(partial(run_side, warm_fasta, records[:WARMUP_RECORDS]), device)
        runs = {"baseline": [], "engine": []}
        out = {}
        for i in range(args.repeat):
            # Alternate which side goes first, so drift in the machine's speed
            # does not always favour the same one.
            for name in (("baseline", "engine") if i % 2 == 0 else ("engine", "baseline")):
                out[name], *t = timed(partial(sides[name], fasta, records), device)
                runs[name].append(t)
            if args.repeat > 1:
                print(f"run {i + 1}: baseline {runs['baseline'][-1][0]:.1f} s, engine {runs['engine'][-1][0]:.1f} s "
                      f"(load average {load_average()})")
        ref, ours = out["baseline"], out["engine"]
        (t_ref, c_ref), (t_ours, c_ours) = min(runs["baseline"]), min(runs["engine"])
        baseline_label = f"baseline (fair-esm extract.py, {dtype_name}):"
        print(f"{baseline_label:41}{t_ref:7.1f} s wall {c_ref:7.1f} s CPU {residues / t_ref:8.0f} residues/s")
        engine_label = f"engine   ({dtype_name}{', dedup' if args.dedup else ''}):"
        print(f"{engine_label:41}{t_ours:7.1f} s wall {c_ours:7.1f} s CPU {residues / t_ours:8.0f} residues/s")
        print(f"load average after: {load_average()}")

        layer = engine.num_layers
        diff = max(float((torch.from_numpy(r.mean[layer]) - ref[r.id]["mean_representations"][layer].float())
                          .abs().max()) for r in ours)
        print(f"max |mean difference| engine vs baseline: {diff:.2e}")
        if args.repeat > 1:
            # Back-to-back pairs share the machine's state of the moment; on a
            # machine whose speed drifts they say more than the two minima.
            pairs = sorted(b[0] / e[0] for b, e in zip(runs["baseline"], runs["engine"]))
            print("ratio per pair: " + ", ".join(f"{r:.2f}" for r in pairs)
                  + f" (median {statistics.median(pairs):.2f})")
        print(f"CPU-time ratio {c_ref / c_ours:.2f}")
        print(f"ratio {t_ref / t_ours:.2f}")


if __name__ == "__main__":
    main()
