"""Training's datasets and splits (training.compute.datasets, .splits, .builtin):
row-level validation with RDKit's reasons, the duplicate rule, whole-file
errors, the stored table format, target statistics, every split method and
the built-in MoleculeNet files."""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import numpy as np
import pytest

from training.compute.builtin import BUILTIN_DATASETS, DATA_DIR, TOX21_ASSAYS, get_builtin
from training.compute.datasets import (
    DUPLICATE_RULE,
    SDF_MOLECULE,
    DatasetError,
    DatasetLimits,
    counts,
    parse_dataset,
    read_preview,
    table_from_csv,
    table_hash,
    table_to_csv,
    target_stats,
)
from training.compute.splits import SPLIT_METHODS, Split, kfold, make_split, scaffold_groups
from training.compute.table import CLASSIFICATION, REGRESSION, Table

FIXTURES = Path(__file__).parent / "fixtures" / "training"


def rows_csv() -> bytes:
    return (FIXTURES / "rows.csv").read_bytes()


def parse_rows(**kw) -> Table:
    return parse_dataset(rows_csv(), "rows.csv", "SMILES", {"logS": None, "active": CLASSIFICATION},
                         keep_columns=("name", "set"), **kw)


@pytest.fixture(scope="module")
def esol() -> Table:
    return get_builtin("esol").load()


@pytest.fixture(scope="module")
def tox21() -> Table:
    return get_builtin("tox21").load()


# --- uploads: preview and row errors -------------------------------------------

def test_preview_of_a_semicolon_csv_with_bom():
    preview = read_preview(rows_csv(), "rows.csv", max_rows=3)
    assert preview.format == "csv" and preview.delimiter == ";"
    assert preview.columns == ["name", "SMILES", "logS", "active", "set"]  # BOM gone from the first name
    assert preview.rows[0] == ["ethanol", "CCO", "-0.1", "1", "train"] and len(preview.rows) == 3
    assert preview.smiles_column == "SMILES"
    # "active" holds a 2 somewhere, so it is not inferred as a class label.
    assert preview.targets == {"name": None, "logS": REGRESSION, "active": REGRESSION, "set": None}


def test_preview_guesses_an_unnamed_smiles_column_with_rdkit():
    data = b"id,structure,y\na,CCO,1.5\nb,c1ccccc1,2.5\nc,CCN,0.1\n"
    preview = read_preview(data, "x.csv")
    assert preview.smiles_column == "structure"
    assert preview.targets == {"id": None, "y": REGRESSION}


def test_an_unnamed_smiles_column_is_guessed_when_parsing_too():
    table = parse_dataset(b"id,structure,y\na,CCO,1.5\nb,c1ccccc1,2.5\n", "x.csv", None, {"y": None})
    assert table.smiles == ["CCO", "c1ccccc1"]
    with pytest.raises(DatasetError, match=r"No SMILES column found: name it \(columns: id, y\)"):
        parse_dataset(b"id,y\na,1.5\nb,2.5\n", "x.csv", None, {"y": None})


def test_a_preview_reports_whole_file_problems():
    with pytest.raises(DatasetError, match="The file is empty."):
        read_preview(b"", "x.csv")
    preview = read_preview(b"smiles,y\n", "x.csv")
    assert preview.rows == [] and preview.smiles_column == "smiles" and preview.targets == {"y": None}


