"""Molecule generation: a graph-based genetic algorithm and BRICS recombination.

The GA works on RDKit molecular graphs (not SMILES strings): mutations edit
atoms, bonds and rings, crossover swaps the pieces either side of a cut
acyclic bond between two parents. Every child is sanitised by RDKit and
deduplicated by canonical SMILES before it is scored, so the scoring budget
is spent only on new, valid molecules.

Typical call from a job:

    result = run_ga(seed_smiles,
                    objectives=[property_objective("qed"), property_objective("sa_score", direction="min", weight=0.1)],
                    filters=[no_alerts("PAINS"), mw_window(200, 500)],
                    population_size=100, generations=20, random_seed=7,
                    progress=progress, on_generation=chart.append)
"""

from __future__ import annotations

import math
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from rdkit import Chem
from rdkit.Chem import BRICS, Descriptors

from .molecules import parse_smiles
from .properties import PROPERTIES, structural_alerts

__all__ = [
    "Objective",
    "property_objective",
    "docking_objective",
    "no_alerts",
    "mw_window",
    "max_heavy_atoms",
    "Candidate",
    "GAResult",
    "run_ga",
    "mutate",
    "crossover",
    "brics_recombine",
    "non_dominated_sort",
    "crowding_distance",
]


# ---------------------------------------------------------------- objectives and filters

