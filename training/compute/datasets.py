"""CSV / SDF uploads -> a validated `Table`, and the table's storage format.

Every row is checked on its own: a bad SMILES (RDKit's own reason), a
non-numeric or non-0/1 label, or a row with no label at all is a `RowError`
and the good rows go through. Only problems of the whole file (nothing to
train on) raise `DatasetError`. SMILES are parsed by design's molecule
reader, so a molecule means the same thing (and hits the same size caps) in
both features.

`read_preview` needs RDKit only for an SDF or to guess an unnamed SMILES
column, so the upload form can run it in the web process.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from dataclasses import dataclass, field

import numpy as np

from .table import CLASSIFICATION, REGRESSION, TASKS, RowError, Table

__all__ = [
    "DatasetError", "DatasetLimits", "Preview", "DUPLICATE_RULE", "MISSING_VALUES",
    "read_preview", "parse_dataset", "table_to_csv", "table_from_csv", "table_hash", "target_stats", "counts",
]

DUPLICATE_RULE = (
    "Rows with the same canonical SMILES are merged into one molecule at the first row's place: "
    "per target, regression labels are averaged (flagged when they spread by more than one standard "
    "deviation of that target), classification labels are kept when they agree and dropped (left "
    "missing) when they contradict; a merged molecule with no label left is a row error. The other "
    "columns kept (names, a split column) are the first row's."
)

# Cells that mean "not measured", as spreadsheets and pandas write them.
MISSING_VALUES = frozenset({"", "na", "nan", "n/a", "null", "none"})
_TRUE, _FALSE = frozenset({"true", "yes"}), frozenset({"false", "no"})

SDF_MOLECULE = "(molecule)"   # the preview column holding an SDF record's molecule
PREVIEW_SCAN_ROWS = 1000      # CSV rows a preview reads to tell numeric columns and tasks
PREVIEW_SCAN_RECORDS = 200    # SDF records: each is an RDKit parse in the web process
MIN_ROWS = 2
HISTOGRAM_BINS = 20
_SMILES_NAMES = ("smiles", "canonical_smiles", "smi", "isosmiles", "canonical smiles")


class DatasetError(ValueError):
    """The file as a whole cannot become a dataset; the message says why."""


@dataclass(frozen=True)
class DatasetLimits:
    """Caps so that one upload cannot swamp a worker; the portal passes its
    settings, None = no cap."""

    max_bytes: int | None = 50 * 1024 * 1024
    max_rows: int | None = 200_000
    max_columns: int | None = 1_000
    max_smiles_chars: int | None = 2_000
    max_heavy_atoms: int | None = 250


@dataclass
class Preview:
    format: str                              # "csv" | "sdf"
    columns: list[str]
    rows: list[list[str]]
    smiles_column: str | None                # the guess; SDF_MOLECULE for an SDF
    targets: dict[str, str | None] = field(default_factory=dict)  # column -> inferred task, None = not numeric
    delimiter: str | None = None


# --- reading the file -------------------------------------------------------

def _format(data: bytes, filename: str) -> str:
    name = (filename or "").lower()
    if name.endswith((".sdf", ".sd", ".mol")):
        return "sdf"
    if name.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    return "sdf" if b"M  END" in data[:1_000_000] else "csv"


def _decode(data: bytes, limits: DatasetLimits) -> str:
    if not data or not data.strip():
        raise DatasetError("The file is empty.")
    if limits.max_bytes is not None and len(data) > limits.max_bytes:
        raise DatasetError(f"The file is {len(data):,} bytes, over the limit of {limits.max_bytes:,}.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"The file is not UTF-8 text (byte 0x{data[exc.start]:02x} at position "
                           f"{exc.start:,}); save it as UTF-8 CSV.") from None
    nul = text.find("\x00")
    if nul >= 0:
        # PostgreSQL text cannot hold a NUL, and no SMILES or label has one.
        raise DatasetError(f"The file contains a NUL character (0x00) at character {nul:,}: not a text table.")
    return text


def _delimiter(text: str) -> str:
    sample = text[:65536]
    header = sample.splitlines()[0] if sample.splitlines() else ""
    try:
        found = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        if found in header:
            return found
    except csv.Error:
        pass
    # The sniffer gives up on one-column files and ragged samples; the header decides then.
    seen = {d: header.count(d) for d in ",;\t|"}
    best = max(seen, key=seen.get)
    return best if seen[best] else ","


def _csv_records(text: str, limits: DatasetLimits, max_rows: int | None = None):
    """(delimiter, header, iterator of (row number, fields)); blank lines skipped."""
    delimiter = _delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DatasetError(f"The header cannot be read as CSV: {exc}.") from None
    if not header or not any(h.strip() for h in header):
        raise DatasetError("The file has no header row: the first line must name the columns.")
    if limits.max_columns is not None and len(header) > limits.max_columns:
        raise DatasetError(f"The file has {len(header):,} columns, over the limit of {limits.max_columns:,}.")
    numbers = [h for h in header if _is_number(h)]
    if numbers:
        raise DatasetError(f"The file has no header row: the first line holds the number {_short(numbers[0].strip())!r}; "
                           f"it must name the columns.")
    # pandas writes its index column with an empty name; it still gets one.
    header = [h.strip() or f"column {i + 1}" for i, h in enumerate(header)]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise DatasetError(f"The header names column {repeated[0]!r} twice.")

    def rows():
        n = 0
        while True:
            try:
                fields = next(reader, None)
            except csv.Error as exc:  # a field over the csv module's size limit
                raise DatasetError(f"Row {n + 1} cannot be read as CSV: {exc}.") from None
            if fields is None:
                return
            if not any(f.strip() for f in fields):
                continue
            n += 1
            if max_rows is not None and n > max_rows:
                return
            if limits.max_rows is not None and n > limits.max_rows:
                raise DatasetError(f"The file has more than {limits.max_rows:,} rows, the limit.")
            yield n, fields
    return delimiter, header, rows()


def _sdf_records(text: str, limits: DatasetLimits, max_rows: int | None = None):
    from design.compute.molecules import MoleculeLimits, read_sdf

    if max_rows is not None:
        text = _first_records(text, max_rows)
    elif limits.max_rows is not None:
        # Counted before RDKit sees any record; a last record without "$$$$" is one more.
        n = text.count("$$$$") + (0 if text.rstrip().endswith("$$$$") else 1)
        if n > limits.max_rows:
            raise DatasetError(f"The file has {n:,} records, over the limit of {limits.max_rows:,}.")
    records = read_sdf(text, limits=MoleculeLimits(max_heavy_atoms=limits.max_heavy_atoms,
                                                   max_smiles_chars=limits.max_smiles_chars))
    if not records:
        raise DatasetError("The SDF has no records.")
    return records


def _first_records(text: str, n: int) -> str:
    end = 0
    for _ in range(n):
        found = text.find("$$$$", end)
        if found < 0:
            return text
        end = found + 4
    return text[:end]


# --- values -------------------------------------------------------------------

def _value(text: str | None) -> float | None:
    """A label: float, None when missing; ValueError when not a number."""
    cell = (text or "").strip()
    low = cell.lower()
    if low in MISSING_VALUES:
        return None
    if low in _TRUE:
        return 1.0
    if low in _FALSE:
        return 0.0
    if "_" in cell:  # float() reads "1_000"; a spreadsheet never means that
        raise ValueError(cell)
    number = float(cell)  # ValueError for text
    if not math.isfinite(number):
        raise ValueError(cell)
    return number


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _infer_task(cells) -> str | None:
    """Classification when every labelled value is 0/1 (or true/false), regression
    when most are numbers, None when the column is not numeric."""
    numbers, text = [], 0
    for cell in cells:
        try:
            number = _value(cell)
        except ValueError:
            text += 1
            continue
        if number is not None:
            numbers.append(number)
    if not numbers or text > len(numbers):
        return None
    return CLASSIFICATION if set(numbers) <= {0.0, 1.0} else REGRESSION


def _short(text: str, limit: int = 60) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


# --- preview ------------------------------------------------------------------

def read_preview(data: bytes, filename: str, max_rows: int = 10, limits: "DatasetLimits | None" = None) -> Preview:
    """The first rows as text, a guess at the SMILES column and the task each
    numeric column would get, for the upload form."""
    limits = limits or DatasetLimits()
    text = _decode(data, limits)
    if _format(data, filename) == "sdf":
        records = _sdf_records(text, limits, max_rows=max(max_rows, PREVIEW_SCAN_RECORDS))
        names = list(dict.fromkeys(k for r in records for k in r.data))
        columns = [SDF_MOLECULE] + names
        rows = [[r.smiles or f"error: {r.error}"] + [r.data.get(k, "") for k in names] for r in records[:max_rows]]
        targets = {k: _infer_task(r.data.get(k, "") for r in records) for k in names}
        return Preview("sdf", columns, rows, SDF_MOLECULE, targets)
    delimiter, header, records = _csv_records(text, limits, max_rows=max(max_rows, PREVIEW_SCAN_ROWS))
    scanned = [fields for _, fields in records]
    rows = [(fields + [""] * len(header))[:len(header)] for fields in scanned]
    smiles_column = _guess_smiles(header, rows[:max_rows])
    targets = {h: _infer_task(r[i] for r in rows) for i, h in enumerate(header) if h != smiles_column}
    return Preview("csv", header, rows[:max_rows], smiles_column, targets, delimiter)


def _guess_smiles(header: list[str], rows: list[list[str]]) -> str | None:
    for name in _SMILES_NAMES:
        for h in header:
            if h.lower() == name:
                return h
    for h in header:
        if "smiles" in h.lower():
            return h
    if not rows:
        return None
    from rdkit import Chem
    from rdkit.rdBase import BlockLogs

    _quiet = BlockLogs()  # noqa: F841 - a failed guess is no error; logging comes back when released
    best, best_count = None, 0
    for i, h in enumerate(header):
        count = 0
        for r in rows:
            cell = r[i].strip()
            if cell and Chem.MolFromSmiles(cell) is not None:
                count += 1
        if count > best_count:
            best, best_count = h, count
    return best if best_count * 2 > len(rows) else None


# --- parsing ------------------------------------------------------------------

@dataclass
class _Row:
    row: int
    smiles: str | None
    error: RowError | None
    cells: list[str]      # target cells, in target order
    kept: list[str]       # keep_columns cells


def parse_dataset(data: bytes, filename: str, smiles_column: str | None, targets: dict[str, str | None],
                  keep_columns=(), limits: DatasetLimits = DatasetLimits()) -> Table:
    """The validated table of an upload. `targets` maps a target column to its
    task (None = infer); `keep_columns` are other columns carried along (names,
    a split column). A CSV's `smiles_column` None is guessed as the preview
    guesses it. For an SDF, `smiles_column` None or SDF_MOLECULE takes the
    record's molecule and target columns are SD properties."""
    text = _decode(data, limits)
    if not targets:
        raise DatasetError("Choose at least one target column.")
    for name, task in targets.items():
        if task is not None and task not in TASKS:
            raise DatasetError(f"Target {name!r}: the task must be regression or classification, not {task!r}.")
    names = list(targets)
    keep = [c for c in dict.fromkeys(keep_columns) if c not in names]
    if _format(data, filename) == "sdf":
        rows = _sdf_rows(text, smiles_column, names, keep, limits)
    else:
        rows = _csv_rows(text, smiles_column, names, keep, limits)
    if not rows:
        raise DatasetError("The file has a header but no rows.")
    return _build(rows, names, targets, keep)


