"""Train / validation / test splits of a `Table`, deterministic given the seed.

A `Split` holds row positions into the table, so it is stored with a run
(`as_dict`) and the same members come back for a rerun or a download. Every
method returns sorted positions; the training loaders do their own shuffling.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .table import CLASSIFICATION, Table

SPLIT_METHODS = {
    "random": "Random: rows shuffled by the seed and cut at the sizes.",
    "scaffold": "Scaffold: Bemis–Murcko scaffold sets never straddle two sets; sets larger than half the "
                "validation or test size go to training first, the others follow in an order shuffled by "
                "the seed (Chemprop's balanced scaffold split).",
    "stratified": "Stratified: each class of the one classification target is split at the sizes, "
                  "so every set keeps the class balance.",
    "column": "By column: a column of the file names each row's set: train, val (or valid, validation) or "
              "test, case-insensitive.",
}
KFOLD_METHODS = ("random", "scaffold")
DEFAULT_SIZES = (0.8, 0.1, 0.1)
SET_NAMES = ("train", "val", "test")
_COLUMN_VALUES = {"train": 0, "training": 0, "val": 1, "valid": 1, "validation": 1, "test": 2, "testing": 2}


@dataclass
class Split:
    train: list[int]
    val: list[int]
    test: list[int]
    method: str
    sizes: tuple[float, float, float]   # as asked; the column method reports the fractions found
    seed: int
    column: str | None = None
    fold: int | None = None             # k-fold: this split's fold (its test set), 0-based
    folds: int | None = None            # k-fold: k

    def as_dict(self) -> dict:
        data = asdict(self)
        data["sizes"] = list(self.sizes)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Split":
        fields = dict(data)
        fields["sizes"] = tuple(fields["sizes"])
        return cls(**{k: fields.get(k) for k in cls.__dataclass_fields__})

    def counts(self) -> dict:
        return {"n_train": len(self.train), "n_val": len(self.val), "n_test": len(self.test)}

    def describe(self) -> str:
        if self.folds:
            return f"{self.method} {self.folds}-fold, fold {self.fold + 1} (seed {self.seed})"
        if self.method == "column":
            return f"by column {self.column!r}"
        return f"{self.method} {'/'.join(f'{s:g}' for s in self.sizes)} (seed {self.seed})"


def check_sizes(sizes) -> tuple[float, float, float]:
    try:
        values = tuple(float(s) for s in sizes)
    except (TypeError, ValueError):
        raise ValueError("Split sizes must be three numbers (train, validation, test).") from None
    if len(values) != 3:
        raise ValueError(f"Split sizes must be three numbers (train, validation, test), got {len(values)}.")
    if any(not np.isfinite(v) or v < 0 or v > 1 for v in values):
        raise ValueError("Each split size must be between 0 and 1.")
    if abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"Split sizes must sum to 1 (they sum to {sum(values):g}).")
    if values[0] == 0:
        raise ValueError("The training size must be above 0.")
    return values


def make_split(table: Table, method: str = "random", sizes=DEFAULT_SIZES, seed: int = 0,
               column: str | None = None) -> Split:
    """ValueError with the reason when the split cannot be made (an unknown
    method, sizes that do not sum to 1, a set that would be empty)."""
    if method not in SPLIT_METHODS:
        raise ValueError(f"Unknown split {method!r}: use one of {', '.join(SPLIT_METHODS)}.")
    seed = int(seed)
    if method == "column":
        return _by_column(table, column, seed)
    sizes = check_sizes(sizes)
    n = len(table)
    if method == "random":
        parts = _cut(np.random.default_rng(seed).permutation(n), sizes)
    elif method == "scaffold":
        parts = _fill(_balanced_order(scaffold_groups(table.smiles), sizes, n, seed), sizes, n)
    else:
        parts = _stratified(table, sizes, seed)
    _require(parts, sizes, method, n)
    return Split(*[sorted(int(i) for i in p) for p in parts], method=method, sizes=sizes, seed=seed)


def kfold(table: Table, k: int = 5, seed: int = 0, method: str = "random") -> list[Split]:
    """k splits: fold i is the test set of split i and fold i+1 (mod k) its
    validation set (the torch families need one for early stopping); the other
    k-2 folds train. Scaffold folds keep each scaffold set in one fold."""
    if method not in KFOLD_METHODS:
        raise ValueError(f"k-fold splits are {' or '.join(KFOLD_METHODS)}, not {method!r}.")
    k, seed, n = int(k), int(seed), len(table)
    if k < 3:
        raise ValueError("k-fold needs k of at least 3 (one fold tests, one validates, the rest train).")
    if k > n:
        raise ValueError(f"k-fold with k={k} needs at least {k} rows; the dataset has {n}.")
    if method == "random":
        folds = [list(f) for f in np.array_split(np.random.default_rng(seed).permutation(n), k)]
    else:
        groups = scaffold_groups(table.smiles)
        if len(groups) < k:
            raise ValueError(f"Scaffold k-fold with k={k} needs at least {k} scaffolds; the dataset has "
                             f"{len(groups)}.")
        folds = [[] for _ in range(k)]
        # Largest sets first, each into the emptiest fold, so the folds come out near equal; the seed
        # orders the sets of one size.
        order = np.random.default_rng(seed).permutation(len(groups))
        for index in sorted(order, key=lambda g: -len(groups[g])):
            min(folds, key=len).extend(groups[index])
        folds = [folds[i] for i in np.random.default_rng(seed + 1).permutation(k)]
    splits = []
    for i in range(k):
        val_fold = (i + 1) % k
        train = [j for f, fold in enumerate(folds) if f not in (i, val_fold) for j in fold]
        split = Split(sorted(int(j) for j in train), sorted(int(j) for j in folds[val_fold]),
                      sorted(int(j) for j in folds[i]), method=method,
                      sizes=(round(1 - 2 / k, 6), round(1 / k, 6), round(1 / k, 6)), seed=seed, fold=i, folds=k)
        _require((split.train, split.val, split.test), split.sizes, f"{method} {k}-fold", n)
        splits.append(split)
    return splits


def scaffold_groups(smiles: list[str]) -> list[list[int]]:
    """Positions grouped by Bemis–Murcko scaffold (ring systems and the linkers
    between them, atom types kept, chirality ignored, as Chemprop does), in order of
    first appearance; acyclic molecules share the empty scaffold."""
    from rdkit import Chem
    from rdkit.Chem.Scaffolds import MurckoScaffold

    groups: dict[str, list[int]] = {}
    for i, smi in enumerate(smiles):
        mol = Chem.MolFromSmiles(smi)
        scaffold = MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False) if mol is not None else smi
        groups.setdefault(scaffold, []).append(i)
    return list(groups.values())


def _targets(sizes, n) -> tuple[float, float, float]:
    return tuple(s * n for s in sizes)


def _cut(order, sizes) -> list[list[int]]:
    n = len(order)
    n_test = int(round(sizes[2] * n))
    n_val = int(round(sizes[1] * n))
    n_train = n - n_val - n_test
    return [list(order[:n_train]), list(order[n_train:n_train + n_val]), list(order[n_train + n_val:])]


def _balanced_order(groups, sizes, n, seed) -> list[list[int]]:
    """Chemprop's balance: sets too big to fit half of the validation or test
    set go first, so the small sets fill validation and test; each part shuffled."""
    _, val_size, test_size = _targets(sizes, n)
    big = [g for g in groups if len(g) > val_size / 2 or len(g) > test_size / 2]
    small = [g for g in groups if not (len(g) > val_size / 2 or len(g) > test_size / 2)]
    rng = np.random.default_rng(seed)
    return [big[i] for i in rng.permutation(len(big))] + [small[i] for i in rng.permutation(len(small))]


def _fill(ordered_groups, sizes, n) -> list[list[int]]:
    """Each set goes to the first of train, val, test it fits in; one that fits
    nowhere goes to the last set that was asked for (test, or val when test is 0)."""
    capacity = _targets(sizes, n)
    last = max(i for i, s in enumerate(sizes) if s > 0)
    parts: list[list[int]] = [[], [], []]
    for group in ordered_groups:
        for i in range(3):
            if sizes[i] > 0 and len(parts[i]) + len(group) <= capacity[i]:
                parts[i].extend(group)
                break
        else:
            parts[last].extend(group)
    return parts


def _stratified(table: Table, sizes, seed) -> list[list[int]]:
    if len(table.targets) != 1:
        raise ValueError(f"A stratified split needs exactly one target; this dataset has {len(table.targets)} "
                         f"(use a random or scaffold split).")
    if table.tasks[0] != CLASSIFICATION:
        raise ValueError(f"A stratified split is for a classification target; {table.targets[0]!r} is "
                         f"{table.tasks[0]}.")
    rng = np.random.default_rng(seed)
    labels = table.y[:, 0]
    parts: list[list[int]] = [[], [], []]
    for value in (0.0, 1.0):
        members = np.flatnonzero(labels == value)
        for part, chunk in zip(parts, _cut(rng.permutation(members), sizes)):
            part.extend(chunk)
    return parts


def _require(parts, sizes, method, n) -> None:
    for name, part, size in zip(SET_NAMES, parts, sizes):
        if size > 0 and not part:
            raise ValueError(f"The {method} split of {n} rows at sizes {'/'.join(f'{s:g}' for s in sizes)} "
                             f"leaves the {name} set empty; use more rows, larger sizes"
                             + (" or a random split." if method.startswith("scaffold") else "."))


def _by_column(table: Table, column: str | None, seed: int) -> Split:
    if not column:
        raise ValueError("A split by column needs the column's name.")
    if column not in table.columns:
        raise ValueError(f"Column {column!r} was not kept with the dataset (kept: "
                         f"{', '.join(table.columns) or 'none'}).")
    parts: list[list[int]] = [[], [], []]
    for i, value in enumerate(table.columns[column]):
        which = _COLUMN_VALUES.get(str(value).strip().lower())
        if which is None:
            raise ValueError(f"Row {table.rows[i]}: {value!r} in column {column!r} is not a set name "
                             f"(train, val or test).")
        parts[which].append(i)
    if not parts[0]:
        raise ValueError(f"Column {column!r} puts no row in the training set.")
    n = len(table)
    sizes = tuple(round(len(p) / n, 6) for p in parts)
    return Split(*parts, method="column", sizes=sizes, seed=seed, column=column)
