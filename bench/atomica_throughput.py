"""ATOMICA throughput: our batched engine against batch size 1, same records.

    python bench/atomica_throughput.py [--config C --weights W] [--records R.jsonl.gz]
        [--batch-size 8] [--device cpu|cuda] [--repeat 1] [--quick]

Defaults: the reference checkpoint and the ten reference complexes in
tests/fixtures/atomica (random weights of the released architecture: speed
does not depend on the values; provenance in tests/fixtures/atomica/SOURCES.md).
Both sides are the same model object, so the same weights and dtype; only the
batch size differs. Each side first runs once, untimed, on the first
--batch-size complexes; then the timed runs alternate, the side that goes
first swapping every round, and each side keeps its fastest run. Prints
complexes per second for both, checks that both give the same embeddings
(batch independence), and ends with `ratio X.XX` (batched over batch size 1).
--quick: the first 2 complexes, batch size 2, one round.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FIX = ROOT / "tests" / "fixtures" / "atomica"
INPUTS = (FIX / "model" / "config.json", FIX / "model" / "weights.pt", FIX / "inputs" / "shared.jsonl.gz")

from analysis.atomica.compute.checkpoints import load_model  # noqa: E402
from analysis.atomica.compute.embed import embed_records  # noqa: E402
from analysis.atomica.compute.records import read_records  # noqa: E402


def timed(model, records, batch_size, device):
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = embed_records(model, records, batch_size=batch_size)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=FIX / "model" / "config.json")
    parser.add_argument("--weights", type=Path, default=FIX / "model" / "weights.pt")
    parser.add_argument("--records", type=Path, default=FIX / "inputs" / "shared.jsonl.gz")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeat", type=int, default=1, help="alternating rounds; each side keeps its fastest")
    parser.add_argument("--quick", action="store_true", help="first 2 complexes, batch size 2, one round")
    args = parser.parse_args(argv)

    model = load_model(args.config, args.weights).to(args.device)
    records = read_records(args.records)
    if args.quick:
        records, args.batch_size, args.repeat = records[:2], 2, 1
    atoms = sum(r.num_atoms for r in records)
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    print(f"{len(records)} complexes, {atoms} atoms, device {args.device}, both sides {dtype} (one model), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    sizes = {"single": 1, "batched": args.batch_size}
    for size in sizes.values():  # warm-up, untimed: lazy initialisation, allocator, kernels
        embed_records(model, records[:args.batch_size], batch_size=size)
    times = {"single": [], "batched": []}
    out = {}
    for i in range(args.repeat):
        for name in (("single", "batched") if i % 2 == 0 else ("batched", "single")):
            seconds, out[name] = timed(model, records, sizes[name], args.device)
            times[name].append(seconds)
    if args.repeat > 1:
        pairs = ", ".join(f"{s / b:.2f}" for s, b in zip(times["single"], times["batched"]))
        print(f"ratio per round: {pairs}")
    single_s, batched_s = min(times["single"]), min(times["batched"])
    single, batched = out["single"], out["batched"]
    worst = max(float(np.abs(a.atom_embedding - b.atom_embedding).max()) for a, b in zip(single, batched))
    print(f"batch size 1:  {len(records) / single_s:8.3f} complexes/s ({single_s:.2f} s)")
    print(f"batch size {args.batch_size}:  {len(records) / batched_s:8.3f} complexes/s ({batched_s:.2f} s)")
    print(f"max abs difference batched vs batch size 1: {worst:.2e}")
    print(f"ratio {single_s / batched_s:.2f}")


if __name__ == "__main__":
    main()