def _molecule_limits(limits: DatasetLimits):
    from design.compute.molecules import MoleculeLimits

    return MoleculeLimits(max_heavy_atoms=limits.max_heavy_atoms, max_smiles_chars=limits.max_smiles_chars)


def _canonical(text: str, row: int, column: str, mol_limits) -> tuple[str | None, RowError | None]:
    from rdkit import Chem

    from design.compute.molecules import parse_smiles

    try:
        mol = parse_smiles(text, f"row {row}", mol_limits)
    except ValueError as exc:
        return None, RowError(row, column, str(exc))
    return Chem.MolToSmiles(mol), None


def _csv_rows(text, smiles_column, names, keep, limits) -> list[_Row]:
    _, header, records = _csv_records(text, limits)
    if smiles_column is None:
        # The preview's guess, so an API upload without the column name reads as the form would.
        records = list(records)
        smiles_column = _guess_smiles(header, [f for _, f in records[:10] if len(f) == len(header)])
        if smiles_column is None:
            raise DatasetError(f"No SMILES column found: name it (columns: {', '.join(header)}).")
    wanted = [smiles_column] + names + keep
    missing = [c for c in wanted if c not in header]
    if missing:
        what = "SMILES column" if missing[0] == smiles_column else "column"
        raise DatasetError(f"The file has no {what} {missing[0]!r} (columns: {', '.join(header)}).")
    if smiles_column in names:
        raise DatasetError(f"Column {smiles_column!r} cannot be both the SMILES and a target.")
    s_index, t_index, k_index = header.index(smiles_column), [header.index(n) for n in names], \
        [header.index(k) for k in keep]
    mol_limits = _molecule_limits(limits)
    rows = []
    for number, fields in records:
        if len(fields) != len(header):
            rows.append(_Row(number, None, RowError(number, "row", f"row {number}: {len(fields)} fields where "
                                                                   f"the header has {len(header)}"), [], []))
            continue
        smiles, error = _canonical(fields[s_index], number, smiles_column, mol_limits)
        rows.append(_Row(number, smiles, error, [fields[i] for i in t_index], [fields[i] for i in k_index]))
    return rows