def test_every_bad_row_is_an_error_with_its_reason_and_good_rows_are_kept():
    table = parse_rows()
    by_row = {e.row: e for e in table.errors}
    assert sorted(by_row) == [2, 3, 5, 6, 12]
    assert by_row[2].column == "SMILES" and "SMILES Parse Error: unclosed ring" in by_row[2].message
    assert by_row[3].column == "logS" and by_row[3].message == "row 3: 'abc' in column 'logS' is not a number"
    assert "no label in any target column" in by_row[5].message
    assert re.search(r"Explicit valence for atom # \d+ Al, 6, is greater than permitted", by_row[6].message)
    assert by_row[12].column == "active" and "'2' in column 'active' is not a class label" in by_row[12].message
    # Kept: ethanol, butane (no logS: a missing label, not an error), benzene, phenol, toluene,
    # pyridine (its padded SMILES stripped).
    assert table.smiles == ["CCO", "CCCC", "c1ccccc1", "Oc1ccccc1", "Cc1ccccc1", "c1ccncc1"]
    assert table.rows == [1, 4, 7, 9, 11, 13]
    assert table.targets == ["logS", "active"] and table.tasks == [REGRESSION, CLASSIFICATION]
    assert math.isnan(table.y[1, 0]) and table.y[1, 1] == 1
    assert table.columns["name"] == ["ethanol", "unmeasured", "benzene", "phenol", "toluene", "pyridine"]
    assert counts(table) == {"rows_read": 13, "molecules": 6, "row_errors": 5, "duplicate_molecules": 2,
                             "rows_merged": 2, "flagged_duplicates": 1}


def test_duplicates_follow_the_stated_rule_and_every_merge_is_recorded():
    table = parse_rows()
    assert "averaged" in DUPLICATE_RULE and "contradict" in DUPLICATE_RULE
    merges = {d["smiles"]: d for d in table.duplicates}
    assert set(merges) == {"c1ccccc1", "Oc1ccccc1"}
    benzene, phenol = merges["c1ccccc1"], merges["Oc1ccccc1"]
    assert benzene["rows"] == [7, 8] and not benzene["flagged"]
    assert benzene["targets"]["logS"]["action"] == "averaged"
    assert table.y[2, 0] == pytest.approx(-1.67) and table.y[2, 1] == 0
    # Phenol's classes contradict: that label is dropped, its averaged logS stays.
    assert phenol["flagged"] and phenol["targets"]["active"]["action"] == "contradictory, dropped"
    assert table.y[3, 0] == pytest.approx(0.1) and math.isnan(table.y[3, 1])


def test_duplicates_that_disagree_by_more_than_one_sd_are_flagged():
    data = b"smiles,y\nCCO,0\nOCC,5\nCCN,1\nCCC,2\nCCCl,1.5\n"
    table = parse_dataset(data, "d.csv", "smiles", {"y": None})
    (merge,) = table.duplicates
    assert merge["rows"] == [1, 2] and merge["flagged"]
    assert merge["targets"]["y"]["action"] == "averaged, spread over 1 sd" and table.y[0, 0] == 2.5


def test_a_molecule_left_with_no_label_after_contradicting_duplicates_is_a_row_error():
    data = b"smiles,y\nCCO,0\nOCC,1\nCCN,1\nCCC,0\n"
    table = parse_dataset(data, "d.csv", "smiles", {"y": None})
    assert table.smiles == ["CCN", "CCC"]
    assert [e.row for e in table.errors] == [1, 2]
    assert "contradicting labels" in table.errors[0].message
    assert counts(table)["rows_read"] == 4 and counts(table)["rows_merged"] == 0


def test_task_inference_and_override():
    data = b"smiles,flag,count\nCCO,true,0\nCCN,False,1\nCCC,TRUE,1\n"
    table = parse_dataset(data, "t.csv", "smiles", {"flag": None, "count": None})
    assert table.tasks == [CLASSIFICATION, CLASSIFICATION]
    assert table.y[:, 0].tolist() == [1, 0, 1]
    table = parse_dataset(data, "t.csv", "smiles", {"count": REGRESSION})
    assert table.tasks == [REGRESSION]


def test_caps_on_one_molecule_are_row_errors():
    data = b"smiles,y\nCCO,1\nCCCCCCCCCCCC,2\nCCN,3\nCC,4\n"
    table = parse_dataset(data, "c.csv", "smiles", {"y": None},
                          limits=DatasetLimits(max_heavy_atoms=10, max_smiles_chars=None))
    assert [e.row for e in table.errors] == [2] and "12 heavy atoms, over the limit of 10" in table.errors[0].message
    table = parse_dataset(data, "c.csv", "smiles", {"y": None}, limits=DatasetLimits(max_smiles_chars=5))
    assert [e.row for e in table.errors] == [2] and "over the limit of 5" in table.errors[0].message


