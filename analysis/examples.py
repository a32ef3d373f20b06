"""Built-in example inputs users can load instead of pasting their own FASTA.

The files live in the examples/ folder next to this module; their
provenance is in examples/SOURCES.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"


@dataclass(frozen=True)
class Example:
    key: str
    title: str
    description: str
    filename: str


EXAMPLES: dict[str, Example] = {
    example.key: example
    for example in (
        Example(
            key="uniref50",
            title="15 UniRef50 proteins",
            description=(
                "Fifteen diverse proteins of 71 to 935 residues (the fair-esm "
                "example input). Every record is valid."
            ),
            filename="uniref50_proteins.fasta",
        ),
        Example(
            key="chloroplast",
            title="Arabidopsis chloroplast proteome",
            description=(
                "All 85 proteins encoded by the Arabidopsis thaliana chloroplast "
                "genome (RefSeq NC_000932). It leaves out 2 records on purpose, "
                "to show per-record errors: records 65 (NP_051101.1) and 83 "
                "(NP_051121.1), the two copies of Ycf2, are 2,294 residues long, "
                "over the 2,000-residue limit, so they are reported as rejected; "
                "the other 83 are analysed."
            ),
            filename="arabidopsis_chloroplast.fasta",
        ),
    )
}

DEFAULT_EXAMPLE = "uniref50"


def load_example(key: str) -> str:
    """Return the FASTA text of a built-in example; KeyError for an unknown key."""
    try:
        example = EXAMPLES[key]
    except KeyError:
        raise KeyError(f"No example called {key!r}; choose one of {sorted(EXAMPLES)}") from None
    return (EXAMPLES_DIR / example.filename).read_text(encoding="utf-8")