@dataclass
class Objective:
    """`func(mol) -> float`. `direction` says which way is better; `weight`
    is used by the weighted sum (and to order the front in Pareto mode).
    `target=(lo, hi)` turns the objective into "stay inside this window":
    the value scored is minus the distance outside it."""

    name: str
    func: Callable[[Chem.Mol], float]
    weight: float = 1.0
    direction: str = "max"
    target: tuple[float, float] | None = None
    # `batch(mols) -> values`, one per molecule, where scoring many at once is
    # far cheaper than one by one (a trained model's forward pass); the GA
    # then scores each generation's new molecules in one call.
    batch: Callable[[list[Chem.Mol]], Sequence[float]] | None = None

    def __post_init__(self):
        if self.direction not in ("max", "min"):
            raise ValueError(f"objective {self.name!r}: direction must be 'max' or 'min', not {self.direction!r}")
        if self.target is not None and (len(self.target) != 2 or self.target[0] > self.target[1]):
            raise ValueError(f"objective {self.name!r}: target must be (low, high) with low <= high")

    def utility(self, value: float) -> float:
        """The value turned so that larger is always better."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return -math.inf
        if self.target is not None:
            lo, hi = self.target
            return -(lo - value if value < lo else value - hi if value > hi else 0.0)
        return value if self.direction == "max" else -value


def property_objective(key: str, direction: str = "max", weight: float = 1.0,
                       target: tuple[float, float] | None = None) -> Objective:
    """An objective from a registered property (see design.compute.properties)."""
    if key not in PROPERTIES:
        raise ValueError(f"objective: property {key!r} is not registered (known: {', '.join(PROPERTIES)})")
    spec = PROPERTIES[key]
    return Objective(key, lambda mol: float(spec.func(mol)), weight, direction, target)


def docking_objective(dock: Callable[[str], float], weight: float = 1.0, name: str = "docking_score") -> Objective:
    """`dock(smiles) -> kcal/mol` (lower is better), e.g. a closure around
    design.compute.docking.dock_smiles. Failures should return None or raise; either
    makes the molecule rank last on this objective."""

    def score(mol):
        try:
            value = dock(Chem.MolToSmiles(mol))
        except Exception:  # a molecule Vina cannot handle is simply unfit
            return math.nan
        return math.nan if value is None else float(value)

    return Objective(name, score, weight, "min")


Filter = Callable[[Chem.Mol], "str | None"]


def no_alerts(*catalogs: str) -> Filter:
    """Reject molecules matching the given FilterCatalogs (default PAINS)."""
    catalogs = catalogs or ("PAINS",)

    def check(mol):
        hits = structural_alerts(mol, catalogs)
        return f"{hits[0]['catalog']} alert: {hits[0]['description']}" if hits else None

    check.__name__ = f"no_alerts({', '.join(catalogs)})"
    return check


def mw_window(low: float, high: float) -> Filter:
    if low > high:
        raise ValueError(f"mw_window: low {low} is above high {high}")

    def check(mol):
        mw = Descriptors.MolWt(mol)
        return None if low <= mw <= high else f"MW {mw:.1f} outside [{low}, {high}]"

    check.__name__ = f"mw_window({low}, {high})"
    return check


def max_heavy_atoms(n: int) -> Filter:
    def check(mol):
        return None if mol.GetNumHeavyAtoms() <= n else f"{mol.GetNumHeavyAtoms()} heavy atoms > {n}"

    return check


# ---------------------------------------------------------------- graph operators

# Elements the mutations may introduce, with the valence each normally takes.
_ELEMENTS = {6: 4, 7: 3, 8: 2, 9: 1, 16: 2, 17: 1, 35: 1}
_APPEND_CHOICES = [6, 6, 6, 7, 7, 8, 8, 9, 17, 16]
_INSERT_CHOICES = [6, 6, 7, 8, 16]


def _editable(mol: Chem.Mol) -> Chem.RWMol:
    # Kekulé form: editing aromatic flags directly leaves half-aromatic rings
    # that RDKit cannot sanitise; with explicit single/double bonds the
    # aromaticity is simply re-perceived afterwards.
    rw = Chem.RWMol(mol)
    Chem.Kekulize(rw, clearAromaticFlags=True)
    for atom in rw.GetAtoms():
        atom.SetNoImplicit(False)
        if atom.GetAtomicNum() == 6:
            atom.SetNumExplicitHs(0)
    return rw


def _free_valence(atom) -> int:
    used = sum(b.GetBondTypeAsDouble() for b in atom.GetBonds()) + atom.GetNumExplicitHs()
    allowed = _ELEMENTS.get(atom.GetAtomicNum())
    if allowed is None:
        return 0
    return int(allowed + atom.GetFormalCharge() * (1 if atom.GetAtomicNum() == 7 else 0) - used)


def _finish(rw: Chem.RWMol) -> Chem.Mol | None:
    try:
        mol = rw.GetMol()
        Chem.SanitizeMol(mol)
        smiles = Chem.MolToSmiles(mol)
        if "." in smiles:
            return None
        # A round trip through SMILES catches the rare graph RDKit sanitises
        # but cannot write back readably (e.g. odd aromatic systems).
        return Chem.MolFromSmiles(smiles)
    except Exception:
        return None


def _mut_element(mol, rng):
    rw = _editable(mol)
    atom = rw.GetAtomWithIdx(rng.randrange(rw.GetNumAtoms()))
    degree = sum(b.GetBondTypeAsDouble() for b in atom.GetBonds())
    choices = [z for z, v in _ELEMENTS.items() if z != atom.GetAtomicNum() and v >= degree]
    if not choices or atom.GetFormalCharge():
        return None
    atom.SetAtomicNum(rng.choice(choices))
    atom.SetNumExplicitHs(0)
    return _finish(rw)


def _mut_append(mol, rng):
    rw = _editable(mol)
    hosts = [a.GetIdx() for a in rw.GetAtoms() if _free_valence(a) >= 1]
    if not hosts:
        return None
    host = rng.choice(hosts)
    z = rng.choice(_APPEND_CHOICES)
    new = rw.AddAtom(Chem.Atom(z))
    order = Chem.BondType.SINGLE
    if z in (6, 7, 8, 16) and _free_valence(rw.GetAtomWithIdx(host)) >= 2 and rng.random() < 0.25:
        order = Chem.BondType.DOUBLE
    rw.AddBond(host, new, order)
    return _finish(rw)


def _mut_insert(mol, rng):
    rw = _editable(mol)
    bonds = [b for b in rw.GetBonds() if b.GetBondType() == Chem.BondType.SINGLE]
    if not bonds:
        return None
    bond = rng.choice(bonds)
    a, b = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
    rw.RemoveBond(a, b)
    new = rw.AddAtom(Chem.Atom(rng.choice(_INSERT_CHOICES)))
    rw.AddBond(a, new, Chem.BondType.SINGLE)
    rw.AddBond(new, b, Chem.BondType.SINGLE)
    return _finish(rw)


def _mut_delete(mol, rng):
    if mol.GetNumAtoms() <= 2:
        return None
    rw = _editable(mol)
    atom = rw.GetAtomWithIdx(rng.randrange(rw.GetNumAtoms()))
    neighbors = [n.GetIdx() for n in atom.GetNeighbors()]
    if len(neighbors) == 2 and not rw.GetBondBetweenAtoms(*neighbors):
        # Bridge the two neighbours so a chain atom can go without splitting the graph.
        rw.AddBond(neighbors[0], neighbors[1], Chem.BondType.SINGLE)
    elif len(neighbors) > 1:
        return None
    rw.RemoveAtom(atom.GetIdx())
    return _finish(rw)


def _mut_bond_order(mol, rng):
    rw = _editable(mol)
    if rw.GetNumBonds() == 0:
        return None
    bond = rw.GetBondWithIdx(rng.randrange(rw.GetNumBonds()))
    current = bond.GetBondTypeAsDouble()
    a, b = bond.GetBeginAtom(), bond.GetEndAtom()
    room = min(_free_valence(a), _free_valence(b))
    options = [o for o in (1, 2, 3) if o != current and (o < current or o - current <= room)]
    if not options:
        return None
    bond.SetBondType({1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE}[rng.choice(options)])
    return _finish(rw)


def _mut_ring_close(mol, rng):
    rw = _editable(mol)
    hosts = [a.GetIdx() for a in rw.GetAtoms() if _free_valence(a) >= 1]
    if len(hosts) < 2:
        return None
    dist = Chem.GetDistanceMatrix(rw)
    # Path length 4 or 5 gives a 5- or 6-membered ring, the common ones in drugs.
    pairs = [(i, j) for k, i in enumerate(hosts) for j in hosts[k + 1:] if dist[i][j] in (4, 5)]
    if not pairs:
        return None
    i, j = rng.choice(pairs)
    rw.AddBond(i, j, Chem.BondType.SINGLE)
    return _finish(rw)


def _mut_ring_open(mol, rng):
    rw = _editable(mol)
    ring_bonds = [b for b in rw.GetBonds() if b.IsInRing()]
    if not ring_bonds:
        return None
    bond = rng.choice(ring_bonds)
    rw.RemoveBond(bond.GetBeginAtomIdx(), bond.GetEndAtomIdx())
    return _finish(rw)


_RINGS = ["c1ccccc1", "c1ccncc1", "c1ccoc1", "c1ccsc1", "C1CCCCC1", "C1CCNCC1", "C1CCOCC1", "c1cn[nH]c1",
          "C1CC1", "c1ncccn1"]


def _mut_add_ring(mol, rng):
    rw = _editable(mol)
    hosts = [a.GetIdx() for a in rw.GetAtoms() if _free_valence(a) >= 1]
    if not hosts:
        return None
    ring = Chem.MolFromSmiles(rng.choice(_RINGS))
    Chem.Kekulize(ring, clearAromaticFlags=True)
    offset = rw.GetNumAtoms()
    combo = Chem.RWMol(Chem.CombineMols(rw, ring))
    candidates = [a.GetIdx() + offset for a in ring.GetAtoms() if a.GetTotalNumHs() > 0]
    combo.AddBond(rng.choice(hosts), rng.choice(candidates), Chem.BondType.SINGLE)
    for atom in combo.GetAtoms():
        if atom.GetIdx() >= offset and atom.GetAtomicNum() == 7:
            atom.SetNumExplicitHs(0)
    return _finish(combo)


MUTATIONS = {
    "element": (_mut_element, 3.0),
    "append": (_mut_append, 2.0),
    "insert": (_mut_insert, 1.5),
    "delete": (_mut_delete, 2.0),
    "bond_order": (_mut_bond_order, 1.5),
    "ring_close": (_mut_ring_close, 0.7),
    "ring_open": (_mut_ring_open, 0.7),
    "add_ring": (_mut_add_ring, 0.6),
}


def mutate(mol: Chem.Mol, rng: random.Random, tries: int = 8) -> Chem.Mol | None:
    """One random graph edit; a few tries because many edits are chemically impossible."""
    names = list(MUTATIONS)
    weights = [MUTATIONS[n][1] for n in names]
    for _ in range(tries):
        op = MUTATIONS[rng.choices(names, weights)[0]][0]
        child = op(mol, rng)
        if child is not None:
            return child
    return None


def _cut_fragments(mol: Chem.Mol, rng: random.Random, label: int):
    """Split at a random acyclic single bond; return both halves, each with a
    dummy atom (map number `label`) marking the cut."""
    bonds = [b.GetIdx() for b in mol.GetBonds()
             if b.GetBondType() == Chem.BondType.SINGLE and not b.IsInRing()
             and b.GetBeginAtom().GetAtomicNum() > 1 and b.GetEndAtom().GetAtomicNum() > 1]
    if not bonds:
        return None
    pieces = Chem.FragmentOnBonds(mol, [rng.choice(bonds)], addDummies=True, dummyLabels=[(0, 0)])
    frags = list(Chem.GetMolFrags(pieces, asMols=True, sanitizeFrags=False))
    if len(frags) != 2:
        return None
    for frag in frags:
        for atom in frag.GetAtoms():
            if atom.GetAtomicNum() == 0:
                atom.SetAtomMapNum(label)
                atom.SetIsotope(0)
    return frags


def crossover(a: Chem.Mol, b: Chem.Mol, rng: random.Random, tries: int = 6) -> Chem.Mol | None:
    """Join one half of `a` to one half of `b`, each cut at an acyclic single bond."""
    for _ in range(tries):
        fa, fb = _cut_fragments(a, rng, 1), _cut_fragments(b, rng, 1)
        if fa is None or fb is None:
            return None
        try:
            joined = Chem.molzip(rng.choice(fa), rng.choice(fb))
        except Exception:
            continue
        child = _finish(Chem.RWMol(joined))
        if child is not None:
            return child
    return None


# ---------------------------------------------------------------- BRICS

def brics_recombine(seed_smiles: Sequence[str], n: int = 100, random_seed: int = 0,
                    max_depth: int = 3, max_heavy: int = 50) -> list[str]:
    """Up to `n` new molecules built from the BRICS fragments of the seeds
    (Degen 2008 rules as implemented by RDKit), canonical and deduplicated.
    Seeds themselves are not returned."""
    seeds = [parse_smiles(s, f"seed {i + 1}") for i, s in enumerate(seed_smiles)]
    seen = {Chem.MolToSmiles(m) for m in seeds}
    fragments = set()
    for mol in seeds:
        fragments.update(BRICS.BRICSDecompose(mol))
    frag_mols = [Chem.MolFromSmiles(f) for f in sorted(fragments)]
    frag_mols = [f for f in frag_mols if f is not None]
    if len(frag_mols) < 2:
        return []
    # BRICSBuild shuffles with the module-level `random`; run it on a known
    # state and give the caller's state back so reproducibility is local.
    state = random.getstate()
    random.seed(random_seed)
    out = []
    try:
        for product in BRICS.BRICSBuild(frag_mols, scrambleReagents=True, maxDepth=max_depth):
            if len(out) >= n:
                break
            try:
                product.UpdatePropertyCache(strict=False)
                Chem.SanitizeMol(product)
                smiles = Chem.MolToSmiles(product)
            except Exception:
                continue
            if smiles not in seen and product.GetNumHeavyAtoms() <= max_heavy:
                seen.add(smiles)
                out.append(smiles)
    finally:
        random.setstate(state)
    return out


# ---------------------------------------------------------------- Pareto helpers

def _dominates(u: Sequence[float], v: Sequence[float]) -> bool:
    return all(x >= y for x, y in zip(u, v)) and any(x > y for x, y in zip(u, v))


def non_dominated_sort(points: Sequence[Sequence[float]]) -> list[list[int]]:
    """Fronts of indices, best first; every coordinate is maximised (Deb 2002)."""
    n = len(points)
    dominated_by = [[] for _ in range(n)]
    count = [0] * n
    fronts = [[]]
    for i in range(n):
        for j in range(i + 1, n):
            if _dominates(points[i], points[j]):
                dominated_by[i].append(j)
                count[j] += 1
            elif _dominates(points[j], points[i]):
                dominated_by[j].append(i)
                count[i] += 1
    fronts[0] = [i for i in range(n) if count[i] == 0]
    while fronts[-1]:
        nxt = []
        for i in fronts[-1]:
            for j in dominated_by[i]:
                count[j] -= 1
                if count[j] == 0:
                    nxt.append(j)
        fronts.append(nxt)
    return fronts[:-1]


def crowding_distance(points: Sequence[Sequence[float]], front: Sequence[int]) -> dict[int, float]:
    dist = {i: 0.0 for i in front}
    if not front:
        return dist
    for k in range(len(points[front[0]])):
        ordered = sorted(front, key=lambda i: points[i][k])
        lo, hi = points[ordered[0]][k], points[ordered[-1]][k]
        dist[ordered[0]] = dist[ordered[-1]] = math.inf
        if hi == lo or not math.isfinite(hi - lo):
            continue
        for prev, cur, nxt in zip(ordered, ordered[1:], ordered[2:]):
            dist[cur] += (points[nxt][k] - points[prev][k]) / (hi - lo)
    return dist


# ---------------------------------------------------------------- the GA

@dataclass
class Candidate:
    smiles: str
    values: dict            # objective name -> raw value
    utilities: tuple        # larger is better, one per objective
    score: float            # weighted sum of utilities
    generation: int
    origin: str             # "seed", "brics", "crossover", "mutation"
    rank: int = 0           # Pareto front (0 = non-dominated)
    crowding: float = 0.0

    def as_dict(self) -> dict:
        return {"smiles": self.smiles, "values": dict(self.values), "score": self.score,
                "generation": self.generation, "origin": self.origin, "pareto_rank": self.rank}


@dataclass
class GAResult:
    population: list[Candidate]            # final population, best first
    history: list[dict]                    # one dict per generation (as sent to on_generation)
    evaluated: int                         # molecules scored (the budget spent)
    all_scored: dict = field(default_factory=dict)  # smiles -> Candidate for every scored molecule
    filtered: dict = field(default_factory=dict)    # reason -> count of children rejected by filters
    seconds: float = 0.0
    generations_run: int = 0               # generations after the starting one that ran
    # The generation during which max_evaluations ran out (None: it never did),
    # so a run page can say exactly what the cap cut short.
    budget_exhausted_in: int | None = None

    @property
    def best(self) -> Candidate:
        return self.population[0]

    def pareto_front(self) -> list[Candidate]:
        return [c for c in self.population if c.rank == 0]

    def top(self, k: int) -> list[Candidate]:
        return sorted(self.all_scored.values(), key=lambda c: c.score, reverse=True)[:k]


# The GA's largest molecule by default: a seed above it could never enter the
# population, so submissions refuse such seeds up front.
MAX_HEAVY_ATOMS = 60


def run_ga(
    seeds: Iterable[str],
    objectives: Sequence[Objective],
    *,
    population_size: int = 100,
    generations: int = 20,
    offspring_size: int | None = None,
    random_seed: int = 0,
    mode: str = "weighted",
    filters: Sequence[Filter] = (),
    crossover_rate: float = 0.8,
    mutation_rate: float = 0.3,
    brics_seeds: int = 0,
    max_evaluations: int | None = None,
    max_heavy: int = MAX_HEAVY_ATOMS,
    progress: Callable[[float, str], None] | None = None,
    on_generation: Callable[[dict], None] | None = None,
) -> GAResult:
    """Evolve molecules from `seeds` (SMILES) to maximise the objectives.

    mode "weighted" ranks by the weighted sum of the objectives' utilities;
    mode "pareto" ranks by non-dominated front then crowding distance
    (NSGA-II style) and keeps the weighted sum only to pick a single "best".
    `max_evaluations` caps the number of molecules scored (seeds included),
    so runs with different settings can be compared on equal budgets.
    `brics_seeds` adds that many BRICS recombinations of the seeds to the
    starting population.

    Each generation's new molecules are made and filtered first, then
    scored together: objectives with a `batch` function get them in one
    call, the others one molecule at a time.

    `progress(percent, message)` is called after every molecule scored
    (with docking, each takes seconds) as well as after every generation;
    `on_generation(stats)` after every generation, generation 0 (the
    starting population) included."""
    if not objectives:
        raise ValueError("objectives: at least one objective is needed")
    if mode not in ("weighted", "pareto"):
        raise ValueError(f"mode: must be 'weighted' or 'pareto', not {mode!r}")
    if population_size < 2:
        raise ValueError("population_size: must be at least 2")
    if generations < 0:
        raise ValueError("generations: must not be negative")
    names = [o.name for o in objectives]
    if len(set(names)) != len(names):
        raise ValueError(f"objectives: names must be unique, got {names}")
    offspring_size = offspring_size or population_size
    rng = random.Random(random_seed)
    started = time.monotonic()
    budget = max_evaluations if max_evaluations is not None else math.inf
    scored: dict[str, Candidate] = {}
    rejected: dict[str, int] = {}
    seen: set[str] = set()

    def report(pct, msg):
        if progress is not None:
            progress(max(0.0, min(100.0, pct)), msg)

    def admit(mol: Chem.Mol) -> bool:
        """The hard limits and filters, counted by reason, before any scoring."""
        if mol.GetNumHeavyAtoms() > max_heavy:
            rejected["too many heavy atoms"] = rejected.get("too many heavy atoms", 0) + 1
            return False
        for check in filters:
            reason = check(mol)
            if reason:
                key = getattr(check, "__name__", "filter")
                rejected[key] = rejected.get(key, 0) + 1
                return False
        return True

    def batch_values(obj: Objective, mols: list[Chem.Mol]) -> list[float] | None:
        if obj.batch is None or not mols:
            return None
        try:
            values = [float(v) if v is not None else math.nan for v in obj.batch(mols)]
        except Exception:  # the batch failed as a whole: each molecule is tried alone below
            return None
        return values if len(values) == len(mols) else None

    def score(admitted: list[tuple[Chem.Mol, str, str]], generation: int,
              message: Callable[[int], tuple[float, str]]) -> list[Candidate]:
        """Score the admitted molecules of one generation, in order."""
        mols = [mol for mol, _, _ in admitted]
        batched = {obj.name: batch_values(obj, mols) for obj in objectives}
        out = []
        for n, (mol, smiles, origin) in enumerate(admitted):
            values, utils = {}, []
            for obj in objectives:
                given = batched[obj.name]
                if given is not None:
                    value = given[n]
                else:
                    try:
                        value = obj.func(mol)
                    except Exception:  # a property undefined for this molecule makes it unfit, not the run fail
                        value = math.nan
                values[obj.name] = value
                utils.append(obj.utility(value))
            total = sum(o.weight * u for o, u in zip(objectives, utils))
            cand = Candidate(smiles, values, tuple(utils), total if math.isfinite(total) else -math.inf,
                             generation, origin)
            scored[smiles] = cand
            out.append(cand)
            report(*message(n + 1))
        return out

    def rank(pool: list[Candidate]) -> list[Candidate]:
        if mode == "weighted":
            ordered = sorted(pool, key=lambda c: (c.score, c.smiles), reverse=True)
            for i, c in enumerate(ordered):
                c.rank, c.crowding = 0 if i == 0 else 1, 0.0
            return ordered
        points = [c.utilities for c in pool]
        ordered = []
        for level, front in enumerate(non_dominated_sort(points)):
            crowd = crowding_distance(points, front)
            for i in front:
                pool[i].rank, pool[i].crowding = level, crowd[i]
            ordered.extend(sorted((pool[i] for i in front), key=lambda c: (-c.crowding, -c.score, c.smiles)))
        return ordered

    def pick(pop: list[Candidate]) -> Candidate:
        # Binary tournament on the ranking order (front, crowding or score).
        i, j = rng.randrange(len(pop)), rng.randrange(len(pop))
        return pop[min(i, j)]

    # -- starting population
    seed_list = list(seeds)
    if not seed_list:
        raise ValueError("seeds: at least one seed SMILES is needed")
    start: list[tuple[Chem.Mol, str, str]] = []
    for i, smi in enumerate(seed_list):
        mol = parse_smiles(smi, f"seed {i + 1}")
        can = Chem.MolToSmiles(mol)
        if can not in seen:
            seen.add(can)
            start.append((mol, can, "seed"))
    if brics_seeds:
        for smi in brics_recombine([s for _, s, _ in start], n=brics_seeds, random_seed=random_seed,
                                   max_heavy=max_heavy):
            if smi not in seen:
                seen.add(smi)
                start.append((Chem.MolFromSmiles(smi), smi, "brics"))
    population: list[Candidate] = []
    history: list[dict] = []
    exhausted_in: int | None = None
    generations_run = 0
    # The budget counts molecules scored: admitting stops where it would be
    # passed, so the cap cuts a generation exactly where scoring one
    # molecule at a time would have.
    admitted: list[tuple[Chem.Mol, str, str]] = []
    for mol, smi, origin in start:
        if len(admitted) >= budget:
            exhausted_in = 0
            break
        if admit(mol):
            admitted.append((mol, smi, origin))
    population = score(admitted, 0, lambda n: (100.0 * n / len(admitted) / (generations + 1),
                                               f"generation 0: {n} of {len(admitted)} starting molecules scored"))
    if not population:
        raise ValueError("seeds: no seed passed the filters "
                         f"({', '.join(f'{k}: {v}' for k, v in rejected.items()) or 'none scored'})")
    population = rank(population)[:population_size]
    history.append(_generation_stats(0, population, objectives, len(scored), started))
    if on_generation:
        on_generation(history[-1])
    report(100.0 / (generations + 1), f"generation 0: {len(population)} seeds scored")

    # -- evolution
    for gen in range(1, generations + 1):
        if exhausted_in is not None:
            break
        generations_run = gen
        admitted = []
        attempts = 0
        while len(admitted) < offspring_size and attempts < offspring_size * 20:
            attempts += 1
            parent = pick(population)
            origin = "mutation"
            child = None
            if len(population) > 1 and rng.random() < crossover_rate:
                other = pick(population)
                if other is not parent:
                    child = crossover(Chem.MolFromSmiles(parent.smiles), Chem.MolFromSmiles(other.smiles), rng)
                    origin = "crossover"
            if child is None or rng.random() < mutation_rate:
                base = child if child is not None else Chem.MolFromSmiles(parent.smiles)
                mutated = mutate(base, rng)
                if mutated is not None:
                    child, origin = mutated, ("crossover+mutation" if origin == "crossover" and child is not None
                                              else "mutation")
            if child is None:
                continue
            smi = Chem.MolToSmiles(child)
            if smi in seen:
                continue
            seen.add(smi)
            if len(scored) + len(admitted) >= budget:
                exhausted_in = gen
                break
            if admit(child):
                admitted.append((child, smi, origin))
        children = score(admitted, gen, lambda n, gen=gen: (
            100.0 * (gen + n / offspring_size) / (generations + 1),
            f"generation {gen}: {n} of {offspring_size} new molecules scored"))
        population = rank(population + children)[:population_size]
        history.append(_generation_stats(gen, population, objectives, len(scored), started, len(children)))
        if on_generation:
            on_generation(history[-1])
        best = history[-1]
        report(100.0 * (gen + 1) / (generations + 1),
               f"generation {gen}: best {best['best_score']:.3f}, median {best['median_score']:.3f}, "
               f"{len(scored)} scored")
        if len(scored) >= budget and gen < generations:
            exhausted_in = gen
    final = rank(population)
    if mode == "pareto":
        # The front first, and within it the best weighted sum first, so
        # `best` is still a sensible single answer.
        final.sort(key=lambda c: (c.rank, -c.score))
    return GAResult(final, history, len(scored), scored, rejected, time.monotonic() - started,
                    generations_run, exhausted_in)


def _generation_stats(gen, population, objectives, evaluated, started, new=None) -> dict:
    scores = [c.score for c in population if math.isfinite(c.score)]
    best = max(population, key=lambda c: c.score)
    per_obj_best, per_obj_median = {}, {}
    for k, obj in enumerate(objectives):
        vals = [c.values[obj.name] for c in population
                if isinstance(c.values[obj.name], (int, float)) and math.isfinite(c.values[obj.name])]
        if vals:
            per_obj_best[obj.name] = max(vals, key=obj.utility)
            per_obj_median[obj.name] = statistics.median(vals)
    return {
        "generation": gen,
        "evaluated": evaluated,
        "new": len(population) if new is None else new,
        "population": len(population),
        "best_score": best.score,
        "median_score": statistics.median(scores) if scores else -math.inf,
        "best_smiles": best.smiles,
        "best": per_obj_best,
        "median": per_obj_median,
        "front_size": sum(1 for c in population if c.rank == 0),
        "seconds": round(time.monotonic() - started, 3),
    }
