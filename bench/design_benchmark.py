"""Goal-directed generation benchmark: our graph GA (design.compute.generate) next to
the `mol-ga` package's graph GA, same tasks, same start, same budget.

Tasks are GuacaMol goal-directed tasks (Brown et al., J. Chem. Inf. Model.
2019, 59, 1096), re-implemented here from the paper's definitions with RDKit
only:
  * rediscovery of celecoxib, troglitazone, thiothixene: Tanimoto similarity
    of ECFP4 (Morgan radius 2, count vectors) to the target; task score =
    best molecule found (GuacaMol top-1);
  * fexofenadine MPO: geometric mean of atom-pair similarity to fexofenadine
    (thresholded at 0.8), TPSA (max-Gaussian, mu 90, sigma 10) and cLogP
    (min-Gaussian, mu 4, sigma 2); task score = mean of top-1/10/100.

Budget: each method may score at most --budget distinct molecules per task
(the starting population included). Start: --start molecules sampled with a
fixed seed from the ESOL set (tests/fixtures/design/delaney-processed.csv).

    .venv/bin/python bench/design_benchmark.py [--budget 3000] [--repeats 2] [--quick]

Both GAs score molecules with the same RDKit functions in the same Python
floats, so precision is the same on both sides. Before the timed runs each
method runs once, untimed, on a small budget (imports, RDKit's first calls);
then for each task and seed the two run back to back, the one that goes first
swapping every run. --quick: budget 100, one seed, 50 starting molecules, to
check that the script works.

The last line printed is `ratio X.XX`: our mean task score over mol-ga's.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import random
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from rdkit import Chem, DataStructs, RDLogger  # noqa: E402
from rdkit.Chem import Crippen, rdFingerprintGenerator, rdMolDescriptors  # noqa: E402

from design.compute.generate import Objective, run_ga  # noqa: E402

RDLogger.DisableLog("rdApp.*")

ESOL = os.path.join(ROOT, "tests", "fixtures", "design", "delaney-processed.csv")
INPUTS = (ESOL,)  # provenance in tests/fixtures/design/SOURCES.md
WARMUP_BUDGET = 50

TARGETS = {
    "celecoxib": "CC1=CC=C(C=C1)C1=CC(=NN1C1=CC=C(C=C1)S(N)(=O)=O)C(F)(F)F",
    "troglitazone": "Cc1c(C)c2OC(C)(COc3ccc(CC4SC(=O)NC4=O)cc3)CCc2c(C)c1O",
    "thiothixene": "CN(C)S(=O)(=O)c1ccc2Sc3ccccc3C(=CCCN3CCN(C)CC3)c2c1",
    "fexofenadine": "CC(C)(C(=O)O)c1ccc(cc1)C(O)CCCN1CCC(CC1)C(O)(c1ccccc1)c1ccccc1",
}


_MORGAN2 = rdFingerprintGenerator.GetMorganGenerator(radius=2)
# GuacaMol's "AP" fingerprint: hashed atom pairs up to 10 bonds apart.
_ATOM_PAIR = rdFingerprintGenerator.GetAtomPairGenerator(maxDistance=10)


def _ecfp4(mol):
    return _MORGAN2.GetSparseCountFingerprint(mol)


def rediscovery(name):
    target = _ecfp4(Chem.MolFromSmiles(TARGETS[name]))

    def score(mol):
        return DataStructs.TanimotoSimilarity(_ecfp4(mol), target)

    return score


def _max_gaussian(x, mu, sigma):
    return 1.0 if x >= mu else math.exp(-0.5 * ((x - mu) / sigma) ** 2)


def _min_gaussian(x, mu, sigma):
    return 1.0 if x <= mu else math.exp(-0.5 * ((x - mu) / sigma) ** 2)


def fexofenadine_mpo():
    def ap(mol):
        return _ATOM_PAIR.GetCountFingerprint(mol)

    target = ap(Chem.MolFromSmiles(TARGETS["fexofenadine"]))

    def score(mol):
        sim = min(DataStructs.TanimotoSimilarity(ap(mol), target), 0.8) / 0.8
        parts = [sim, _max_gaussian(rdMolDescriptors.CalcTPSA(mol), 90, 10),
                 _min_gaussian(Crippen.MolLogP(mol), 4, 2)]
        return math.prod(parts) ** (1 / 3)

    return score


TASKS = {
    "celecoxib_rediscovery": (lambda: rediscovery("celecoxib"), (1,)),
    "troglitazone_rediscovery": (lambda: rediscovery("troglitazone"), (1,)),
    "thiothixene_rediscovery": (lambda: rediscovery("thiothixene"), (1,)),
    "fexofenadine_mpo": (fexofenadine_mpo, (1, 10, 100)),
}


def task_score(values, tops):
    ordered = sorted(values, reverse=True)
    return statistics.mean(statistics.mean(ordered[:k]) if ordered else 0.0 for k in tops)


def start_population(n, seed=0):
    with open(ESOL, encoding="utf-8") as handle:
        smiles = [row["smiles"].strip() for row in csv.DictReader(handle)]
    return random.Random(seed).sample(smiles, n)


def run_ours(fn, start, budget, seed, population, offspring):
    t0 = time.perf_counter()
    result = run_ga(start, [Objective("task", fn)], population_size=population, offspring_size=offspring,
                    generations=10**6, random_seed=seed, max_evaluations=budget)
    seconds = time.perf_counter() - t0
    values = [c.values["task"] for c in result.all_scored.values()]
    return values, result.evaluated, seconds


class _Spent(Exception):
    pass


def run_molga(fn, start, budget, seed, population, offspring):
    from mol_ga import default_ga

    scored: dict[str, float] = {}

    def batch(smiles_list):
        out = []
        for smi in smiles_list:
            if smi not in scored:
                if len(scored) >= budget:
                    raise _Spent
                mol = Chem.MolFromSmiles(smi)
                scored[smi] = fn(mol) if mol is not None else 0.0
            out.append(scored[smi])
        return out

    t0 = time.perf_counter()
    try:
        default_ga(starting_population_smiles=start, scoring_function=batch, max_generations=10**6,
                   offspring_size=offspring, population_size=population, rng=random.Random(seed))
    except _Spent:
        pass
    return list(scored.values()), len(scored), time.perf_counter() - t0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=int, default=3000, help="molecules scored per task and method")
    parser.add_argument("--repeats", type=int, default=2, help="random seeds per task")
    parser.add_argument("--start", type=int, default=200, help="starting molecules from ESOL")
    # Population sizes differ on purpose: ours is elitist (best-N survive), so
    # a small population concentrates a small budget; mol-ga samples parents
    # by score quantiles and its default population (10,000) would keep every
    # molecule at this budget, so it gets 100. Both make the same number of
    # offspring per generation and spend the same scoring budget.
    parser.add_argument("--population", type=int, default=30, help="our GA's population")
    parser.add_argument("--peer-population", type=int, default=100, help="mol-ga's population")
    parser.add_argument("--offspring", type=int, default=100)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--quick", action="store_true", help="budget 100, one seed, 50 starting molecules")
    args = parser.parse_args(argv)
    if args.quick:
        args.budget, args.repeats, args.start = 100, 1, 50

    start = start_population(args.start)
    methods = {
        "ours": lambda fn, seed: run_ours(fn, start, args.budget, seed, args.population, args.offspring),
        "peer": lambda fn, seed: run_molga(fn, start, args.budget, seed, args.peer_population, args.offspring),
    }
    warm = TASKS[args.tasks.split(",")[0]][0]()
    run_ours(warm, start, WARMUP_BUDGET, 0, args.population, args.offspring)  # warm-up, untimed
    run_molga(warm, start, WARMUP_BUDGET, 0, args.peer_population, args.offspring)
    print(f"# machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"# budget {args.budget} scored molecules per task per run, {args.repeats} seed(s), "
          f"start {args.start} ESOL molecules, population ours {args.population} / mol-ga "
          f"{args.peer_population}, offspring {args.offspring}")
    print(f"{'task':28s} {'ours':>7s} {'mol-ga':>7s} {'ours mol/s':>11s} {'mol-ga mol/s':>13s}")
    ours_all, peer_all = [], []
    rates = {"ours": [], "peer": []}
    for name in args.tasks.split(","):
        make, tops = TASKS[name]
        fn = make()
        scores = {"ours": [], "peer": []}
        for rep in range(args.repeats):
            order = ("ours", "peer") if (len(rates["ours"]) % 2 == 0) else ("peer", "ours")
            for method in order:
                values, n, sec = methods[method](fn, rep)
                scores[method].append(task_score(values, tops))
                rates[method].append(n / sec)
        o, p = statistics.mean(scores["ours"]), statistics.mean(scores["peer"])
        ours_all.append(o)
        peer_all.append(p)
        print(f"{name:28s} {o:7.3f} {p:7.3f} {statistics.mean(rates['ours'][-args.repeats:]):11.0f} "
              f"{statistics.mean(rates['peer'][-args.repeats:]):13.0f}", flush=True)
    o, p = statistics.mean(ours_all), statistics.mean(peer_all)
    print(f"{'mean':28s} {o:7.3f} {p:7.3f} {statistics.mean(rates['ours']):11.0f} {statistics.mean(rates['peer']):13.0f}")
    print(f"ratio {o / p:.2f}")


if __name__ == "__main__":
    main()
