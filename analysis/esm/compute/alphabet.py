"""The ESM-1b / ESM-2 vocabulary.

The token list is a fact about the trained models: the embedding matrix of
every ESM-2 checkpoint has one row per entry below, in this order, so the
indices must be exactly the ones fair-esm's ``Alphabet.from_architecture(
"ESM-1b")`` produces. (fair-esm pads its list to a multiple of eight with
``<null_1>`` before appending ``<mask>``; that is why ``<mask>`` is 32.)
"""

from __future__ import annotations

TOKENS: tuple[str, ...] = (
    "<cls>", "<pad>", "<eos>", "<unk>",
    "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K",
    "Q", "N", "F", "Y", "M", "H", "W", "C", "X", "B", "U", "Z",
    "O", ".", "-",
    "<null_1>", "<mask>",
)
TOKEN_INDEX: dict[str, int] = {tok: i for i, tok in enumerate(TOKENS)}

CLS = TOKEN_INDEX["<cls>"]  # the BOS token ESM prepends to every sequence
PAD = TOKEN_INDEX["<pad>"]
EOS = TOKEN_INDEX["<eos>"]
UNK = TOKEN_INDEX["<unk>"]
MASK = TOKEN_INDEX["<mask>"]

# Every single-character token. That is the 20 standard amino acids, the
# ambiguity and rare codes X B U Z O, and the alignment gaps "." and "-":
# the characters fair-esm encodes to a token of their own. J is not among
# them. fair-esm's ``encode`` fails with a bare KeyError on anything else
# (lower case included); we raise a ValueError that says where.
ACCEPTED_RESIDUES: frozenset[str] = frozenset(t for t in TOKENS if len(t) == 1)


def invalid_residues(seq: str) -> list[tuple[int, str]]:
    """(1-based position, character) for every character outside the vocabulary."""
    return [(pos, ch) for pos, ch in enumerate(seq, start=1) if ch not in ACCEPTED_RESIDUES]


def check_residues(seq: str, record_id: str | None = None) -> None:
    """Raise ValueError naming the record and the first few bad characters."""
    bad = invalid_residues(seq)
    if not bad:
        return
    shown = ", ".join(f"{ch!r} at position {pos}" for pos, ch in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    who = f"record {record_id!r}: " if record_id is not None else ""
    hint = " (ESM-2 expects upper-case letters)" if any(ch.islower() for _, ch in bad) else ""
    raise ValueError(f"{who}{shown}{more} not in the ESM-2 alphabet{hint}")


def tokenize(seq: str, record_id: str | None = None) -> list[int]:
    """Token indices for one sequence: <cls>, one token per residue, <eos>."""
    check_residues(seq, record_id)
    return [CLS, *(TOKEN_INDEX[ch] for ch in seq), EOS]
