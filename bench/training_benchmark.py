"""Training benchmark: our D-MPNN (training.compute.families.dmpnn, chemprop's modules driven by
our epoch loop) against the `chemprop train` command line, same data, same split, same
hyperparameters; and the test metric of each, mean ± sd over seeds, beside the published figures.

Data: the built-in MoleculeNet sets in `training/data/` (provenance in training/data/SOURCES.md),
parsed as the portal parses an upload (canonical SMILES, duplicates merged). Split: the dataset's
MoleculeNet split (`BuiltinDataset.split`) by `training.compute.splits.make_split`, 0.8/0.1/0.1,
seed = the run's seed; `--split scaffold` overrides it. Both sides get the very same rows, as one
CSV with a `split` column (`chemprop train --splits-column`).

Hyperparameters: chemprop's CLI defaults on both sides (depth 3, hidden 300, one FFN layer of 300,
no dropout, norm aggregation, batch 64, Noam schedule 1e-4 -> 1e-3 -> 1e-4 with 2 warm-up epochs),
`--epochs` epochs (50), no early stopping on either side (the CLI's default); both keep the epoch
best on validation (chemprop: the validation loss; ours: validation RMSE / ROC-AUC, the same epoch
for one regression target). Seeds: chemprop's --pytorch-seed and ours are the run's seed; the
two do not draw the same initial weights, so the metrics agree within noise, not exactly.

Timing: each side is one fresh process (interpreter start, imports, featurisation, training,
test predictions), so the comparison is what a user waits for. One untimed warm-up run of each
side on `--quick`-sized data first (file cache, bytecode); then per (dataset, seed) the two run
back to back, the one going first swapping every run. Both see the same threads
(`--threads`, default all the cores torch sees) in float32 on CPU.

    .venv/bin/python bench/training_benchmark.py                         # ESOL, 3 seeds, 50 epochs
    .venv/bin/python bench/training_benchmark.py --datasets esol freesolv lipophilicity bbbp tox21
    .venv/bin/python bench/training_benchmark.py --families dmpnn attentivefp   # adds AttentiveFP rows (ours only)
    .venv/bin/python bench/training_benchmark.py --quick                 # 120 ESOL rows, 3 epochs, 1 seed

The last line printed is `ratio X.XX`: chemprop's total training wall time over ours (above 1:
ours is faster; the issue's target, within 10% of chemprop, is a ratio of at least 0.91).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.compute.builtin import BUILTIN_DATASETS, get_builtin  # noqa: E402

INPUTS = tuple(str(d.path) for d in BUILTIN_DATASETS)  # provenance in training/data/SOURCES.md
CHEMPROP = Path(sys.executable).with_name("chemprop")

# The figures the issue names: (source, value) for the dataset's MoleculeNet split.
PUBLISHED = {
    "esol": [("Chemprop D-MPNN (Yang et al. 2019)", 0.555), ("MoleculeNet best (Wu et al. 2018)", 0.58),
             ("AttentiveFP (Xiong et al. 2020)", 0.503)],
    "freesolv": [("Chemprop D-MPNN (Yang et al. 2019)", 1.075)],
    "lipophilicity": [("Chemprop D-MPNN (Yang et al. 2019)", 0.555)],
    "bbbp": [("Chemprop D-MPNN (Yang et al. 2019)", 0.737)],
    "tox21": [("Chemprop D-MPNN (Yang et al. 2019)", 0.851)],
}
# chemprop's CLI defaults, in our hyperparameter names
DEFAULTS = {"depth": 3, "message_hidden_dim": 300, "ffn_hidden_dim": 300, "ffn_num_layers": 1, "dropout": 0.0,
            "aggregation": "norm", "batch_norm": False, "batch_size": 64, "warmup_epochs": 2,
            "init_lr": 1e-4, "max_lr": 1e-3, "final_lr": 1e-4}
QUICK_ROWS = 120


def chemprop_command(csv_path: Path, targets: list[str], task: str, epochs: int, seed: int, out: Path) -> list[str]:
    h = DEFAULTS
    return [str(CHEMPROP), "train", "--data-path", str(csv_path), "--smiles-columns", "smiles",
            "--target-columns", *targets, "--splits-column", "split", "--task-type", task,
            "--epochs", str(epochs), "--batch-size", str(h["batch_size"]), "--depth", str(h["depth"]),
            "--message-hidden-dim", str(h["message_hidden_dim"]), "--ffn-hidden-dim", str(h["ffn_hidden_dim"]),
            "--ffn-num-layers", str(h["ffn_num_layers"]), "--dropout", str(h["dropout"]),
            "--aggregation", h["aggregation"], "--warmup-epochs", str(h["warmup_epochs"]),
            "--init-lr", str(h["init_lr"]), "--max-lr", str(h["max_lr"]), "--final-lr", str(h["final_lr"]),
            "--pytorch-seed", str(seed), "--data-seed", str(seed), "--accelerator", "cpu", "--devices", "1",
            "--num-workers", "0", "--save-dir", str(out)]


def ours_command(family: str, csv_path: Path, targets: list[str], task: str, epochs: int, seed: int,
                 out: Path) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--run-ours", family, str(csv_path),
            json.dumps(targets), task, str(epochs), str(seed), str(out)]


def run_ours(family: str, csv_path: str, targets_json: str, task: str, epochs: str, seed: str, out: str) -> None:
    """The 'ours' side, in its own process: train on the CSV's train/val rows, predict its test rows."""
    import numpy as np

    from training.compute.families import FitCallbacks, get_family

    targets = json.loads(targets_json)
    rows = list(csv.DictReader(open(csv_path, newline="")))
    sets = {name: [r for r in rows if r["split"] == name] for name in ("train", "val", "test")}
    labels = {name: np.array([[float(r[t]) if r[t] != "" else np.nan for t in targets] for r in part])
              for name, part in sets.items()}
    hparams = {"max_epochs": int(epochs), "patience": int(epochs)}
    if family == "dmpnn":
        hparams.update(DEFAULTS)
    model = get_family(family)(hparams, [task] * len(targets), seed=int(seed))
    model.fit([r["smiles"] for r in sets["train"]], labels["train"], [r["smiles"] for r in sets["val"]],
              labels["val"], FitCallbacks())
    pred = model.predict([r["smiles"] for r in sets["test"]])
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["smiles", *targets])
        for r, p in zip(sets["test"], pred):
            writer.writerow([r["smiles"], *map(repr, p.tolist())])


