"""ATOMICA interaction records: reading and writing ``.jsonl.gz`` files.

A record is one interaction complex in ATOMICA's block/atom layout, as written
by ATOMICA's ``data/process_pdbs.py`` + ``dataset_to_compressed_jsonl``: one
JSON object per line, gzip-compressed, with the arrays under ``data``::

    {"data": {"X": [[x, y, z], ...], "B": [...], "A": [...],
              "atom_positions": [...], "block_lengths": [...], "segment_ids": [...]},
     "block_to_pdb_indexes": {"1": "A_70", ...},
     "id": "1eve_A_A_E20"}

Blocks are residues, nucleotides, ligand fragments or single atoms; each
segment (receptor side 0, partner side 1) starts with a global block holding
one global atom at the segment centroid. Atoms of a block are contiguous.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .vocab import GLOBAL_ATOM, GLOBAL_BLOCK

_INT_FIELDS = ("B", "A", "block_lengths", "segment_ids")


@dataclass(frozen=True, eq=False)
class AtomicaRecord:
    """One complex. Arrays are numpy; coordinates stay float64 as read, and are
    rounded to float32 only when batched for the model (as ATOMICA's collate does)."""

    id: str
    X: np.ndarray  # [Na, 3] float64, Angstrom
    B: np.ndarray  # [Nb] int64 block types
    A: np.ndarray  # [Na] int64 atom types (element Z + 2; 2 = global atom)
    block_lengths: np.ndarray  # [Nb] int64 atoms per block
    segment_ids: np.ndarray  # [Nb] int64
    atom_positions: np.ndarray | None = None  # [Na] int64; unused by the model
    block_to_pdb_indexes: dict[int, str] = field(default_factory=dict)
    # Top-level keys other than data/id/block_to_pdb_indexes, kept for round trips.
    extra: dict = field(default_factory=dict)

    @property
    def num_blocks(self) -> int:
        return int(self.B.shape[0])

    @property
    def num_atoms(self) -> int:
        return int(self.A.shape[0])

    @property
    def is_global_block(self) -> np.ndarray:
        return self.B == GLOBAL_BLOCK

    @property
    def is_global_atom(self) -> np.ndarray:
        return self.A == GLOBAL_ATOM

    @property
    def atom_block_index(self) -> np.ndarray:
        """For every atom, the index of its block."""
        return np.repeat(np.arange(self.num_blocks), self.block_lengths)


def _fail(record_name: str, field_name: str, problem: str) -> ValueError:
    return ValueError(f"ATOMICA record {record_name}: field {field_name!r} {problem}")


def _int_array(values, record_name: str, field_name: str) -> np.ndarray:
    if not isinstance(values, list):
        raise _fail(record_name, field_name, f"must be a list of integers, got {type(values).__name__}")
    for position, value in enumerate(values):
        # bool is an int subclass but never a valid index here.
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(record_name, field_name, f"item {position} is {value!r}, not an integer")
        if value < 0:
            raise _fail(record_name, field_name, f"item {position} is negative ({value})")
    return np.asarray(values, dtype=np.int64).reshape(len(values))


def _coordinates(values, record_name: str) -> np.ndarray:
    if not isinstance(values, list):
        raise _fail(record_name, "data.X", f"must be a list of [x, y, z], got {type(values).__name__}")
    for position, row in enumerate(values):
        if not (isinstance(row, list) and len(row) == 3):
            raise _fail(record_name, "data.X", f"item {position} is {row!r}, not [x, y, z]")
        for value in row:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise _fail(record_name, "data.X", f"item {position} has a non-finite or non-numeric value {value!r}")
    return np.asarray(values, dtype=np.float64).reshape(len(values), 3)


def record_from_dict(item: dict, where: str = "") -> AtomicaRecord:
    """Validate one decoded JSON record. ``where`` (e.g. "line 3 of x.jsonl.gz")
    names the record in error messages until its id is known."""
    if not isinstance(item, dict):
        raise ValueError(f"ATOMICA record {where or '?'}: expected a JSON object, got {type(item).__name__}")
    record_id = item.get("id")
    name = repr(record_id) if isinstance(record_id, str) else (where or "?")
    if where and isinstance(record_id, str):
        name = f"{record_id!r} ({where})"
    if not isinstance(record_id, str) or not record_id:
        raise _fail(name, "id", "must be a non-empty string")

    data = item.get("data")
    if not isinstance(data, dict):
        raise _fail(name, "data", "must be an object holding X, B, A, block_lengths, segment_ids")
    for key in ("X", *_INT_FIELDS):
        if key not in data:
            raise _fail(name, f"data.{key}", "is missing")

    X = _coordinates(data["X"], name)
    arrays = {key: _int_array(data[key], name, f"data.{key}") for key in _INT_FIELDS}
    atom_positions = None
    if data.get("atom_positions") is not None:
        atom_positions = _int_array(data["atom_positions"], name, "data.atom_positions")

    num_blocks = arrays["B"].shape[0]
    num_atoms = arrays["A"].shape[0]
    if num_blocks == 0:
        raise _fail(name, "data.B", "is empty; a record needs at least one block")
    for key in ("block_lengths", "segment_ids"):
        if arrays[key].shape[0] != num_blocks:
            raise _fail(name, f"data.{key}", f"has {arrays[key].shape[0]} items but data.B has {num_blocks}")
    if (arrays["block_lengths"] < 1).any():
        raise _fail(name, "data.block_lengths", "has a block with no atoms")
    if int(arrays["block_lengths"].sum()) != num_atoms:
        raise _fail(name, "data.block_lengths",
                    f"sums to {int(arrays['block_lengths'].sum())} atoms but data.A has {num_atoms}")
    if X.shape[0] != num_atoms:
        raise _fail(name, "data.X", f"has {X.shape[0]} coordinates but data.A has {num_atoms} atoms")
    if atom_positions is not None and atom_positions.shape[0] != num_atoms:
        raise _fail(name, "data.atom_positions", f"has {atom_positions.shape[0]} items but data.A has {num_atoms}")

    raw_map = item.get("block_to_pdb_indexes", {}) or {}
    if not isinstance(raw_map, dict):
        raise _fail(name, "block_to_pdb_indexes", "must be an object mapping block index to 'chain_resseq'")
    block_map: dict[int, str] = {}
    for key, value in raw_map.items():
        try:
            index = int(key)
        except (TypeError, ValueError):
            raise _fail(name, "block_to_pdb_indexes", f"has a key {key!r} that is not a block index") from None
        if not 0 <= index < num_blocks or not isinstance(value, str):
            raise _fail(name, "block_to_pdb_indexes", f"has an invalid entry {key!r}: {value!r}")
        block_map[index] = value

    extra = {k: v for k, v in item.items() if k not in ("id", "data", "block_to_pdb_indexes")}
    return AtomicaRecord(
        id=record_id, X=X, atom_positions=atom_positions, block_to_pdb_indexes=block_map,
        extra=extra, **arrays,
    )


def record_to_dict(record: AtomicaRecord) -> dict:
    """The JSON object ATOMICA writes for ``record`` (block indices as string keys)."""
    data = {"X": record.X.tolist(), "B": record.B.tolist(), "A": record.A.tolist()}
    if record.atom_positions is not None:
        data["atom_positions"] = record.atom_positions.tolist()
    data["block_lengths"] = record.block_lengths.tolist()
    data["segment_ids"] = record.segment_ids.tolist()
    item = {"data": data}
    if record.block_to_pdb_indexes:
        item["block_to_pdb_indexes"] = {str(k): v for k, v in record.block_to_pdb_indexes.items()}
    item["id"] = record.id
    item.update(record.extra)
    return item


def iter_records(path: str | Path) -> Iterator[AtomicaRecord]:
    """Records of an ATOMICA ``.jsonl.gz`` file (plain ``.jsonl`` also accepted), in file order."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"line {line_number} of {path.name}"
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"ATOMICA record {where}: not valid JSON ({exc})") from None
            yield record_from_dict(item, where)


def read_records(path: str | Path) -> list[AtomicaRecord]:
    return list(iter_records(path))


def write_records(path: str | Path, records: Iterable[AtomicaRecord]) -> None:
    """Write records in ATOMICA's format. Python's float repr round-trips, so
    coordinates read back bit for bit."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as handle:
        for record in records:
            handle.write(record_line(record))


def record_line(record: AtomicaRecord) -> str:
    """One line of an ATOMICA .jsonl file."""
    return json.dumps(record_to_dict(record), separators=(",", ":")) + "\n"
