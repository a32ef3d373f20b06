"""ATOMICA throughput: our batched engine against batch size 1, same records.

    python bench/atomica_throughput.py [--config C --weights W] [--records R.jsonl.gz]
        [--batch-size 8] [--device cpu|cuda] [--repeat 1]

Defaults: the reference checkpoint and the ten reference complexes in
tests/fixtures/atomica (random weights of the released architecture: speed
does not depend on the values). Prints complexes per second for both, checks
that both give the same embeddings (batch independence), and ends with
`ratio X.XX` (batched over batch size 1).
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

from analysis.atomica.compute.checkpoints import load_model  # noqa: E402
from analysis.atomica.compute.embed import embed_records  # noqa: E402
from analysis.atomica.compute.records import read_records  # noqa: E402


def timed(model, records, batch_size, device, repeat):
    best = float("inf")
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = embed_records(model, records, batch_size=batch_size)
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=FIX / "model" / "config.json")
    parser.add_argument("--weights", type=Path, default=FIX / "model" / "weights.pt")
    parser.add_argument("--records", type=Path, default=FIX / "inputs" / "shared.jsonl.gz")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    model = load_model(args.config, args.weights).to(args.device)
    records = read_records(args.records)
    atoms = sum(r.num_atoms for r in records)
    print(f"{len(records)} complexes, {atoms} atoms, device {args.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    embed_records(model, records[:1])  # warm-up: lazy initialisation, kernels
    single_s, single = timed(model, records, 1, args.device, args.repeat)
    batched_s, batched = timed(model, records, args.batch_size, args.device, args.repeat)
    worst = max(float(np.abs(a.atom_embedding - b.atom_embedding).max()) for a, b in zip(single, batched))
    print(f"batch size 1:  {len(records) / single_s:8.3f} complexes/s ({single_s:.2f} s)")
    print(f"batch size {args.batch_size}:  {len(records) / batched_s:8.3f} complexes/s ({batched_s:.2f} s)")
    print(f"max abs difference batched vs batch size 1: {worst:.2e}")
    print(f"ratio {single_s / batched_s:.2f}")


if __name__ == "__main__":
    main()
