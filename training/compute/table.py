"""A validated dataset as every part of training sees it.

`datasets.parse_*` makes one from an upload; splits, families, the pipeline
and the bundle only ever read one. Labels are a float matrix with NaN where a
row has no label for a target (Tox21's missing assays), so multi-target data
is one table and every loss and metric masks the NaNs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

REGRESSION = "regression"
CLASSIFICATION = "classification"
TASKS = (REGRESSION, CLASSIFICATION)


@dataclass(frozen=True)
class RowError:
    """A row left out: its 1-based row number in the file (the header is row 0;
    an SDF's first record is row 1), the column (or "molecule") and why."""

    row: int
    column: str
    message: str

    def as_dict(self) -> dict:
        return {"row": self.row, "column": self.column, "message": self.message}


@dataclass
class Table:
    smiles: list[str]                 # canonical SMILES (RDKit), one per kept row
    y: np.ndarray                     # (n_rows, n_targets) float64; NaN = no label
    targets: list[str]                # target column names, in y's column order
    tasks: list[str]                  # REGRESSION or CLASSIFICATION per target
    rows: list[int] = field(default_factory=list)          # source row number of each kept row
    columns: dict[str, list[str]] = field(default_factory=dict)  # other columns kept (split by column)
    errors: list[RowError] = field(default_factory=list)   # rows left out, with the reason
    duplicates: list[dict] = field(default_factory=list)   # what the duplicate rule did, per molecule

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=np.float64).reshape(len(self.smiles), len(self.targets))
        if len(self.tasks) != len(self.targets):
            raise ValueError("one task per target")
        if not self.rows:
            self.rows = list(range(1, len(self.smiles) + 1))

    def __len__(self) -> int:
        return len(self.smiles)

    def subset(self, index) -> "Table":
        """The rows at `index` (positions into this table), errors not carried."""
        index = [int(i) for i in index]
        return Table(smiles=[self.smiles[i] for i in index], y=self.y[index], targets=list(self.targets),
                     tasks=list(self.tasks), rows=[self.rows[i] for i in index],
                     columns={k: [v[i] for i in index] for k, v in self.columns.items()})
