"""Tests for the Django-free protein analysis compute (analysis.fasta,
analysis.protparam, analysis.protparam.compute.charts, analysis.examples).

Expected numbers are worked out by hand from published constants, not by
calling Biopython, so a wrong wrapper cannot agree with itself.
"""

import csv
import io
import json
import re
from pathlib import Path

import pytest
from Bio.SeqUtils.ProtParam import ProteinAnalysis

from analysis.protparam.compute import charts
from analysis.examples import EXAMPLES, load_example
from analysis.fasta import (
    InputTooLarge,
    NotFasta,
    Record,
    ambiguous_letters,
    parse_fasta,
)
from analysis.protparam.compute.protparam import COLUMNS, METHODS, analyse, hydropathy_profile, to_csv

FIXTURES = Path(__file__).parent / "fixtures" / "fasta"


def read_fixture(name):
    return (FIXTURES / name).read_bytes()


def errors_by_index(errors):
    return {e.index: e for e in errors}


# --- parser: records and errors -------------------------------------------


@pytest.fixture(scope="module")
def mixed():
    return parse_fasta(read_fixture("mixed.fasta"))


def test_good_records_survive_bad_ones(mixed):
    records, _ = mixed
    assert [r.id for r in records] == ["insulin_B", "glucagon", "melittin", "ambiguous_x"]
    assert records[0].description == "Human insulin B chain"
    assert records[0].sequence == "FVNQHLCGSHLVEALYLVCGERGFFYTPKT"


def test_sequence_is_cleaned(mixed):
    records, _ = mixed
    melittin = next(r for r in records if r.id == "melittin")
    # Upper-cased, wrapping and spaces removed, trailing stop dropped.
    assert melittin.sequence == "GIGAVLKVLTTGLPALISWIKRKRQQ"


def test_every_bad_record_is_reported_once(mixed):
    _, errors = mixed
    assert sorted(e.index for e in errors) == [2, 4, 5, 6, 7, 8, 9]


@pytest.mark.parametrize(
    "index, record_id, field, fragments",
    [
        (2, "", "id", ["Record 2:", "no id"]),
        (4, "insulin_B", "id", ["Record 4 (insulin_B)", "record 1", "unique"]),
        (5, "empty_seq", "sequence", ["Record 5 (empty_seq)", "empty"]),
        (6, "dna_by_mistake", "sequence", ["Record 6 (dna_by_mistake)", "DNA", "not protein"]),
        (7, "with_digit", "sequence", ["Record 7 (with_digit)", "'1' at position 4"]),
        (8, "internal_stop", "sequence", ["Record 8 (internal_stop)", "'*' at position 9", "stop"]),
        (9, "too_short", "sequence", ["Record 9 (too_short)", "5 residues", "10 to 2,000"]),
    ],
)
def test_error_names_record_and_field(mixed, index, record_id, field, fragments):
    error = errors_by_index(mixed[1])[index]
    assert error.id == record_id
    assert error.field == field
    for fragment in fragments:
        assert fragment in error.message


def test_rna_is_named_rna_and_crlf_is_handled():
    records, errors = parse_fasta(read_fixture("rna_crlf.fasta"))
    assert records == []
    assert len(errors) == 1
    assert errors[0].id == "rna_by_mistake"  # no stray '\r' in the id
    assert "looks like RNA" in errors[0].message


def test_poly_alanine_is_not_mistaken_for_dna():
    records, errors = parse_fasta(">polyA\nAAAAAAAAAAAA\n")
    assert errors == []
    assert records[0].sequence == "A" * 12


def test_header_id_is_first_token_and_rest_is_description():
    text = ">sp|P69905|HBA_HUMAN  Hemoglobin subunit alpha OS=Homo sapiens\nMVLSPADKTNVKAAWGKVGAHAGEYGAEALERMF\n"
    records, errors = parse_fasta(text)
    assert errors == []
    assert records[0].id == "sp|P69905|HBA_HUMAN"
    assert records[0].description == "Hemoglobin subunit alpha OS=Homo sapiens"


def test_record_with_two_problems_gets_two_errors():
    text = ">a\nMKTAYIAKQR\n>a\nMKT\n"
    records, errors = parse_fasta(text)
    assert [r.id for r in records] == ["a"]
    assert sorted(e.field for e in errors) == ["id", "sequence"]
    assert all(e.index == 2 for e in errors)


