"""Per-record protein figures, computed with Biopython's ProtParam.

Non-standard letters need care. Checked with Biopython 1.88:
molecular_weight() raises ValueError for X, B, Z and J but knows U and O;
gravy() and instability_index() raise KeyError for all six; the pI, charge,
aromaticity and secondary-structure methods silently ignore them, yet the
fractions keep them in the denominator. So every figure here is computed on
the standard residues only (U and O stay in the molecular weight, since their
masses are known), and each record says in `warnings` what was left out.
"""

from __future__ import annotations

from Bio.SeqUtils import ProtParamData
from Bio.SeqUtils.ProtParam import ProteinAnalysis

from biofm_site.csvfile import csv_text

from analysis.fasta import STANDARD_LETTERS, Record, ambiguous_letters

HYDROPATHY_WINDOW = 9

_MASS_KNOWN = "UO"  # non-standard letters Biopython has a residue mass for
_NAMES = {
    "X": "unknown",
    "B": "D or N",
    "Z": "E or Q",
    "J": "I or L",
    "U": "selenocysteine",
    "O": "pyrrolysine",
}

METHODS: dict[str, str] = {
    "length": "Number of residues in the record, all letters counted",
    "molecular_weight": (
        "Average mass of the neutral peptide (residues plus one water), "
        "Biopython ProtParam (ProteinAnalysis.molecular_weight)"
    ),
    "isoelectric_point": (
        "Bjellqvist et al. 1993/1994 pK values, bisection to charge 0, "
        "Biopython IsoelectricPoint"
    ),
    "charge_at_ph7": (
        "Net charge at pH 7.0 from the Bjellqvist pK values (Henderson-"
        "Hasselbalch), Biopython ProteinAnalysis.charge_at_pH"
    ),
    "gravy": "Kyte & Doolittle 1982 hydropathy, mean over residues",
    "instability_index": (
        "Guruprasad et al. 1990 dipeptide weights (Biopython "
        "ProtParamData.DIWV); above 40 suggests an unstable protein"
    ),
    "aromaticity": "Lobry 1994: fraction of F + W + Y among the standard residues",
    "extinction_coefficient_reduced": (
        "Pace et al. 1995, 280 nm in water: 5500 per W + 1490 per Y, "
        "all cysteines reduced"
    ),
    "extinction_coefficient_oxidized": (
        "Pace et al. 1995, 280 nm in water: as reduced plus 125 per cystine, "
        "assuming every pair of cysteines forms a disulfide"
    ),
    "helix_fraction": (
        "Biopython's residue-propensity fraction: E, M, A, L, K "
        "(ProteinAnalysis.secondary_structure_fraction)"
    ),
    "turn_fraction": "Biopython's residue-propensity fraction: N, P, G, S, D",
    "sheet_fraction": (
        "Biopython's residue-propensity fraction: V, I, Y, F, W, L, T "
        "(L also counts towards helix)"
    ),
    "composition": (
        "Percent of all residues in the record for each standard amino acid; "
        "non-standard letters make up the rest"
    ),
    "hydropathy_profile": (
        f"Kyte & Doolittle 1982 hydropathy, unweighted mean over a "
        f"{HYDROPATHY_WINDOW}-residue sliding window (ProteinAnalysis.protein_scale)"
    ),
}

COLUMNS: list[tuple[str, str, str]] = [
    ("id", "ID", ""),
    ("description", "Description", ""),
    ("length", "Length", "residues"),
    ("molecular_weight", "Molecular weight", "Da"),
    ("isoelectric_point", "Isoelectric point", "pH"),
    ("charge_at_ph7", "Net charge at pH 7", "e"),
    ("gravy", "GRAVY", "Kyte-Doolittle"),
    ("instability_index", "Instability index", ""),
    ("aromaticity", "Aromaticity", "fraction"),
    ("extinction_coefficient_reduced", "Extinction coefficient, Cys reduced", "M^-1 cm^-1"),
    ("extinction_coefficient_oxidized", "Extinction coefficient, cystines", "M^-1 cm^-1"),
    ("helix_fraction", "Helix fraction", "fraction"),
    ("turn_fraction", "Turn fraction", "fraction"),
    ("sheet_fraction", "Sheet fraction", "fraction"),
    ("warnings", "Warnings", ""),
]

# Rounded to what the methods can support; pI bisection stops at 1e-4.
_DECIMALS = {
    "molecular_weight": 2,
    "isoelectric_point": 2,
    "charge_at_ph7": 2,
    "gravy": 3,
    "instability_index": 2,
    "aromaticity": 4,
    "helix_fraction": 4,
    "turn_fraction": 4,
    "sheet_fraction": 4,
}


