"""ATOMICA's block and atom vocabularies, read from the bundled ``vocab.json``.

The network only needs a handful of indices from them (the global block, UNK,
the global atom) and the table sizes that fix the embedding shapes. The full
tables are kept so callers can turn indices back into residue, fragment and
element names. See SOURCES.md for where ``vocab.json`` comes from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

VOCAB_PATH = Path(__file__).with_name("vocab.json")

# Indices fixed by ATOMICA's vocabulary layout (vocab.json "special").
PAD_BLOCK = 0
MASK_BLOCK = 1
UNK_BLOCK = 2
GLOBAL_BLOCK = 3
GLOBAL_ATOM = 2
UNKNOWN_ELEMENT = 1

# ATOMICA's base vocabulary (specials, amino acids, nucleotides, elements) has
# 150 block types; a fragmentation method appends its fragment vocabulary.
BASE_BLOCK_TYPES = 150
_FRAGMENT_VOCAB_SIZES = {None: 0, "PS_300": 290}


@dataclass(frozen=True)
class Vocabulary:
    block_symbols: tuple[str, ...]
    block_names: tuple[str, ...]  # three-letter codes, element symbols or fragment SMILES
    atom_symbols: tuple[str, ...]

    @property
    def num_block_types(self) -> int:
        return len(self.block_symbols)

    @property
    def num_atom_types(self) -> int:
        return len(self.atom_symbols)

    def block_name(self, index: int) -> str:
        return self.block_names[index]

    def atom_symbol(self, index: int) -> str:
        return self.atom_symbols[index]


@lru_cache(maxsize=None)
def _load_full() -> Vocabulary:
    raw = json.loads(VOCAB_PATH.read_text())
    blocks = raw["block_vocab"]
    for position, entry in enumerate(blocks):
        if entry["idx"] != position:
            raise ValueError(f"{VOCAB_PATH}: block_vocab entry {position} has idx {entry['idx']}")
    return Vocabulary(
        block_symbols=tuple(entry["symbol"] for entry in blocks),
        block_names=tuple(entry["abrv"] for entry in blocks),
        atom_symbols=tuple(raw["atom_vocab"]),
    )


def get_vocabulary(fragmentation_method: str | None = "PS_300") -> Vocabulary:
    """The vocabulary a model built with ``fragmentation_method`` uses.

    ATOMICA sizes its block-embedding table from the vocabulary after the
    fragment tokenizer is loaded, so the method decides the table's row count.
    """
    if fragmentation_method not in _FRAGMENT_VOCAB_SIZES:
        known = ", ".join(repr(k) for k in _FRAGMENT_VOCAB_SIZES)
        raise ValueError(f"unknown fragmentation_method {fragmentation_method!r}; known: {known}")
    full = _load_full()
    size = BASE_BLOCK_TYPES + _FRAGMENT_VOCAB_SIZES[fragmentation_method]
    if size > full.num_block_types:
        raise ValueError(f"{VOCAB_PATH} has {full.num_block_types} block types, expected at least {size}")
    return Vocabulary(full.block_symbols[:size], full.block_names[:size], full.atom_symbols)