def test_length_bounds_are_named():
    text = ">long\n" + "M" * 26 + "\n>ok\n" + "M" * 25 + "\n"
    records, errors = parse_fasta(text, min_length=5, max_length=25)
    assert [r.id for r in records] == ["ok"]
    assert "26 residues" in errors[0].message
    assert "5 to 25" in errors[0].message


def test_ambiguous_and_rare_letters_are_accepted_and_counted():
    records, errors = parse_fasta(">amb\nMKTBZXJUOAAXKL\n")
    assert errors == []
    assert ambiguous_letters(records[0].sequence) == {"X": 2, "B": 1, "Z": 1, "J": 1, "U": 1, "O": 1}
    assert ambiguous_letters("MKTAYIAKQR") == {}


def test_bare_sequence_becomes_seq1():
    records, errors = parse_fasta("  mktayiakqr qisfvkshfs\nrqlee*\n")
    assert errors == []
    assert records == [Record(id="seq1", description="", sequence="MKTAYIAKQRQISFVKSHFSRQLEE")]


def test_bytes_with_bom_are_decoded():
    records, errors = parse_fasta("\ufeff>p1\nMKTAYIAKQR\n".encode("utf-8"))
    assert errors == []
    assert records[0].id == "p1"


# --- parser: whole-input rejections ----------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b">p1\nMKTAYIAKQR\x00\x00\x00",  # NUL bytes
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",  # an image
        b">p1\nMKTA\xff\xfeYIAKQR\n",  # not UTF-8
        "MKTAYIAKQR\x00",
    ],
)
def test_binary_input_is_rejected(data):
    with pytest.raises(NotFasta, match="binary"):
        parse_fasta(data)


def test_random_binary_is_rejected():
    import random

    rng = random.Random(1)
    data = bytes(rng.randrange(256) for _ in range(4096))
    with pytest.raises(NotFasta):
        parse_fasta(data)


@pytest.mark.parametrize("text", ["", "   \n\n  ", b""])
def test_empty_input_is_rejected(text):
    with pytest.raises(NotFasta, match="empty"):
        parse_fasta(text)


@pytest.mark.parametrize(
    "text",
    [
        "name,sequence\np1,MKTAYIAKQR\n",
        "Dear lab, please analyse my protein.",
        "1 mktayiakqr qisfvkshfs\n",
    ],
)
def test_text_without_header_that_is_not_a_sequence_is_rejected(text):
    with pytest.raises(NotFasta, match="not FASTA"):
        parse_fasta(text)


def test_text_before_first_header_is_rejected():
    with pytest.raises(NotFasta, match="Line 1"):
        parse_fasta("My proteins:\n>p1\nMKTAYIAKQR\n")


def test_size_cap_in_megabytes():
    data = b">p1\n" + b"A" * 2_000_000
    with pytest.raises(InputTooLarge, match="limit is 2 MB"):
        parse_fasta(data)


def test_size_cap_in_kilobytes_counts_utf8_bytes_of_str():
    # 2,600 characters but 5,200 bytes once encoded.
    text = ">p1 " + "é" * 2600 + "\nMKTAYIAKQR\n"
    with pytest.raises(InputTooLarge, match="limit is 5 kB"):
        parse_fasta(text, max_bytes=5000)
    records, _ = parse_fasta(text, max_bytes=6000)
    assert len(records) == 1


def test_record_count_cap():
    text = "".join(f">p{i}\nMKTAYIAKQR\n" for i in range(4))
    assert len(parse_fasta(text, max_records=4)[0]) == 4
    with pytest.raises(InputTooLarge, match="4 records; the limit is 3"):
        parse_fasta(text, max_records=3)


# --- ProtParam figures -------------------------------------------------------

# Residue (in-chain) elemental formulas C, H, N, O, S and IUPAC 2005 standard
# atomic weights, the table Biopython's average masses are built from.
RESIDUE_FORMULAS = {
    "G": (2, 3, 1, 1, 0), "A": (3, 5, 1, 1, 0), "S": (3, 5, 1, 2, 0),
    "P": (5, 7, 1, 1, 0), "V": (5, 9, 1, 1, 0), "T": (4, 7, 1, 2, 0),
    "C": (3, 5, 1, 1, 1), "L": (6, 11, 1, 1, 0), "I": (6, 11, 1, 1, 0),
    "N": (4, 6, 2, 2, 0), "D": (4, 5, 1, 3, 0), "Q": (5, 8, 2, 2, 0),
    "K": (6, 12, 2, 1, 0), "E": (5, 7, 1, 3, 0), "M": (5, 9, 1, 1, 1),
    "H": (6, 7, 3, 1, 0), "F": (9, 9, 1, 1, 0), "R": (6, 12, 4, 1, 0),
    "Y": (9, 9, 1, 2, 0), "W": (11, 10, 2, 1, 0),
}
ATOMIC_WEIGHTS = (12.0107, 1.00794, 14.0067, 15.9994, 32.065)