def test_numbers_python_reads_but_a_spreadsheet_does_not_mean_are_row_errors():
    table = parse_dataset(b"smiles,y\nCCO,1_000\nCCN,inf\nCCC,1e3\nCCCC,-2\n", "n.csv", "smiles", {"y": None})
    assert [(e.row, e.message) for e in table.errors] == [
        (1, "row 1: '1_000' in column 'y' is not a number"), (2, "row 2: 'inf' in column 'y' is not a number")]
    assert table.y[:, 0].tolist() == [1000.0, -2.0]


def test_the_table_hash_follows_content_not_layout():
    one = parse_dataset(b"smiles,y,name\nCCO,1,a\nCCN,2,b\n", "a.csv", "smiles", {"y": None})
    two = parse_dataset(b"name;y;smiles\nx;1.0;OCC\ny;2;NCC\n", "b.csv", "smiles", {"y": None})
    three = parse_dataset(b"smiles,y\nCCO,1\nCCN,2.5\n", "c.csv", "smiles", {"y": None})
    assert table_hash(one) == table_hash(two) != table_hash(three)
    assert re.fullmatch(r"[0-9a-f]{64}", table_hash(one))


def test_a_row_with_the_wrong_number_of_fields_is_a_row_error():
    table = parse_dataset(b"smiles,y\nCCO,1\nCCN,2,3\nCCC,3\n", "f.csv", "smiles", {"y": None})
    assert [e.as_dict() for e in table.errors] == [
        {"row": 2, "column": "row", "message": "row 2: 3 fields where the header has 2"}]


def test_tab_separated_without_bom_and_a_pandas_index_column():
    table = parse_dataset(b"\tsmiles\ty\n0\tCCO\t1\n1\tCCN\t2\n", "t.tsv", "smiles", {"y": None},
                          keep_columns=("column 1",))
    assert table.smiles == ["CCO", "CCN"] and table.y[:, 0].tolist() == [1, 2]
    assert table.columns == {"column 1": ["0", "1"]}


@pytest.mark.parametrize("data, smiles, targets, limits, message", [
    (b"", "smiles", {"y": None}, None, "The file is empty."),
    (b"  \n\n", "smiles", {"y": None}, None, "The file is empty."),
    (b",,\nCCO,1,2\n", "smiles", {"y": None}, None, "no header row"),
    (b"CCO,1.5\nCCN,2.5\n", "smiles", {"y": None}, None, "no header row: the first line holds the number '1.5'"),
    (b"smiles,y\n", "smiles", {"y": None}, None, "a header but no rows"),
    (b"mol,y\nCCO,1\nCCN,2\n", "smiles", {"y": None}, None, "no SMILES column 'smiles' (columns: mol, y)"),
    (b"smiles,y\nCCO,1\nCCN,2\n", "smiles", {"z": None}, None, "no column 'z'"),
    (b"smiles,y\nCCO,1\nCCN,2\n", "smiles", {}, None, "Choose at least one target column."),
    (b"smiles,y\nCCO,1\nCCN,2\n", "smiles", {"y": "ranking"}, None, "regression or classification, not 'ranking'"),
    (b"smiles,name\nCCO,ethanol\nCCN,ethylamine\n", "smiles", {"name": None}, None,
     "No numeric target: column 'name' is not numeric (first value 'ethanol')."),
    (b"smiles,y\nC1CC,1\nCCX,2\nCCN,\n", "smiles", {"y": None}, None, "All 3 rows are invalid. The first: row 1: "
     "SMILES Parse Error: unclosed ring"),
    (b"smiles,y\nCCO,1.5\nCCN,1.5\nCCC,1.5\n", "smiles", {"y": None}, None,
     "Target 'y' is constant (every label is 1.5)"),
    (b"smiles,y\nCCO,1\nCCN,1\nCCC,1\n", "smiles", {"y": CLASSIFICATION}, None, "Target 'y' has one class only"),
    (b"smiles,y\nCCO,1\nC1CC,2\n", "smiles", {"y": None}, None, "Only 1 valid molecule (1 row errors)"),
    (b"smiles,y\n\xff\xfeCCO,1\n", "smiles", {"y": None}, None, "not UTF-8 text (byte 0xff at position 9)"),
    (b"smiles,y\nCCO,1\nCCN,2\n", "smiles", {"y": None}, DatasetLimits(max_bytes=10), "over the limit of 10"),
    (b"smiles,y\nCCO,1\nCCN,2\nCCC,3\n", "smiles", {"y": None}, DatasetLimits(max_rows=2),
     "more than 2 rows, the limit"),
    (b"smiles,y,z\nCCO,1,2\n", "smiles", {"y": None}, DatasetLimits(max_columns=2), "3 columns, over the limit of 2"),
    (b"smiles,y\nCCO,1\nCC\x00N,2\n", "smiles", {"y": None}, None, "NUL character (0x00) at character 17"),
    (b'smiles,y\nCCO,1\nCCN,"' + b"1" * 200_000 + b'"\n', "smiles", {"y": None}, DatasetLimits(max_bytes=None),
     "Row 2 cannot be read as CSV: field larger than field limit"),
])
def test_whole_file_errors_name_the_problem(data, smiles, targets, limits, message):
    with pytest.raises(DatasetError) as info:
        parse_dataset(data, "upload.csv", smiles, targets, limits=limits or DatasetLimits())
    assert message in str(info.value)


