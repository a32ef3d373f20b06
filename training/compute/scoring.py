"""Using a trained model on new molecules: read a CSV, SDF or SMILES list, turn
the rows RDKit cannot read into row errors, predict the others, and lay the
result out as a table. The `predict` command and the training.predict job both
call this, so a model scores a file the same way from the command line and
from the portal.

Molecules are read by design's reader (`design.compute.molecules`), the one
the datasets use too: a SMILES means the same molecule, canonicalised the same
way, when a model is trained and when it is used, and a bad row carries
RDKit's own reason.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .table import REGRESSION

# Molecules per call to the model: the job reports progress (and notices a
# cancellation) between batches.
BATCH = 512

ERROR_COLUMN = "error"


@dataclass
class ScoredRow:
    row: int                        # 1-based: a CSV's first data row, an SDF's first record
    cells: dict[str, str]           # the input row, by input column
    smiles: str | None              # canonical SMILES (None when the row has an error)
    name: str = ""                  # the record's name (a name column, an SDF title)
    input: str = ""                 # the molecule as given (SMILES, or an SDF record's title)
    error: str | None = None
    values: list[float] | None = None          # per target: the prediction (P(class 1) for classification)
    std: list[float] | None = None             # per target: the ensemble members' sd
    max_similarity: float | None = None        # largest Tanimoto similarity to the training set
    in_domain: bool | None = None


@dataclass
class Scored:
    targets: list[str]
    tasks: list[str]
    input_columns: list[str]
    rows: list[ScoredRow] = field(default_factory=list)
    has_std: bool = False
    interval: list[float | None] | None = None   # per target, the conformal half-width
    interval_method: str | None = None
    domain_method: str = ""
    threshold: float | None = None

    @property
    def n_predicted(self) -> int:
        return sum(1 for r in self.rows if r.error is None)

    @property
    def n_errors(self) -> int:
        return len(self.rows) - self.n_predicted

    def prediction_columns(self, extras: bool = False) -> list[str]:
        """`<target>` and `<target>_std` (where the model has an uncertainty),
        as the predict command names them; `extras` adds the conformal interval
        and the applicability domain, as the job's file has them."""
        columns = []
        for i, target in enumerate(self.targets):
            columns.append(target)
            if self.has_std:
                columns.append(f"{target}_std")
            if extras and self.interval_width(i) is not None:
                columns += [f"{target}_low", f"{target}_high"]
        if extras:
            columns += ["max_tanimoto_to_training_set", "in_domain"]
        return columns

    def interval_width(self, i: int) -> float | None:
        return self.interval[i] if self.interval is not None and self.tasks[i] == REGRESSION else None

    def header(self, extras: bool = False) -> list[str]:
        """The input columns, then the predictions, then the error column. An
        input column named like an output one is kept as "<name> (input)"."""
        taken = set(self.prediction_columns(extras)) | {ERROR_COLUMN}
        return [f"{c} (input)" if c in taken else c for c in self.input_columns] + \
            self.prediction_columns(extras) + [ERROR_COLUMN]

    def table(self, extras: bool = False) -> list[list]:
        """One list per input row, in `header(extras)`'s order; a row with an
        error has empty predictions and the reason in the error column."""
        width = len(self.prediction_columns(extras))
        out = []
        for r in self.rows:
            cells = [r.cells.get(c, "") for c in self.input_columns]
            if r.error is not None:
                out.append(cells + [None] * width + [r.error])
                continue
            values = []
            for i, value in enumerate(r.values):
                values.append(value)
                if self.has_std:
                    values.append(r.std[i])
                if extras and self.interval_width(i) is not None:
                    half = self.interval_width(i)
                    values += [None, None] if value is None else [value - half, value + half]
            if extras:
                values += [r.max_similarity, "yes" if r.in_domain else "no"]
            out.append(cells + values + [""])
        return out


def format_from_filename(name: str) -> str:
    """"sdf", "smi" or "csv" (the default) from a file name's suffix."""
    name = (name or "").lower()
    if name.endswith((".sdf", ".sd", ".mol")):
        return "sdf"
    if name.endswith((".smi", ".smiles", ".txt")):
        return "smi"
    return "csv"