def hand_molecular_weight(sequence):
    atoms = [0, 2, 0, 1, 0]  # one water for the free termini
    for residue in sequence:
        for i, n in enumerate(RESIDUE_FORMULAS[residue]):
            atoms[i] += n
    return sum(n * w for n, w in zip(atoms, ATOMIC_WEIGHTS))


def rec(sequence, record_id="p1"):
    return Record(id=record_id, description="", sequence=sequence)


@pytest.mark.parametrize(
    "sequence",
    ["GGGGGGGGGG", "FVNQHLCGSHLVEALYLVCGERGFFYTPKT", "ACDEFGHIKLMNPQRSTVWY"],
)
def test_molecular_weight_matches_hand_calculation(sequence):
    assert analyse(rec(sequence))["molecular_weight"] == pytest.approx(
        hand_molecular_weight(sequence), abs=0.01
    )


def test_triglycine_mass_matches_reference_value():
    # Gly-Gly-Gly, C6H11N3O4: 189.17 g/mol in standard references.
    result = analyse(rec("GGG"))
    assert result["molecular_weight"] == pytest.approx(189.17, abs=0.01)


def test_polyalanine_hand_values():
    result = analyse(rec("A" * 10))
    assert result["gravy"] == pytest.approx(1.8)  # Kyte-Doolittle A = 1.8
    # Guruprasad weight of the AA dipeptide is 1.0: 9 dipeptides * 1.0 * 10/10.
    assert result["instability_index"] == pytest.approx(9.0)
    assert result["aromaticity"] == 0
    assert (result["helix_fraction"], result["turn_fraction"], result["sheet_fraction"]) == (1, 0, 0)
    assert result["composition"]["A"] == 100
    assert result["length"] == 10


def test_aromaticity_and_secondary_structure_fractions():
    result = analyse(rec("FWYGGGGGGGNNNNNVVVVV"))
    assert result["aromaticity"] == pytest.approx(3 / 20)
    # turn letters N P G S D: 7 G + 5 N; sheet V I Y F W L T: 5 V + F W Y.
    assert result["turn_fraction"] == pytest.approx(12 / 20)
    assert result["sheet_fraction"] == pytest.approx(8 / 20)
    assert result["helix_fraction"] == 0


def test_extinction_coefficients_pace_values():
    result = analyse(rec("WWYYYCCCCAAAAA"))
    assert result["extinction_coefficient_reduced"] == 2 * 5500 + 3 * 1490
    assert result["extinction_coefficient_oxidized"] == 2 * 5500 + 3 * 1490 + 2 * 125


def test_charge_of_polyglycine_from_terminal_pks():
    # Only the termini are charged: Bjellqvist N-terminus pK 7.5, C-terminus 3.55.
    expected = 1 / (1 + 10 ** (7.0 - 7.5)) - 1 / (1 + 10 ** (3.55 - 7.0))
    assert analyse(rec("G" * 10))["charge_at_ph7"] == pytest.approx(expected, abs=0.005)


def test_isoelectric_point_sanity():
    basic = analyse(rec("GKKKKRRKKKKG"))
    acidic = analyse(rec("GDDDEEEDDDEG"))
    assert basic["isoelectric_point"] > 10
    assert acidic["isoelectric_point"] < 4.5
    assert basic["charge_at_ph7"] > 5
    assert acidic["charge_at_ph7"] < -5
    insulin_b = "FVNQHLCGSHLVEALYLVCGERGFFYTPKT"
    pi = analyse(rec(insulin_b))["isoelectric_point"]
    # The pI is where the net charge crosses zero (2 decimals of pH).
    assert abs(ProteinAnalysis(insulin_b).charge_at_pH(pi)) < 0.05