def test_sdf_targets_come_from_sd_properties():
    data = (FIXTURES / "tiny.sdf").read_bytes()
    preview = read_preview(data, "tiny.sdf")
    assert preview.format == "sdf" and preview.smiles_column == SDF_MOLECULE
    assert preview.columns == [SDF_MOLECULE, "logS", "active"]
    assert preview.rows[0] == ["CCO", "-0.1", "1"] and preview.rows[3][0].startswith("error: record 4")
    assert preview.targets == {"logS": REGRESSION, "active": CLASSIFICATION}
    table = parse_dataset(data, "tiny.sdf", None, {"logS": None, "active": None})
    assert table.smiles == ["CCO", "c1ccccc1", "Oc1ccccc1", "Cc1ccccc1", "c1ccncc1"]
    assert table.rows == [1, 2, 3, 5, 6] and math.isnan(table.y[4, 0])
    (error,) = table.errors
    assert error.row == 4 and "Explicit valence for atom # 0 C, 5, is greater than permitted" in error.message
    with pytest.raises(DatasetError, match="No record of the SDF has the property 'pIC50'"):
        parse_dataset(data, "tiny.sdf", None, {"pIC50": None})
    with pytest.raises(DatasetError, match="The file has 6 records, over the limit of 5."):
        parse_dataset(data, "tiny.sdf", None, {"logS": None}, limits=DatasetLimits(max_rows=5))
    with pytest.raises(DatasetError, match="The SDF has no records."):
        parse_dataset(b"\n\n$$$$\n", "empty.sdf", None, {"logS": None})


def test_sdf_smiles_can_come_from_a_property_instead_of_the_molecule():
    from rdkit import Chem

    blocks = []
    for smiles, value in (("CCO", "1.0"), ("c1ccccc1", "2.0"), ("C1CC", "3.0")):
        mol = Chem.MolFromSmiles("C")  # the record's own molecule is ignored
        blocks.append(Chem.MolToMolBlock(mol) + f">  <SMILES>\n{smiles}\n\n>  <y>\n{value}\n\n$$$$\n")
    table = parse_dataset("".join(blocks).encode(), "p.sdf", "SMILES", {"y": None})
    assert table.smiles == ["CCO", "c1ccccc1"] and table.y[:, 0].tolist() == [1.0, 2.0]
    (error,) = table.errors
    assert error.row == 3 and error.column == "SMILES" and "unclosed ring" in error.message


# --- storage and statistics ---------------------------------------------------------