def write_split_csv(table, split, path: Path) -> None:
    names = {}
    for name in ("train", "val", "test"):
        for i in getattr(split, name):
            names[i] = name
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["smiles", *table.targets, "split"])
        for i, smi in enumerate(table.smiles):
            writer.writerow([smi, *["" if v != v else repr(float(v)) for v in table.y[i]], names[i]])


def test_metric(table, split, predictions: Path) -> float | None:
    import numpy as np

    from training.compute.metrics import PRIMARY, score

    with open(predictions, newline="") as f:
        rows = list(csv.DictReader(f))
    test = split.test
    if [r["smiles"] for r in rows] != [table.smiles[i] for i in test]:
        raise SystemExit(f"{predictions}: the test predictions are not the test rows in order")
    pred = np.array([[float(r[t]) for t in table.targets] for r in rows])
    result = score(table.y[test], pred, table.tasks, table.targets)
    return result["mean"].get(PRIMARY[table.tasks[0]])


def timed(command: list[str], env: dict) -> float:
    began = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} ... failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds


def load_table(name: str, quick: bool):
    table = get_builtin(name).load()
    return table.subset(range(min(QUICK_ROWS, len(table)))) if quick else table


def machine() -> str:
    import torch

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} threads")


def summary(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--run-ours"]:
        run_ours(*argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"first {QUICK_ROWS} ESOL rows, 3 epochs, one seed: checks the script works")
    parser.add_argument("--datasets", nargs="+", default=["esol"], choices=[d.name for d in BUILTIN_DATASETS])
    parser.add_argument("--families", nargs="+", default=["dmpnn"], choices=["dmpnn", "attentivefp"],
                        help="dmpnn is timed against chemprop; attentivefp adds metric rows")
    parser.add_argument("--split", choices=["random", "scaffold"], help="instead of each dataset's MoleculeNet split")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--threads", type=int, help="torch threads on both sides (default: torch's)")
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets, args.seeds, args.epochs = ["esol"], 1, 3
    if args.epochs <= DEFAULTS["warmup_epochs"]:
        parser.error(f"--epochs must be above the {DEFAULTS['warmup_epochs']} warm-up epochs (chemprop refuses fewer)")

    from training.compute.splits import make_split

    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONHASHSEED="0")
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="training-bench-") as tmp:
        tmp = Path(tmp)
        # warm-up, untimed: both sides once on a small set
        warm = load_table("esol", quick=True)
        warm_split = make_split(warm, "random", seed=0)
        write_split_csv(warm, warm_split, tmp / "warm.csv")
        if "dmpnn" in args.families:
            timed(chemprop_command(tmp / "warm.csv", warm.targets, warm.tasks[0], 3, 0, tmp / "warm-cp"), env)
        for family in args.families:
            timed(ours_command(family, tmp / "warm.csv", warm.targets, warm.tasks[0], 3, 0, tmp / "warm.out"), env)

        totals = {"ours": 0.0, "chemprop": 0.0}
        rows = []
        run = 0
        for name in args.datasets:
            table = load_table(name, args.quick)
            task = table.tasks[0]
            method = args.split or get_builtin(name).split
            results: dict[str, list] = {}
            for seed in range(args.seeds):
                split = make_split(table, method, seed=seed)
                data = tmp / f"{name}-{seed}.csv"
                write_split_csv(table, split, data)
                if "dmpnn" in args.families:
                    sides = [("chemprop", chemprop_command(data, table.targets, task, args.epochs, seed,
                                                           tmp / f"cp-{name}-{seed}")),
                             ("ours", ours_command("dmpnn", data, table.targets, task, args.epochs, seed,
                                                   tmp / f"ours-{name}-{seed}.csv"))]
                    for side, command in sides if run % 2 == 0 else sides[::-1]:
                        seconds = timed(command, env)
                        totals[side] += seconds
                        results.setdefault(f"{side} seconds", []).append(seconds)
                    run += 1
                    results.setdefault("D-MPNN (ours)", []).append(
                        test_metric(table, split, tmp / f"ours-{name}-{seed}.csv"))
                    preds = tmp / f"cp-{name}-{seed}" / "model_0" / "test_predictions.csv"
                    results.setdefault("chemprop train CLI", []).append(test_metric(table, split, preds))
                if "attentivefp" in args.families:
                    out = tmp / f"afp-{name}-{seed}.csv"
                    results.setdefault("attentivefp seconds", []).append(
                        timed(ours_command("attentivefp", data, table.targets, task, args.epochs, seed, out), env))
                    results.setdefault("AttentiveFP (ours)", []).append(test_metric(table, split, out))
            metric = "RMSE" if task == "regression" else "ROC-AUC (mean over tasks)"
            rows.append((name, method, len(table), metric, results))

    print(f"\n{args.seeds} seed(s), {args.epochs} epochs, test metric mean ± sd over seeds")
    for name, method, n, metric, results in rows:
        print(f"\n{name} ({n} molecules, {method} split 0.8/0.1/0.1), test {metric}:")
        for label in ("D-MPNN (ours)", "chemprop train CLI", "AttentiveFP (ours)"):
            if label in results:
                print(f"  {label:<47} {summary(results[label])}")
        for source, value in PUBLISHED.get(name, []):
            print(f"  {'published: ' + source:<47} {value:.3f}")
        for side in ("ours", "chemprop", "attentivefp"):
            if f"{side} seconds" in results:
                print(f"  wall seconds per run, {side}: {summary(results[side + ' seconds'])}")
    if not totals["ours"]:
        print("ratio n/a (no D-MPNN run to time: add dmpnn to --families)")
        return
    print(f"\ntotal wall seconds: ours {totals['ours']:.1f}, chemprop train {totals['chemprop']:.1f}")
    print(f"ratio {totals['chemprop'] / totals['ours']:.2f}")


if __name__ == "__main__":
    main()