def test_composition_has_all_standard_letters_and_sums_to_100():
    result = analyse(rec("FVNQHLCGSHLVEALYLVCGERGFFYTPKT"))
    assert list(result["composition"]) == list("ACDEFGHIKLMNPQRSTVWY")
    assert sum(result["composition"].values()) == pytest.approx(100, abs=0.1)
    assert result["composition"]["L"] == pytest.approx(400 / 30, abs=0.01)
    assert result["ambiguous"] == {} and result["warnings"] == []


def test_result_keys_and_json():
    result = analyse(rec("FVNQHLCGSHLVEALYLVCGERGFFYTPKT", "insulin_B"))
    expected = {
        "id", "description", "length", "molecular_weight", "isoelectric_point",
        "gravy", "instability_index", "aromaticity",
        "extinction_coefficient_reduced", "extinction_coefficient_oxidized",
        "helix_fraction", "turn_fraction", "sheet_fraction", "charge_at_ph7",
        "composition", "ambiguous", "warnings",
    }
    assert set(result) == expected
    json.dumps(result, allow_nan=False)
    # Every figure in the table has its method written down.
    for key, _, _ in COLUMNS:
        if key not in ("id", "description", "warnings"):
            assert METHODS.get(key), key


def test_secondary_structure_method_names_the_letters_biopython_uses():
    # Ask the installed Biopython which class each residue counts towards (a
    # homopolymer's fraction is 1 for its classes, 0 otherwise) and compare
    # with the letters the method text names and with what analyse() reports.
    standard = "ACDEFGHIKLMNPQRSTVWY"
    names = ("helix_fraction", "turn_fraction", "sheet_fraction")
    biopython = {name: set() for name in names}
    for letter in standard:
        fractions = ProteinAnalysis(letter * 5).secondary_structure_fraction()
        for name, fraction in zip(names, fractions):
            if fraction == pytest.approx(1.0):
                biopython[name].add(letter)
    assert all(biopython.values())
    for name in names:
        listed = re.search(r"fraction: ([A-Z](?:, [A-Z])*)", METHODS[name]).group(1)
        assert set(listed.split(", ")) == biopython[name], name
        for letter in standard:
            assert analyse(rec(letter * 5))[name] == (1.0 if letter in biopython[name] else 0.0), (name, letter)


def test_ambiguous_residues_are_left_out_and_reported():
    clean = "MKTAYIAKQRQISFVKSHFSRQ"
    with_x = "MKTAYIAKQRXXQISFVKSHFSRQB"
    result = analyse(rec(with_x))
    baseline = analyse(rec(clean))
    assert result["length"] == len(with_x)
    assert result["ambiguous"] == {"X": 2, "B": 1}
    assert result["molecular_weight"] == pytest.approx(hand_molecular_weight(clean), abs=0.01)
    assert result["gravy"] == baseline["gravy"]
    assert result["aromaticity"] == baseline["aromaticity"]
    # Composition is over all 25 residues, so it plus the ambiguous share is 100 %.
    assert sum(result["composition"].values()) == pytest.approx(100 * 22 / 25, abs=0.1)
    assert len(result["warnings"]) == 1
    assert "3 ambiguous residues" in result["warnings"][0]
    assert "2 × X" in result["warnings"][0] and "1 × B" in result["warnings"][0]
    assert "molecular weight" in result["warnings"][0]


def test_instability_index_skips_dipeptides_with_unknown_residues():
    # A-X-A: no AA dipeptide exists, so only the 8 real AA dipeptides count;
    # scaled by 10 standard residues.
    assert analyse(rec("AAAAAXAAAAA"))["instability_index"] == pytest.approx(8.0)


def test_instability_index_matches_biopython_without_ambiguous_letters():
    seq = "FVNQHLCGSHLVEALYLVCGERGFFYTPKT"
    assert analyse(rec(seq))["instability_index"] == pytest.approx(
        ProteinAnalysis(seq).instability_index(), abs=0.005
    )


def test_selenocysteine_counts_in_mass_only():
    # Selenocysteine residue C3H5NOSe: 150.04 Da (Se 78.96).
    selenocysteine = 3 * 12.0107 + 5 * 1.00794 + 14.0067 + 15.9994 + 78.96
    result = analyse(rec("MKTAYIAKQRU"))
    assert result["molecular_weight"] == pytest.approx(
        hand_molecular_weight("MKTAYIAKQR") + selenocysteine, abs=0.01
    )
    assert result["gravy"] == analyse(rec("MKTAYIAKQR"))["gravy"]
    assert any("selenocysteine" in w and "counted in the molecular weight" in w for w in result["warnings"])