def test_table_csv_round_trip():
    table = parse_rows()
    table.targets[0] = "log S, mol/L: measured"  # commas and colons survive
    back = table_from_csv(table_to_csv(table))
    assert back.smiles == table.smiles and back.rows == table.rows
    assert back.targets == table.targets and back.tasks == table.tasks
    assert back.columns == table.columns
    np.testing.assert_array_equal(back.y, table.y)  # NaN where NaN, exact floats elsewhere
    with pytest.raises(DatasetError, match="header must start with smiles,row"):
        table_from_csv("smiles,y\nCCO,1\n")


def test_target_stats():
    table = parse_rows()
    stats = target_stats(table)
    logs = stats["logS"]
    labelled = table.y[:, 0][~np.isnan(table.y[:, 0])]
    assert logs["n"] == 5 and logs["missing"] == 1 and logs["task"] == REGRESSION
    assert logs["mean"] == pytest.approx(labelled.mean()) and logs["sd"] == pytest.approx(labelled.std(ddof=1))
    assert logs["min"] == -2.2 and logs["max"] == 0.8
    assert len(logs["histogram"]["counts"]) == 20 and sum(logs["histogram"]["counts"]) == 5
    assert len(logs["histogram"]["edges"]) == 21 and "sd (n-1)" in logs["method"]
    active = stats["active"]
    assert active["counts"] == {"0": 2, "1": 3} and active["n"] == 5 and active["positive_fraction"] == 0.6


# --- the built-in datasets -------------------------------------------------------------

def test_builtin_files_are_the_recorded_copies():
    sources = (DATA_DIR / "SOURCES.md").read_text()
    for dataset in BUILTIN_DATASETS:
        data = dataset.read_bytes()
        blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        assert f"| {dataset.file} |" in sources and blob in sources, dataset.file
        preview = read_preview(data, dataset.file)
        assert preview.smiles_column == dataset.smiles_column
        for column, task in dataset.targets.items():
            assert preview.targets[column] == task, (dataset.name, column)
        assert dataset.name_column in preview.columns and dataset.split in SPLIT_METHODS
        assert dataset.citation and dataset.description
    assert [d.split for d in BUILTIN_DATASETS] == ["random", "random", "random", "scaffold", "random"]


def test_esol_every_row_parses_and_duplicates_are_merged(esol):
    assert not esol.errors
    assert counts(esol) == {"rows_read": 1128, "molecules": 1117, "row_errors": 0, "duplicate_molecules": 11,
                            "rows_merged": 11, "flagged_duplicates": 0}
    # Amigdalin's SMILES ends with a space in the file.
    assert esol.columns["Compound ID"][0] == "Amigdalin" and not esol.smiles[0].endswith(" ")
    assert esol.y[0, 0] == -0.77


def test_tox21_has_12_targets_with_missing_labels_and_8_valence_errors(tox21):
    assert tox21.targets == list(TOX21_ASSAYS) and set(tox21.tasks) == {CLASSIFICATION}
    assert len(tox21) == 7823 and counts(tox21)["rows_read"] == 7831 and np.isnan(tox21.y).sum() > 10_000
    assert len(tox21.errors) == 8
    for error in tox21.errors:
        assert error.column == "smiles"
        assert re.fullmatch(rf"row {error.row}: Explicit valence for atom # \d+ Al, \d+, is greater than permitted",
                            error.message), error.message
    assert 2298 in [e.row for e in tox21.errors]  # TOX24723, line 2299 of the file


# --- splits ----------------------------------------------------------------------------

def _check_partition(split: Split, n: int) -> None:
    sets = [set(split.train), set(split.val), set(split.test)]
    assert sum(map(len, sets)) == len(split.train) + len(split.val) + len(split.test)  # no repeats
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert sets[0] | sets[1] | sets[2] == set(range(n))


def test_random_split_sizes_cover_and_seed(esol):
    n = len(esol)
    split = make_split(esol, "random", (0.8, 0.1, 0.1), seed=3)
    _check_partition(split, n)
    assert (len(split.val), len(split.test)) == (round(0.1 * n), round(0.1 * n))
    assert make_split(esol, "random", seed=3) == split
    assert make_split(esol, "random", seed=4).test != split.test
    assert Split.from_dict(split.as_dict()) == split
    no_test = make_split(esol, "random", (0.9, 0.1, 0.0))
    assert not no_test.test and len(no_test.val) == round(0.1 * n)


