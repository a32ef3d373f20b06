"""FASTA parsing and per-record validation for the protein analysis job.

Whole-input problems (too big, binary, not FASTA at all) raise; problems in
one record are returned as RecordError so the good records still get
analysed.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

STANDARD_LETTERS = "ACDEFGHIKLMNPQRSTVWY"
# X unknown, B = D/N, Z = E/Q, J = I/L, U selenocysteine, O pyrrolysine.
# They are accepted, but Biopython's tables have no (or only partial) values
# for them, so protparam treats them separately.
NONSTANDARD_LETTERS = "XBZJUO"
PROTEIN_LETTERS = frozenset(STANDARD_LETTERS + NONSTANDARD_LETTERS)

# The residue-count rule every protein record must meet (the form states it).
MIN_LENGTH = 10
MAX_LENGTH = 2000

# Only A, C, G, T/U and N: a nucleotide sequence pasted by mistake.
_NUCLEOTIDE_LETTERS = frozenset("ACGTUN")


class InputTooLarge(ValueError):
    """The whole input exceeds a size or record-count cap."""


class NotFasta(ValueError):
    """The whole input is not FASTA text (binary, empty or free text)."""


@dataclass
class Record:
    id: str
    description: str
    sequence: str
    # 1-based position in the input, as error messages count it.
    index: int = field(default=0, compare=False)


@dataclass
class RecordError:
    index: int
    id: str
    field: str
    message: str


def parse_fasta(
    text: str | bytes,
    *,
    max_bytes: int = 2_000_000,
    max_records: int = 10_000,
    min_length: int = MIN_LENGTH,
    max_length: int = MAX_LENGTH,
) -> tuple[list[Record], list[RecordError]]:
    """Return the valid records and one error per problem in the others."""
    text = _to_text(text, max_bytes)
    raw = _split_records(text)
    if len(raw) > max_records:
        raise InputTooLarge(
            f"The input has {len(raw):,} records; the limit is "
            f"{max_records:,} per job. Split it into smaller files."
        )

    records: list[Record] = []
    errors: list[RecordError] = []
    first_index_of: dict[str, int] = {}
    for index, (header, seq_lines) in enumerate(raw, start=1):
        record = _make_record(header, seq_lines, index)
        record_errors = _check_id(index, record.id, first_index_of)
        seq_error = _check_sequence(index, record, min_length, max_length)
        if seq_error:
            record_errors.append(seq_error)
        if record_errors:
            errors.extend(record_errors)
        else:
            records.append(record)
    return records, errors


def to_fasta(records: list[Record]) -> str:
    """Records as FASTA text that parses back to the same records: the
    canonical input a job stores once its records are checked."""
    return "".join(f">{r.id} {r.description}".rstrip() + f"\n{r.sequence}\n" for r in records)


def read_records(text: str) -> list[Record]:
    """The records of FASTA text already checked by parse_fasta (a job's
    canonical input), without checking them again."""
    return [_make_record(header, lines, index)
            for index, (header, lines) in enumerate(_split_records(_to_text(text, len(text.encode()) + 1)),
                                                    start=1)]


def ambiguous_letters(seq: str) -> dict[str, int]:
    """Count the accepted letters that are not among the 20 standard ones."""
    seq = seq.upper()
    counts = {letter: seq.count(letter) for letter in NONSTANDARD_LETTERS}
    return {letter: n for letter, n in counts.items() if n}


def _to_text(data: str | bytes, max_bytes: int) -> str:
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8"))
    if size > max_bytes:
        raise InputTooLarge(
            f"The input is {_format_size(size)}; the limit is "
            f"{_format_size(max_bytes)}."
        )
    if isinstance(data, bytes):
        if b"\x00" in data:
            raise NotFasta(_BINARY_MESSAGE)
        try:
            # utf-8-sig drops the byte-order mark some Windows editors add.
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise NotFasta(_BINARY_MESSAGE) from None
    elif "\x00" in data:
        raise NotFasta(_BINARY_MESSAGE)
    data = data.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not data.strip():
        raise NotFasta("The input is empty: paste or upload FASTA text.")
    return data


_BINARY_MESSAGE = (
    "The file is not text (it looks binary). Upload a plain-text FASTA file, "
    "not a Word document, archive or image."
)


def _format_size(n_bytes: int) -> str:
    # Decimal units, because the caps are set as round decimal numbers.
    if n_bytes >= 1_000_000:
        return f"{n_bytes / 1_000_000:.3g} MB"
    if n_bytes >= 1000:
        return f"{n_bytes / 1000:.3g} kB"
    return f"{n_bytes} bytes"


def _split_records(text: str) -> list[tuple[str | None, list[str]]]:
    """Split into (header or None for a bare sequence, sequence lines)."""
    lines = text.split("\n")
    if not any(line.startswith(">") for line in lines):
        _require_bare_sequence(lines)
        return [(None, lines)]

    raw: list[tuple[str | None, list[str]]] = []
    for number, line in enumerate(lines, start=1):
        if line.startswith(">"):
            raw.append((line[1:], []))
        elif raw:
            raw[-1][1].append(line)
        elif line.strip():
            raise NotFasta(
                f"Line {number} comes before the first '>' header line. "
                "FASTA records start with a line such as '>my_protein'; "
                "remove the text above it."
            )
    return raw


def _require_bare_sequence(lines: list[str]) -> None:
    for number, line in enumerate(lines, start=1):
        for char in line:
            if not (char in string.ascii_letters or char.isspace() or char == "*"):
                raise NotFasta(
                    "This is not FASTA: there is no header line starting "
                    "with '>' and the text is not a plain amino-acid "
                    f"sequence (line {number} contains {char!r})."
                )


# Only a-z: str.upper() would turn "ß" into "SS" and "ﬁ" into "FI", valid
# letters the user never typed.
_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)


def _make_record(header: str | None, seq_lines: list[str], index: int = 0) -> Record:
    if header is None:
        record_id, description = "seq1", ""
    else:
        parts = header.strip().split(maxsplit=1)
        record_id = parts[0] if parts else ""
        description = parts[1] if len(parts) > 1 else ""
    sequence = "".join("".join(seq_lines).split()).translate(_ASCII_UPPER)
    # A single trailing '*' is the stop codon of a translated ORF.
    if sequence.endswith("*"):
        sequence = sequence[:-1]
    return Record(id=record_id, description=description, sequence=sequence, index=index)


def _name(index: int, record_id: str) -> str:
    return f"Record {index} ({record_id})" if record_id else f"Record {index}"


def _check_id(
    index: int, record_id: str, first_index_of: dict[str, int]
) -> list[RecordError]:
    if not record_id:
        return [RecordError(index, "", "id", f"Record {index}: the header line has no id")]
    if record_id in first_index_of:
        first = first_index_of[record_id]
        return [
            RecordError(
                index,
                record_id,
                "id",
                f"{_name(index, record_id)}: the id is already used by "
                f"record {first}; ids must be unique",
            )
        ]
    first_index_of[record_id] = index
    return []


def _check_sequence(
    index: int, record: Record, min_length: int, max_length: int
) -> RecordError | None:
    seq = record.sequence
    name = _name(index, record.id)

    def error(message: str) -> RecordError:
        return RecordError(index, record.id, "sequence", f"{name}: {message}")

    if not seq:
        return error("the sequence is empty")
    for position, char in enumerate(seq, start=1):
        if char not in PROTEIN_LETTERS:
            return error(
                "sequence contains a character that is not an amino-acid "
                f"letter: {char!r} at position {position}{_hint(char)}"
            )
    kind = _nucleotide_kind(seq)
    if kind:
        return error(
            f"sequence looks like {kind}, not protein (it has only the "
            "letters A, C, G, T, U and N); translate it first"
        )
    if not min_length <= len(seq) <= max_length:
        return error(
            f"sequence is {len(seq):,} residues long; allowed lengths are "
            f"{min_length:,} to {max_length:,}"
        )
    return None


def _hint(char: str) -> str:
    if char == "*":
        return " (a stop codon inside the sequence)"
    if char in "-.":
        return " (an alignment gap; remove gaps before analysis)"
    return ""


def _nucleotide_kind(seq: str) -> str | None:
    letters = set(seq)
    if not letters <= _NUCLEOTIDE_LETTERS:
        return None
    # A peptide such as poly-alanine also uses only these letters; real
    # nucleotide sequences of a useful length show at least three bases.
    if len(letters & set("ACGTU")) < 3:
        return None
    if "U" in letters and "T" not in letters:
        return "RNA"
    return "DNA"