def test_all_unknown_sequence_gives_no_figures_and_says_why():
    result = analyse(rec("X" * 12))
    assert result["molecular_weight"] is None and result["gravy"] is None
    assert "no standard amino acids" in result["warnings"][0]
    json.dumps(result, allow_nan=False)


# --- hydropathy profile ------------------------------------------------------


def test_hydropathy_profile_length_and_hand_values():
    profile = hydropathy_profile("IIIIIIIIIK", window=9)
    assert len(profile) == 2
    assert profile[0] == pytest.approx(4.5)
    assert profile[1] == pytest.approx((8 * 4.5 - 3.9) / 9, abs=1e-4)


def test_hydropathy_profile_window_parameter():
    profile = hydropathy_profile("ARNDCQEGHI", window=3)
    assert len(profile) == 8
    assert profile[0] == pytest.approx((1.8 - 4.5 - 3.5) / 3, abs=1e-4)
    assert hydropathy_profile("MKT", window=9) == []


@pytest.mark.parametrize("window", [0, 8])
def test_hydropathy_profile_rejects_even_or_empty_window(window):
    with pytest.raises(ValueError, match="odd"):
        hydropathy_profile("MKTAYIAKQRQISFVKSHFSRQ", window=window)


def test_hydropathy_profile_has_gaps_where_window_covers_unknown():
    profile = hydropathy_profile("I" * 9 + "X" + "I" * 9, window=9)
    assert len(profile) == 11
    assert profile[0] == pytest.approx(4.5) and profile[10] == pytest.approx(4.5)
    assert profile[1:10] == [None] * 9


# --- CSV ------------------------------------------------------------------


def test_csv_header_has_units_and_one_row_per_result():
    results = [analyse(rec("FVNQHLCGSHLVEALYLVCGERGFFYTPKT", "insulin_B")), analyse(rec("A" * 10, "polyA"))]
    rows = list(csv.reader(io.StringIO(to_csv(results))))
    header = rows[0]
    assert header[: len(COLUMNS)] == [f"{label} ({unit})" if unit else label for _, label, unit in COLUMNS]
    assert "Molecular weight (Da)" in header
    assert "A (%)" in header and len(header) == len(COLUMNS) + 20
    assert len(rows) == 3
    polya = dict(zip(header, rows[2]))
    assert polya["ID"] == "polyA"
    assert float(polya["GRAVY (Kyte-Doolittle)"]) == pytest.approx(1.8)
    assert float(polya["A (%)"]) == 100


def test_csv_neutralises_spreadsheet_formulas_and_joins_warnings():
    result = analyse(Record(id="=HYPERLINK(1)", description="@cmd", sequence="MKTAYIAKQRX"))
    rows = list(csv.reader(io.StringIO(to_csv([result], composition=False))))
    row = dict(zip(rows[0], rows[1]))
    assert row["ID"] == "'=HYPERLINK(1)"
    assert row["Description"] == "'@cmd"
    assert "ambiguous" in row["Warnings"]
    assert len(rows[0]) == len(COLUMNS)


# --- figures ---------------------------------------------------------------


def assert_plotly_dict(figure):
    assert set(figure) == {"data", "layout"}
    assert isinstance(figure["data"], list)
    json.dumps(figure, allow_nan=False)


def test_composition_figure_single_record_bars_by_class():
    result = analyse(rec("FVNQHLCGSHLVEALYLVCGERGFFYTPKT", "insulin_B"))
    figure = charts.composition_figure([result])
    assert_plotly_dict(figure)
    assert "ProtParam" in figure["layout"]["title"]["text"]
    bars = figure["data"]
    assert all(t["type"] == "bar" for t in bars)
    assert len({t["marker"]["color"] for t in bars}) == len(charts.RESIDUE_CLASSES)
    assert sorted(x for t in bars for x in t["x"]) == sorted("ACDEFGHIKLMNPQRSTVWY")
    heights = {x: y for t in bars for x, y in zip(t["x"], t["y"])}
    assert heights == result["composition"]
    legend = [t["name"] for t in bars if t["showlegend"]]
    assert any(name.startswith("Aromatic") for name in legend)