def _sdf_rows(text, smiles_column, names, keep, limits) -> list[_Row]:
    from rdkit import Chem

    records = _sdf_records(text, limits)
    present = set(k for r in records for k in r.data)
    missing = [c for c in names + keep if c not in present]
    if missing:
        raise DatasetError(f"No record of the SDF has the property {missing[0]!r} "
                           f"(properties: {', '.join(sorted(present)) or 'none'}).")
    from_property = smiles_column not in (None, SDF_MOLECULE)
    if from_property and smiles_column not in present:
        raise DatasetError(f"No record of the SDF has the SMILES property {smiles_column!r}.")
    mol_limits = _molecule_limits(limits)
    rows = []
    for r in records:
        if from_property:
            smiles, error = _canonical(r.data.get(smiles_column, ""), r.row, smiles_column, mol_limits)
        elif r.mol is None:
            smiles, error = None, RowError(r.row, "molecule", r.error)
        else:
            smiles, error = Chem.MolToSmiles(r.mol), None
        rows.append(_Row(r.row, smiles, error, [r.data.get(n, "") for n in names],
                         [r.data.get(k, "") for k in keep]))
    return rows


def _build(rows: list[_Row], names: list[str], requested: dict, keep: list[str]) -> Table:
    # Tasks come from every row whose cells are there, so that a bad SMILES
    # does not change what a column is.
    tasks = []
    for j, name in enumerate(names):
        task = requested[name] or _infer_task(r.cells[j] for r in rows if r.cells)
        if task is None:
            sample = next((r.cells[j] for r in rows if r.cells and r.cells[j].strip()), "")
            raise DatasetError(f"No numeric target: column {name!r} is not numeric"
                               + (f" (first value {_short(sample)!r})." if sample else " (every cell is empty)."))
        tasks.append(task)

    errors: list[RowError] = []
    good: list[tuple[_Row, list[float]]] = []
    for r in rows:
        if r.error is not None:
            errors.append(r.error)
            continue
        labels, error = _labels(r, names, tasks)
        if error is not None:
            errors.append(error)
        else:
            good.append((r, labels))
    if not good:
        reasons = "; ".join(e.message for e in errors[:3])
        raise DatasetError(f"All {len(rows):,} rows are invalid. The first: {reasons}")

    table = _merge(good, names, tasks, keep, errors)
    table.errors = sorted(table.errors, key=lambda e: e.row)
    _check_whole(table)
    return table