def analyse(record: Record) -> dict:
    """Return the ProtParam figures of one validated record as plain JSON data."""
    seq = record.sequence.upper()
    nonstandard = ambiguous_letters(seq)
    standard = "".join(c for c in seq if c in STANDARD_LETTERS)
    result = {
        "id": record.id,
        "description": record.description,
        "length": len(seq),
        "composition": _composition(seq),
        "ambiguous": nonstandard,
        "warnings": _warnings(nonstandard, bool(standard)),
    }
    if not standard:
        result.update(dict.fromkeys(_DECIMALS, None))
        result["extinction_coefficient_reduced"] = None
        result["extinction_coefficient_oxidized"] = None
        return result

    pa = ProteinAnalysis(standard)
    helix, turn, sheet = pa.secondary_structure_fraction()
    reduced, oxidized = pa.molar_extinction_coefficient()
    # pI and charge are taken from the full sequence: Biopython counts only
    # the charged standard residues anyway, and an unknown first or last
    # letter should get the generic terminal pK, not its neighbour's.
    full = ProteinAnalysis(seq)
    figures = {
        "molecular_weight": ProteinAnalysis(_mass_sequence(seq)).molecular_weight(),
        "isoelectric_point": full.isoelectric_point(),
        "charge_at_ph7": full.charge_at_pH(7.0),
        "gravy": pa.gravy(),
        "instability_index": _instability_index(seq),
        "aromaticity": pa.aromaticity(),
        "helix_fraction": helix,
        "turn_fraction": turn,
        "sheet_fraction": sheet,
    }
    result.update({k: round(v, _DECIMALS[k]) for k, v in figures.items()})
    result["extinction_coefficient_reduced"] = reduced
    result["extinction_coefficient_oxidized"] = oxidized
    return result


def hydropathy_profile(sequence: str, window: int = HYDROPATHY_WINDOW) -> list[float | None]:
    """Kyte-Doolittle sliding-window mean along the sequence.

    The profile has len(sequence) - window + 1 values (none if the sequence
    is shorter than the window). Value i (0-based) is the mean over residues
    i+1 .. i+window and is centred on residue i + window//2 + 1 (1-based).
    A window that covers a non-standard letter has no defined mean and is
    None, which plotly draws as a gap.
    """
    # Biopython's protein_scale counts the middle residue twice for an even
    # window, and an even window has no centre residue anyway.
    if window < 1 or window % 2 == 0:
        raise ValueError(f"The hydropathy window must be a positive odd number, not {window}")
    seq = sequence.upper()
    profile: list[float | None] = [None] * max(len(seq) - window + 1, 0)
    # protein_scale would score unknown letters as 0 and print to stderr,
    # so only runs of standard residues are passed to it.
    for start, run in _standard_runs(seq):
        if len(run) >= window:
            values = ProteinAnalysis(run).protein_scale(ProtParamData.kd, window)
            profile[start : start + len(values)] = [round(v, 4) for v in values]
    return profile


def to_csv(rows: list[dict], *, composition: bool = True) -> str:
    """CSV of COLUMNS (header labels carry units), then composition percents."""
    header = [f"{label} ({unit})" if unit else label for _, label, unit in COLUMNS]
    if composition:
        header += [f"{letter} (%)" for letter in STANDARD_LETTERS]

    def cells(row):
        values = [_cell(row.get(key)) for key, _, _ in COLUMNS]
        if composition:
            percents = row.get("composition") or {}
            values += [_cell(percents.get(letter)) for letter in STANDARD_LETTERS]
        return values

    # csv_text neutralises spreadsheet formulas: ids and descriptions come
    # from user-supplied FASTA headers.
    return csv_text(header, (cells(row) for row in rows))


def _composition(seq: str) -> dict[str, float]:
    if not seq:
        return dict.fromkeys(STANDARD_LETTERS, 0.0)
    return {c: round(100 * seq.count(c) / len(seq), 2) for c in STANDARD_LETTERS}


def _mass_sequence(seq: str) -> str:
    return "".join(c for c in seq if c in STANDARD_LETTERS or c in _MASS_KNOWN)


def _instability_index(seq: str) -> float:
    """Guruprasad index over dipeptides of two standard residues.

    Dropping an X and joining its neighbours would invent a dipeptide that
    is not in the protein, so dipeptides touching a non-standard letter are
    skipped and the sum is scaled by the number of standard residues, as
    Biopython scales by length. With no non-standard letters this equals
    ProteinAnalysis.instability_index().
    """
    weights = ProtParamData.DIWV
    total = 0.0
    for a, b in zip(seq, seq[1:]):
        if a in STANDARD_LETTERS and b in STANDARD_LETTERS:
            total += weights[a][b]
    n_standard = sum(c in STANDARD_LETTERS for c in seq)
    return 10.0 / n_standard * total


def _standard_runs(seq: str):
    start = None
    for i, c in enumerate(seq + "\0"):
        if c in STANDARD_LETTERS:
            if start is None:
                start = i
        elif start is not None:
            yield start, seq[start:i]
            start = None


def _warnings(nonstandard: dict[str, int], any_standard: bool) -> list[str]:
    if not any_standard:
        return [
            "The sequence has no standard amino acids, so no figures could "
            "be computed"
        ]
    warnings = []
    unknown = {c: n for c, n in nonstandard.items() if c not in _MASS_KNOWN}
    known = {c: n for c, n in nonstandard.items() if c in _MASS_KNOWN}
    if unknown:
        warnings.append(
            f"{_count_phrase(unknown, 'ambiguous residue')} left out of the "
            "molecular weight, GRAVY, instability index, aromaticity, "
            "secondary-structure fractions and extinction coefficients, and "
            f"given no charge in the pI and net charge: {_breakdown(unknown)}"
        )
    if known:
        warnings.append(
            f"{_count_phrase(known, 'non-standard residue')} counted in the "
            "molecular weight but left out of the other figures, which have "
            f"no values for them: {_breakdown(known)}"
        )
    return warnings


def _count_phrase(counts: dict[str, int], noun: str) -> str:
    total = sum(counts.values())
    return f"1 {noun} was" if total == 1 else f"{total} {noun}s were"


def _breakdown(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} × {c} ({_NAMES[c]})" for c, n in counts.items())


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, list):
        value = "; ".join(str(v) for v in value)
    return value