def test_composition_figure_panels_share_one_scale():
    results = [analyse(rec("A" * 10, "a")), analyse(rec("FVNQHLCGSHLVEALYLVCGERGFFYTPKT", "b"))]
    figure = charts.composition_figure(results)
    assert_plotly_dict(figure)
    layout = figure["layout"]
    assert layout["yaxis"]["range"] == layout["yaxis2"]["range"]
    assert layout["yaxis"]["range"][1] >= 100
    # One legend entry per class, not per panel.
    assert sum(t["showlegend"] for t in figure["data"]) == len(charts.RESIDUE_CLASSES)


def test_composition_figure_switches_to_heatmap_for_many_records(monkeypatch):
    results = [analyse(rec("MKTAYIAKQR" + "A" * i, f"p{i}")) for i in range(charts.MAX_BAR_PANELS + 1)]
    figure = charts.composition_figure(results)
    assert_plotly_dict(figure)
    (heatmap,) = figure["data"]
    assert heatmap["type"] == "heatmap"
    assert len(heatmap["z"]) == len(results) and all(len(row) == 20 for row in heatmap["z"])
    assert heatmap["x"] == charts.RESIDUE_ORDER
    assert "ProtParam" in figure["layout"]["title"]["text"]

    monkeypatch.setattr(charts, "MAX_HEATMAP_ROWS", 5)
    figure = charts.composition_figure(results)
    assert len(figure["data"][0]["z"]) == 5
    assert "first 5" in figure["layout"]["title"]["text"]


def test_composition_figure_escapes_ids():
    figure = charts.composition_figure([analyse(rec("A" * 10, "<b>x</b>"))])
    texts = [a["text"] for a in figure["layout"]["annotations"]]
    assert "&lt;b&gt;x&lt;/b&gt;" in texts[0]


def test_hydropathy_figure():
    rows = [
        {"id": "p1", "profile": hydropathy_profile("IIIIIIIIIKKKKK")},
        {"id": "p2", "profile": hydropathy_profile("I" * 9 + "X" + "I" * 9)},
    ]
    figure = charts.hydropathy_figure(rows, window=9)
    assert_plotly_dict(figure)
    layout = figure["layout"]
    assert "Kyte & Doolittle" in layout["title"]["text"] and "9-residue" in layout["title"]["text"]
    assert "9" in layout["xaxis"]["title"]["text"] and "Kyte" in layout["yaxis"]["title"]["text"]
    first = figure["data"][0]
    assert first["x"][0] == 5  # centre of residues 1-9
    assert len(first["x"]) == len(first["y"]) == 6
    assert figure["data"][1]["y"][1] is None
    lines = {s["y0"]: s for s in layout["shapes"]}
    assert set(lines) == {0, 1.6}
    assert all(s["line"]["dash"] == "dash" for s in lines.values())


def test_hydropathy_figure_takes_window_from_rows():
    rows = [{"id": "p1", "profile": hydropathy_profile("IIIIIIIIIKKKKK", window=5), "window": 5}]
    figure = charts.hydropathy_figure(rows)
    assert figure["data"][0]["x"][0] == 3  # centre of residues 1-5
    assert len(figure["data"][0]["x"]) == 10
    assert "5-residue" in figure["layout"]["title"]["text"]


def test_hydropathy_figure_caps_traces(monkeypatch):
    monkeypatch.setattr(charts, "MAX_HYDROPATHY_TRACES", 12)
    rows = [{"id": f"p{i}", "profile": [0.0]} for i in range(20)]
    figure = charts.hydropathy_figure(rows)
    assert len(figure["data"]) == 12
    assert "first 12 of 20" in figure["layout"]["title"]["text"]


def test_hydropathy_figure_picks_one_record_at_a_time():
    rows = [{"id": f"p{i}", "profile": [0.0, 1.0]} for i in range(3)]
    figure = charts.hydropathy_figure(rows)
    assert [t["visible"] for t in figure["data"]] == [True, False, False]
    (picker,) = figure["layout"]["updatemenus"]
    assert [b["label"] for b in picker["buttons"]] == ["p0", "p1", "p2", "All 3 records"]
    assert picker["buttons"][1]["args"] == [{"visible": [False, True, False]}]
    assert picker["buttons"][-1]["args"] == [{"visible": [True, True, True]}]
    single = charts.hydropathy_figure(rows[:1])
    assert "updatemenus" not in single["layout"] and single["data"][0]["visible"] is True