def _labels(r: _Row, names, tasks) -> tuple[list[float], RowError | None]:
    labels = []
    for name, task, cell in zip(names, tasks, r.cells):
        try:
            value = _value(cell)
        except ValueError:
            return [], RowError(r.row, name, f"row {r.row}: {_short(cell.strip())!r} in column {name!r} "
                                             f"is not a number")
        if value is not None and task == CLASSIFICATION and value not in (0.0, 1.0):
            return [], RowError(r.row, name, f"row {r.row}: {_short(cell.strip())!r} in column {name!r} is not "
                                             f"a class label (classification takes 0/1 or true/false)")
        if value is not None and task == REGRESSION and cell.strip().lower() in _TRUE | _FALSE:
            return [], RowError(r.row, name, f"row {r.row}: {cell.strip()!r} in column {name!r} is not a number "
                                             f"(a regression target)")
        labels.append(math.nan if value is None else value)
    if all(math.isnan(v) for v in labels):
        return [], RowError(r.row, ", ".join(names), f"row {r.row}: no label in any target column")
    return labels, None


def _merge(good, names, tasks, keep, errors) -> Table:
    """Apply DUPLICATE_RULE; every merge is recorded in table.duplicates."""
    y_all = np.array([labels for _, labels in good], dtype=np.float64)
    spread = [float(np.nanstd(y_all[:, j], ddof=1)) if np.sum(~np.isnan(y_all[:, j])) > 1 else 0.0
              for j in range(len(names))]
    groups: dict[str, list[int]] = {}
    for i, (r, _) in enumerate(good):
        groups.setdefault(r.smiles, []).append(i)

    smiles, y, rows, kept, duplicates = [], [], [], {k: [] for k in keep}, []
    for smi, members in groups.items():
        first = good[members[0]][0]
        block = y_all[members]
        if len(members) == 1:
            merged = block[0]
        else:
            merged, record = _merge_group(smi, [good[i][0].row for i in members], block, names, tasks, spread)
            duplicates.append(record)
            record["kept"] = not np.all(np.isnan(merged))
            if not record["kept"]:
                for i in members:
                    errors.append(RowError(good[i][0].row, ", ".join(names),
                                           f"row {good[i][0].row}: duplicate of rows "
                                           f"{', '.join(str(good[m][0].row) for m in members)} with contradicting "
                                           f"labels, no label left"))
                continue
        smiles.append(smi)
        y.append(merged)
        rows.append(first.row)
        for k, cell in zip(keep, first.kept):
            kept[k].append(cell)
    y_matrix = np.array(y, dtype=np.float64).reshape(len(smiles), len(names))
    return Table(smiles=smiles, y=y_matrix, targets=list(names), tasks=list(tasks), rows=rows, columns=kept,
                 errors=errors, duplicates=duplicates)


