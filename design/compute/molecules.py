"""Reading molecules from SMILES text, CSV and SDF with row-level errors.

A batch upload should never fail as a whole because one row is bad: every
reader returns one `MoleculeRecord` per input row, and a row RDKit rejects
carries RDKit's own message in `error` instead of a molecule.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from rdkit import Chem, rdBase

__all__ = [
    "MoleculeLimits",
    "NO_LIMITS",
    "MoleculeTooLarge",
    "MoleculeRecord",
    "parse_smiles",
    "parse_molblock",
    "to_mol",
    "read_smiles",
    "read_csv",
    "read_sdf",
    "read_molecules",
    "valid",
    "iter_lines",
    "sniff_format",
    "count_records",
]

SMILES_COLUMN_NAMES = ("smiles", "canonical_smiles", "smi", "SMILES")
NAME_COLUMN_NAMES = ("name", "id", "mol_id", "compound id", "compound_id", "title")


# An RDKit message can list every atom of a molecule ("Unkekulized atoms:
# 0 1 2 ..."); a row error stays readable and a batch's result stays small.
MAX_MESSAGE_CHARS = 300
MAX_ECHO_CHARS = 80


@dataclass(frozen=True)
class MoleculeLimits:
    """Size caps on one molecule, checked before RDKit's costly steps
    (sanitisation, ring perception, descriptors, depiction), whose time grows
    faster than linearly on large or ring-rich graphs. None = no cap. The
    callers read the values from settings; this module knows no Django."""

    max_heavy_atoms: int | None = None
    max_smiles_chars: int | None = None
    max_molblock_chars: int | None = None
    # A time.monotonic() value: records not yet read by then are row errors
    # ("not read") instead of a job killed at its time limit with nothing saved.
    deadline: float | None = None


NO_LIMITS = MoleculeLimits()


class MoleculeTooLarge(ValueError):
    """A molecule over one of the MoleculeLimits; the message names the cap."""


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _check_length(text: str, cap: int | None, what: str, kind: str) -> None:
    if cap is not None and len(text) > cap:
        raise MoleculeTooLarge(f"{what}: {kind} of {len(text):,} characters, over the limit of {cap:,}")


OUT_OF_TIME = "not read: the job's time budget ran out"


def _out_of_time(limits: MoleculeLimits) -> bool:
    return limits.deadline is not None and time.monotonic() > limits.deadline


def _check_heavy_atoms(mol: Chem.Mol, cap: int | None, what: str) -> None:
    """Counted on the unsanitised molecule, so before ring perception; every
    atom but hydrogen counts (dummy atoms too, or "*" * 10**6 would pass)."""
    if cap is None:
        return
    heavy = sum(1 for atom in mol.GetAtoms() if atom.GetAtomicNum() != 1)
    if heavy > cap:
        raise MoleculeTooLarge(f"{what}: {heavy:,} heavy atoms, over the limit of {cap:,}")


@dataclass
class MoleculeRecord:
    """One input row. `row` is 1-based (the header of a CSV is row 0, so a CSV
    row number matches what a spreadsheet shows minus one); `mol` is None
    exactly when `error` is set."""

    row: int
    name: str
    source: str
    mol: Chem.Mol | None = None
    error: str | None = None
    data: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.mol is not None

    @property
    def smiles(self) -> str | None:
        return Chem.MolToSmiles(self.mol) if self.mol is not None else None

    def as_dict(self) -> dict:
        return {"row": self.row, "name": self.name, "input": self.source,
                "smiles": self.smiles, "error": self.error, "data": dict(self.data)}


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@contextmanager
def _rdkit_messages() -> Iterator[list[str]]:
    """RDKit reports *why* a SMILES is bad only through its logger, so route
    the logger to Python for the duration and collect what it says."""
    rdBase.LogToPythonLogger()
    logger = logging.getLogger("rdkit")
    handler = _Capture()
    logger.addHandler(handler)
    old_propagate = logger.propagate
    logger.propagate = False
    # Meeko raises the level of its own handler; ours must see errors at least.
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = old_propagate
        logger.setLevel(old_level)


def _clean(messages: list[str]) -> str:
    lines = []
    for msg in messages:
        for line in str(msg).splitlines():
            line = line.strip()
            if line.startswith("[") and "]" in line[:12]:
                line = line.split("]", 1)[1].strip()
            if line and line not in lines:
                lines.append(line)
    return _shorten("; ".join(lines), MAX_MESSAGE_CHARS)


def _sanitize(mol: Chem.Mol, what: str) -> Chem.Mol:
    try:
        Chem.SanitizeMol(mol)
    except Exception as exc:  # RDKit raises several sanitisation exception types
        raise ValueError(f"{what}: {_shorten(str(exc), MAX_MESSAGE_CHARS)}") from None
    if mol.GetNumAtoms() == 0:
        raise ValueError(f"{what}: no atoms")
    return mol


def parse_smiles(smiles: str, what: str = "SMILES", limits: MoleculeLimits = NO_LIMITS) -> Chem.Mol:
    """Parse and sanitise one SMILES; `ValueError` carries RDKit's reason and
    `what` (e.g. "row 12 (TOX24723)") so a message names its record. The
    length cap is checked before RDKit sees the text, the heavy-atom cap
    before sanitisation."""
    if smiles is None or not str(smiles).strip():
        raise ValueError(f"{what}: empty SMILES")
    # Some public files (ESOL's first row) carry trailing spaces that RDKit
    # would read as the start of a molecule name.
    text = str(smiles).strip()
    _check_length(text, limits.max_smiles_chars, what, "a SMILES")
    with _rdkit_messages() as messages:
        mol = Chem.MolFromSmiles(text, sanitize=False)
    if mol is None:
        reason = _clean(messages) or "RDKit could not parse the SMILES"
        raise ValueError(f"{what}: {reason} ({_shorten(text, MAX_ECHO_CHARS)!r})")
    _check_heavy_atoms(mol, limits.max_heavy_atoms, what)
    return _sanitize(mol, what)


def parse_molblock(block: str, what: str = "molfile", remove_hs: bool = True,
                   limits: MoleculeLimits = NO_LIMITS) -> Chem.Mol:
    _check_length(block, limits.max_molblock_chars, what, "a molfile")
    with _rdkit_messages() as messages:
        mol = Chem.MolFromMolBlock(block, sanitize=False, removeHs=False)
    if mol is None:
        raise ValueError(f"{what}: {_clean(messages) or 'RDKit could not parse the molfile'}")
    _check_heavy_atoms(mol, limits.max_heavy_atoms, what)
    mol = _sanitize(mol, what)
    return Chem.RemoveHs(mol) if remove_hs else mol


def to_mol(smiles_or_mol, what: str = "molecule", limits: MoleculeLimits = NO_LIMITS) -> Chem.Mol:
    if isinstance(smiles_or_mol, Chem.Mol):
        _check_heavy_atoms(smiles_or_mol, limits.max_heavy_atoms, what)
        return smiles_or_mol
    if isinstance(smiles_or_mol, str):
        if "\n" in smiles_or_mol and "M  END" in smiles_or_mol:
            return parse_molblock(smiles_or_mol, what, limits=limits)
        return parse_smiles(smiles_or_mol, what, limits)
    raise ValueError(f"{what}: expected a SMILES string or an RDKit molecule, got {type(smiles_or_mol).__name__}")


def _text(source) -> str:
    """Accept a path, a file object or the text itself."""
    if hasattr(source, "read"):
        data = source.read()
        return data.decode("utf-8-sig") if isinstance(data, bytes) else data
    if isinstance(source, bytes):
        return source.decode("utf-8-sig")
    if isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source
                                           and len(source) < 4096 and os.path.isfile(source)):
        with open(source, encoding="utf-8-sig") as handle:
            return handle.read()
    return str(source)


def _record(row: int, name: str, smiles: str, data: dict | None = None,
            limits: MoleculeLimits = NO_LIMITS) -> MoleculeRecord:
    label = f"row {row}" + (f" ({name})" if name else "")
    rec = MoleculeRecord(row=row, name=name, source=(smiles or "").strip(), data=data or {})
    if _out_of_time(limits):
        rec.error = f"{label}: {OUT_OF_TIME}"
        return rec
    try:
        rec.mol = parse_smiles(smiles, label, limits)
    except ValueError as exc:
        rec.error = str(exc)
    return rec


# Lines end at \n, \r\n or \r, the same for the readers (worker) and the
# counts (web), so both number rows alike.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def iter_lines(text: str) -> Iterator[str]:
    """The lines of `text` with their endings, one at a time: a 5 MB upload
    is not copied into a list of lines."""
    for match in _LINE.finditer(text):
        yield match.group()


def read_smiles(source, limits: MoleculeLimits = NO_LIMITS) -> list[MoleculeRecord]:
    """One molecule per line: `SMILES [name]`, blank lines and `#` comments skipped."""
    records = []
    for lineno, line in enumerate(iter_lines(_text(source)), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = stripped.split(None, 1)
        records.append(_record(lineno, parts[1].strip() if len(parts) > 1 else "", parts[0], limits=limits))
    return records


def _pick(header: list[str], wanted: str | None, candidates, kind: str) -> str | None:
    if wanted is not None:
        if wanted not in header:
            raise ValueError(f"CSV: no column {wanted!r} for the {kind} (columns: {', '.join(header)})")
        return wanted
    lower = {h.lower().strip(): h for h in header}
    for cand in candidates:
        if cand.lower() in lower:
            return lower[cand.lower()]
    return None


def _first_line(text: str) -> str:
    end = text.find("\n")
    return text if end < 0 else text[:end]


def _csv_reader(text: str, smiles_column: str | None, name_column: str | None, delimiter: str | None):
    """A DictReader over the lines of `text` (no copy of the text) and the
    SMILES and name columns it found; ValueError names a missing column."""
    if delimiter is None:
        first = _first_line(text)
        delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.DictReader(iter_lines(text), delimiter=delimiter)
    header = reader.fieldnames or []
    if not header:
        raise ValueError("CSV: empty file or no header row")
    smiles_col = _pick(header, smiles_column, SMILES_COLUMN_NAMES, "SMILES")
    if smiles_col is None:
        raise ValueError(f"CSV: no SMILES column found (columns: {', '.join(header)})")
    return reader, smiles_col, _pick(header, name_column, NAME_COLUMN_NAMES, "name")


def read_csv(source, smiles_column: str | None = None, name_column: str | None = None,
             delimiter: str | None = None, limits: MoleculeLimits = NO_LIMITS) -> list[MoleculeRecord]:
    """A CSV/TSV with a header. Other columns are kept in `record.data`."""
    reader, smiles_col, name_col = _csv_reader(_text(source), smiles_column, name_column, delimiter)
    records = []
    for row, fields in enumerate(reader, start=1):
        name = (fields.get(name_col) or "").strip() if name_col else ""
        data = {k: v for k, v in fields.items() if k not in (smiles_col, name_col) and k is not None}
        records.append(_record(row, name, fields.get(smiles_col) or "", data, limits))
    return records


def _sdf_blocks(text: str) -> Iterator[str]:
    """The non-blank records of an SDF text, one at a time."""
    start = 0
    while start < len(text):
        end = text.find("$$$$", start)
        block = text[start:] if end < 0 else text[start:end]
        if block.strip():
            yield block
        if end < 0:
            break
        # The next record starts on the line after "$$$$": its first line is
        # the title, which may be blank, so no other line is skipped.
        newline = text.find("\n", end)
        start = len(text) if newline < 0 else newline + 1


def read_sdf(source, remove_hs: bool = True, limits: MoleculeLimits = NO_LIMITS) -> list[MoleculeRecord]:
    """Every SDF record, with its SD tags in `record.data`; 3D coordinates are kept."""
    text = _text(source)
    records = []
    for i, block in enumerate(_sdf_blocks(text), start=1):
        molblock, _, tags = block.partition("M  END")
        end = molblock.find("\n")
        name = _shorten((molblock if end < 0 else molblock[:end]).strip(), 200)
        data = _sd_tags(tags)
        label = f"record {i}" + (f" ({name})" if name else "")
        rec = MoleculeRecord(row=i, name=name, source=name or f"record {i}", data=data)
        if _out_of_time(limits):
            rec.error = f"{label}: {OUT_OF_TIME}"
            records.append(rec)
            continue
        try:
            rec.mol = parse_molblock(molblock + "M  END\n", label, remove_hs=remove_hs, limits=limits)
            if name:
                rec.mol.SetProp("_Name", name)
        except ValueError as exc:
            rec.error = str(exc)
        records.append(rec)
    return records


def _sd_tags(text: str) -> dict:
    data, key, lines = {}, None, []
    for line in text.splitlines():
        if line.startswith(">"):
            if key is not None:
                data[key] = "\n".join(lines).strip()
            start, end = line.find("<"), line.find(">", line.find("<") + 1)
            key, lines = (line[start + 1:end] if start >= 0 and end > start else line[1:].strip()), []
        elif key is not None:
            lines.append(line)
    if key is not None:
        data[key] = "\n".join(lines).strip()
    return data


def sniff_format(text: str) -> str:
    """"sdf", "csv" or "smi" from the text itself, without copying it."""
    return "sdf" if "M  END" in text else ("csv" if "," in _first_line(text) else "smi")


def count_records(text: str, fmt: str, smiles_column: str | None = None, name_column: str | None = None) -> int:
    """How many records the matching reader will return, without RDKit: a
    streaming count of lines (SMILES), CSV rows or SDF records. The web
    process checks a batch with this and leaves the parsing to the worker.
    A CSV without a SMILES column (or without the named columns) is a
    ValueError, as in read_csv."""
    fmt = fmt.lower().lstrip(".")
    if fmt in ("sdf", "sd", "mol"):
        return sum(1 for _ in _sdf_blocks(text))
    if fmt in ("csv", "tsv"):
        reader, _, _ = _csv_reader(text, smiles_column, name_column, None)
        # The plain reader under the DictReader: no dict per row. Blank rows
        # are skipped, as DictReader skips them.
        return sum(1 for row in reader.reader if row)
    if fmt in ("smi", "smiles", "txt"):
        return sum(1 for line in iter_lines(text) if line.strip() and not line.lstrip().startswith("#"))
    raise ValueError(f"format: unknown molecule format {fmt!r} (use smi, csv or sdf)")


def read_molecules(source, fmt: str | None = None, **options) -> list[MoleculeRecord]:
    """Dispatch on `fmt` ("smi", "csv", "sdf") or on the file name/contents.
    `limits` (a MoleculeLimits) caps each molecule: an over-cap record is a
    row error and the others are read."""
    if fmt is None:
        name = str(source) if isinstance(source, (str, os.PathLike)) and "\n" not in str(source) else ""
        lowered = name.lower()
        if lowered.endswith((".sdf", ".mol", ".sd")):
            fmt = "sdf"
        elif lowered.endswith((".csv", ".tsv")):
            fmt = "csv"
        elif lowered.endswith((".smi", ".smiles", ".txt")):
            fmt = "smi"
        else:
            source = _text(source)
            fmt = sniff_format(source)
    fmt = fmt.lower().lstrip(".")
    if fmt in ("sdf", "sd", "mol"):
        return read_sdf(source, **options)
    if fmt in ("csv", "tsv"):
        return read_csv(source, **options)
    if fmt in ("smi", "smiles", "txt"):
        return read_smiles(source, limits=options.get("limits", NO_LIMITS))
    raise ValueError(f"format: unknown molecule format {fmt!r} (use smi, csv or sdf)")


def valid(records: list[MoleculeRecord]) -> list[MoleculeRecord]:
    return [r for r in records if r.ok]