def test_empty_composition_figure():
    figure = charts.composition_figure([])
    assert_plotly_dict(figure)
    assert figure["data"] == []


def _axes_without_title(figure: dict) -> list[str]:
    """The cartesian axes of a figure (named in the layout or used by a trace)
    that are shown but have no title text."""
    layout = figure["layout"]
    names = {k for k in layout if re.fullmatch(r"[xy]axis\d*", k)}
    for trace in figure["data"]:
        if trace.get("type", "scatter") in ("scatter", "scattergl", "bar", "heatmap", "histogram", "box"):
            for letter in "xy":
                ref = trace.get(f"{letter}axis", letter)
                names.add(f"{letter}axis{ref[1:]}")
    for scene in (v for k, v in layout.items() if k.startswith("scene")):
        names.update(f"{k}@scene" for k in scene if re.fullmatch(r"[xyz]axis", k))
    missing = []
    for name in sorted(names):
        axis = layout["scene"][name.split("@")[0]] if "@" in name else layout.get(name, {})
        if axis.get("visible", True) and not (axis.get("title") or {}).get("text"):
            missing.append(name)
    return missing


def _server_figures() -> dict[str, dict]:
    from types import SimpleNamespace

    import numpy as np

    from analysis.atomica.outputs import atom_scatter_figure, importance_figure
    from analysis.esm.compute.charts import contact_figure

    results = [analyse(rec("MKTAYIAKQR" + "A" * i, f"p{i}")) for i in range(charts.MAX_BAR_PANELS + 1)]
    profiles = [{"id": r["id"], "profile": hydropathy_profile("MKTAYIAKQRQISFVKSHFSRQ")} for r in results[:3]]
    record = SimpleNamespace(id="c1", is_global_atom=[False] * 4 + [True], X=np.eye(5, 3).tolist(),
                             atom_block_index=[0, 0, 1, 1, 2], segment_ids=[0, 1, 0])
    embedding = SimpleNamespace(atom_embedding=np.arange(5 * 4, dtype=float).reshape(5, 4) ** 1.5)
    return {
        "composition, one record": charts.composition_figure(results[:1]),
        "composition, panels": charts.composition_figure(results[:3]),
        "composition, heatmap": charts.composition_figure(results),
        "composition, empty": charts.composition_figure([]),
        "hydropathy": charts.hydropathy_figure(profiles),
        "esm contact map": contact_figure("p1", np.full((4, 4), 0.5)),
        "atomica importance": importance_figure("c1", ["A:1", "A:2"], [0.1, 0.2]),
        "atomica atoms": atom_scatter_figure(record, embedding),
    }


def test_every_server_built_chart_titles_every_axis():
    missing = {name: axes for name, fig in _server_figures().items() if (axes := _axes_without_title(fig))}
    assert missing == {}


def test_every_browser_built_chart_titles_every_axis():
    """Charts drawn by page scripts: every axis in a layout literal has a
    title object (Plotly 3 ignores a bare string title)."""
    js_dir = Path(__file__).resolve().parent.parent / "static" / "js"
    untitled = []
    for path in sorted(js_dir.glob("*.js")):
        source = path.read_text()
        for match in re.finditer(r"\b([xyz]axis\d*)\s*:\s*\{", source):
            body = source[match.end():match.end() + 200]
            if not re.match(r"\s*title\s*:\s*\{\s*text\s*:", body):
                line = source.count("\n", 0, match.start()) + 1
                untitled.append(f"{path.name}:{line} {match.group(1)}")
    assert untitled == []


# --- examples ----------------------------------------------------------------


def test_default_example_is_all_valid():
    records, errors = parse_fasta(load_example("uniref50"))
    assert errors == []
    assert len(records) == 15


def test_chloroplast_example_shows_per_record_errors():
    records, errors = parse_fasta(load_example("chloroplast"))
    assert len(records) == 83
    assert [(e.index, e.field) for e in errors] == [(65, "sequence"), (83, "sequence")]
    assert all("2,294 residues" in e.message for e in errors)


def test_examples_metadata_and_unknown_key():
    for key, example in EXAMPLES.items():
        assert example.key == key and example.title and example.description
        assert load_example(key).startswith(">")
    with pytest.raises(KeyError):
        load_example("nope")