def _merge_group(smi, source_rows, block, names, tasks, spread):
    merged = np.full(len(names), np.nan)
    per_target, flagged = {}, False
    for j, (name, task) in enumerate(zip(names, tasks)):
        values = block[:, j][~np.isnan(block[:, j])]
        if len(values) == 0:
            continue
        if task == REGRESSION:
            merged[j] = float(values.mean())
            disagree = len(values) > 1 and float(values.max() - values.min()) > spread[j]
            flagged |= disagree
            action = "averaged, spread over 1 sd" if disagree else "averaged"
        elif len(set(values.tolist())) == 1:
            merged[j], action = values[0], "agreed"
        else:
            action, flagged = "contradictory, dropped", True
        per_target[name] = {"values": [float(v) for v in values], "action": action,
                            "label": None if np.isnan(merged[j]) else float(merged[j])}
    return merged, {"smiles": smi, "rows": list(source_rows), "targets": per_target, "flagged": flagged}


def _check_whole(table: Table) -> None:
    if len(table) < MIN_ROWS:
        raise DatasetError(f"Only {len(table)} valid molecule{'s' if len(table) != 1 else ''} "
                           f"({len(table.errors)} row errors); a dataset needs at least {MIN_ROWS}.")
    for j, (name, task) in enumerate(zip(table.targets, table.tasks)):
        values = table.y[:, j][~np.isnan(table.y[:, j])]
        if len(values) == 0:
            raise DatasetError(f"Target {name!r} has no label on any valid row.")
        if task == REGRESSION and float(values.max()) == float(values.min()):
            raise DatasetError(f"Target {name!r} is constant (every label is {values[0]:g}): "
                               f"there is nothing to learn.")
        if task == CLASSIFICATION and len(set(values.tolist())) < 2:
            raise DatasetError(f"Target {name!r} has one class only (every label is {int(values[0])}): "
                               f"a classifier needs both 0 and 1.")