def _csv_header(text: str) -> tuple[list[str], str]:
    """(the header's columns, the delimiter): of ",;\t|", the one the header
    line has most of, as the datasets' reader falls back to; "," by default."""
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = max(",;\t|", key=first.count)
    return next(csv.reader([first], delimiter=delimiter), []), delimiter


def as_comma_csv(text: str) -> str:
    """A CSV with another delimiter (";", "|") rewritten with commas, the
    delimiters design's record count knows; other text comes back as it is."""
    text = text.removeprefix("\ufeff")
    _, delimiter = _csv_header(text)
    if delimiter in ",\t":
        return text
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    return out.getvalue()


def read_input(text: str, fmt: str, smiles_column: str | None = None, limits=None) -> tuple[list[str], list]:
    """(input columns, records): every record, a bad one with its error, and
    its input cells by column in `record.data`. ValueError for a problem of the
    whole file (no SMILES column, unknown format)."""
    from design.compute.molecules import NO_LIMITS, SMILES_COLUMN_NAMES, read_molecules

    limits = limits or NO_LIMITS
    fmt = fmt.lower().lstrip(".")
    text = text.removeprefix("\ufeff")   # a spreadsheet's byte-order mark is not part of the first column's name
    if fmt in ("csv", "tsv"):
        header, delimiter = _csv_header(text)
        lower = {h.lower().strip(): h for h in header}
        column = smiles_column or next((lower[c.lower()] for c in SMILES_COLUMN_NAMES if c.lower() in lower), None)
        if column is None:
            raise ValueError(f"CSV: no SMILES column found (columns: {', '.join(header)})")
        records = read_molecules(text, "csv", smiles_column=column, delimiter=delimiter, limits=limits)
        # design's reader keeps every column but the SMILES and the name ones in
        # `data`; the name column is the one it found (if any).
        for record in records:
            name = next((c for c in header if c not in record.data and c != column), None)
            record.data = {**record.data, column: record.source, **({name: record.name} if name else {})}
        return header, records
    records = read_molecules(text, fmt, limits=limits)
    if fmt in ("sdf", "sd", "mol"):
        for record in records:
            record.data = {"name": record.name, **record.data}
        return ["name"] + list(dict.fromkeys(k for r in records for k in r.data if k != "name")), records
    for record in records:
        record.data = {"smiles": record.source, "name": record.name}
    return ["smiles", "name"], records


def score(model, text: str, fmt: str, smiles_column: str | None = None, limits=None,
          progress: Callable[[int, int], None] | None = None) -> Scored:
    """Read `text` and predict every readable row with `model` (a bundle.TrainedModel).
    `progress(done, total)` is called between batches and may raise to stop."""
    from .bundle import AD_THRESHOLD

    columns, records = read_input(text, fmt, smiles_column, limits)
    scored = Scored(targets=list(model.targets), tasks=list(model.tasks), input_columns=columns,
                    has_std=len(model.members) > 1, threshold=AD_THRESHOLD)
    scored.rows = [ScoredRow(row=r.row, cells=r.data, smiles=r.smiles, name=r.name, input=r.source,
                             error=r.error)
                   for r in records]
    good = [row for row in scored.rows if row.error is None]
    for start in range(0, len(good), BATCH):
        if progress is not None:
            progress(start, len(good))
        batch = good[start:start + BATCH]
        pred = model.predict([row.smiles for row in batch])
        scored.interval, scored.interval_method = pred.interval, pred.interval_method
        scored.domain_method = pred.domain_method
        for i, row in enumerate(batch):
            row.values = [_finite(v) for v in pred.mean[i]]
            row.std = [_finite(v) for v in pred.std[i]] if pred.std is not None else None
            row.max_similarity = float(pred.max_similarity[i])
            row.in_domain = bool(pred.in_domain[i])
    if progress is not None:
        progress(len(good), len(good))
    return scored


def _finite(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None