def test_scaffold_split_keeps_scaffold_sets_together_and_is_balanced(esol):
    groups = scaffold_groups(esol.smiles)
    split = make_split(esol, "scaffold", seed=0)
    _check_partition(split, len(esol))
    where = {i: name for name, part in (("train", split.train), ("val", split.val), ("test", split.test))
             for i in part}
    for group in groups:
        assert len({where[i] for i in group}) == 1
    # Chemprop's balance: every set larger than half the test size is trained on.
    half_test = 0.1 * len(esol) / 2
    assert all(where[g[0]] == "train" for g in groups if len(g) > half_test)
    assert abs(len(split.test) - 0.1 * len(esol)) < 10
    assert make_split(esol, "scaffold", seed=0) == split
    assert make_split(esol, "scaffold", seed=1).test != split.test


def test_stratified_split_keeps_the_class_balance():
    table = get_builtin("bbbp").load()
    split = make_split(table, "stratified", seed=0)
    _check_partition(split, len(table))
    overall = table.y[:, 0].mean()
    for part in (split.train, split.val, split.test):
        assert abs(table.y[part, 0].mean() - overall) < 0.01
    with pytest.raises(ValueError, match="exactly one target; this dataset has 2"):
        make_split(parse_rows(), "stratified")


def test_split_by_column():
    table = parse_rows()
    split = make_split(table, "column", column="set")
    assert (split.train, split.val, split.test) == ([0, 2, 5], [4], [1, 3])  # case-insensitive, "valid" = val
    assert split.column == "set" and split.sizes == (0.5, round(1 / 6, 6), round(2 / 6, 6))
    with pytest.raises(ValueError, match="Row 1: 'ethanol' in column 'name' is not a set name"):
        make_split(table, "column", column="name")
    with pytest.raises(ValueError, match="Column 'fold' was not kept with the dataset"):
        make_split(table, "column", column="fold")


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "cluster"}, "Unknown split 'cluster'"),
    ({"sizes": (0.8, 0.1, 0.2)}, "must sum to 1 (they sum to 1.1)"),
    ({"sizes": (0.8, 0.2)}, "three numbers"),
    ({"sizes": (1.2, -0.1, -0.1)}, "between 0 and 1"),
    ({"sizes": (0.9, 0.05, 0.05)}, "leaves the val set empty"),
    ({"method": "scaffold", "sizes": (0.5, 0.25, 0.25)}, "leaves the val set empty; use more rows, larger sizes "
     "or a random split."),
])
def test_splits_that_cannot_be_made_say_why(kwargs, message):
    # Six molecules, all with the benzene scaffold but two acyclic ones.
    table = parse_dataset(b"smiles,y\nc1ccccc1,1\nCc1ccccc1,2\nOc1ccccc1,3\nNc1ccccc1,4\nCCO,5\nCCN,6\n",
                          "s.csv", "smiles", {"y": None})
    with pytest.raises(ValueError) as info:
        make_split(table, **kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize("method", ["random", "scaffold"])
def test_kfold(esol, method):
    folds = kfold(esol, k=5, seed=0, method=method)
    assert len(folds) == 5 and [f.fold for f in folds] == list(range(5))
    tests = [set(f.test) for f in folds]
    assert set().union(*tests) == set(range(len(esol))) and sum(map(len, tests)) == len(esol)
    for i, f in enumerate(folds):
        _check_partition(f, len(esol))
        assert f.val == folds[(i + 1) % 5].test and f.folds == 5
    if method == "scaffold":
        fold_of = {i: k for k, t in enumerate(tests) for i in t}
        for group in scaffold_groups(esol.smiles):
            assert len({fold_of[i] for i in group}) == 1
    else:
        assert max(map(len, tests)) - min(map(len, tests)) <= 1
    assert kfold(esol, 5, seed=0, method=method) == folds
    assert kfold(esol, 5, seed=1, method=method)[0].test != folds[0].test
    with pytest.raises(ValueError, match="k of at least 3"):
        kfold(esol, k=2, method=method)