# --- storage ------------------------------------------------------------------

_COLUMN = "column"


def table_to_csv(table: Table) -> str:
    """A plain CSV a spreadsheet opens: `smiles`, `row` (the source row), one
    `<task>:<target>` column per target (empty = no label) and one
    `column:<name>` per kept column. Errors and duplicates are not in it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["smiles", "row"] + [f"{task}:{name}" for name, task in zip(table.targets, table.tasks)]
                    + [f"{_COLUMN}:{k}" for k in table.columns])
    for i, smi in enumerate(table.smiles):
        labels = ["" if math.isnan(v) else repr(float(v)) for v in table.y[i]]
        writer.writerow([smi, table.rows[i]] + labels + [table.columns[k][i] for k in table.columns])
    return out.getvalue()


def table_from_csv(text: str) -> Table:
    """The table `table_to_csv` wrote (trusted: the SMILES are already canonical)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header or header[:2] != ["smiles", "row"]:
        raise DatasetError("Not a stored training table: the header must start with smiles,row.")
    targets, tasks, kept = [], [], []
    for name in header[2:]:
        prefix, _, rest = name.partition(":")
        if prefix in TASKS and not kept:
            targets.append(rest)
            tasks.append(prefix)
        elif prefix == _COLUMN:
            kept.append(rest)
        else:
            raise DatasetError(f"Not a stored training table: unexpected column {name!r}.")
    smiles, rows, y, columns = [], [], [], {k: [] for k in kept}
    for number, fields in enumerate(reader, start=1):
        if len(fields) != len(header):
            raise DatasetError(f"Stored table row {number}: {len(fields)} fields where the header has {len(header)}.")
        smiles.append(fields[0])
        rows.append(int(fields[1]))
        y.append([float(v) if v else math.nan for v in fields[2:2 + len(targets)]])
        for k, cell in zip(kept, fields[2 + len(targets):]):
            columns[k].append(cell)
    return Table(smiles=smiles, y=np.array(y, dtype=np.float64).reshape(len(smiles), len(targets)),
                 targets=targets, tasks=tasks, rows=rows, columns=columns)


def table_hash(table: Table) -> str:
    """sha256 of the stored table: two uploads that validate to the same
    molecules, labels and kept columns have the same hash whatever their
    delimiter, column order or duplicates."""
    return hashlib.sha256(table_to_csv(table).encode("utf-8")).hexdigest()


# --- statistics ----------------------------------------------------------------

def counts(table: Table) -> dict:
    """What became of the file's rows: every row read is a molecule, merged
    into one (a duplicate) or a row error."""
    merged = sum(len(d["rows"]) - 1 for d in table.duplicates if d.get("kept", True))
    errors = len({e.row for e in table.errors})
    return {"rows_read": len(table) + merged + errors, "molecules": len(table), "row_errors": errors,
            "duplicate_molecules": sum(1 for d in table.duplicates if d.get("kept", True)),
            "rows_merged": merged, "flagged_duplicates": sum(1 for d in table.duplicates if d["flagged"])}


def target_stats(table: Table) -> dict:
    """Per target: how many rows are labelled, and the distribution the dataset
    page draws (a 20-bin numpy histogram, or the class counts)."""
    stats = {}
    for j, (name, task) in enumerate(zip(table.targets, table.tasks)):
        values = table.y[:, j][~np.isnan(table.y[:, j])]
        entry = {"task": task, "n": int(len(values)), "missing": int(len(table) - len(values))}
        if task == REGRESSION and len(values):
            counts, edges = np.histogram(values, bins=HISTOGRAM_BINS)
            entry.update(mean=float(values.mean()), sd=float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                         min=float(values.min()), max=float(values.max()),
                         histogram={"counts": counts.tolist(), "edges": edges.tolist()},
                         method=f"sample mean and sd (n-1); numpy histogram, {HISTOGRAM_BINS} equal-width bins")
        elif task == CLASSIFICATION:
            positives = int((values == 1).sum())
            entry.update(counts={"0": int(len(values) - positives), "1": positives},
                         positive_fraction=float(positives / len(values)) if len(values) else None,
                         method="label counts over the labelled rows")
        stats[name] = entry
    return stats
