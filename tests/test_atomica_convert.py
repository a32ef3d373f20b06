"""Structure -> ATOMICA record conversion (analysis/atomica/compute/convert.py, fragment.py).

ATOMICA mode is checked against the records ATOMICA's own data/process_pdbs.py
wrote (tests/fixtures/atomica/inputs/shared.jsonl.gz); the rows below are the CSV
rows it was given (shared/data/atomica_reference/inputs/process_pdbs_index.json).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.atomica.compute import bond_orders
from analysis.atomica.compute.convert import (
    SideOption,
    convert_structure,
    convert_structure_report,
    load_structure,
    suggest_sides,
)
from analysis.atomica.compute.fragment import FragmentationError, fragment_ligand
from analysis.atomica.compute.records import read_records
from analysis.atomica.compute.vocab import UNK_BLOCK, get_vocabulary

FIXTURES = Path(__file__).parent / "fixtures" / "atomica"
STRUCTURES = FIXTURES / "structures"
REFERENCE = FIXTURES / "inputs" / "shared.jsonl.gz"
NAMES = get_vocabulary("PS_300").block_names
INDEX = {name: i for i, name in enumerate(NAMES)}

E20 = "COc1cc2c(cc1OC)C(=O)C(CC1CCN(Cc3ccccc3)CC1)C2"
C2E = ("Nc1nc2c(ncn2[C@@H]2O[C@@H]3COP(=O)(O)O[C@H]4[C@@H](O)[C@H](n5cnc6c5nc(N)[nH]c6=O)O[C@@H]4"
       "COP(=O)(O)O[C@H]3[C@H]2O)c(=O)[nH]1")
# pdb, chain1, chain2, lig_code, lig_smiles -> record ids
ROWS = [
    ("1eve", "A", "A", "E20", E20, ["1eve_A_A_E20"]),
    ("3og7", "A", "A", "032", "CCCS(=O)(=O)Nc1ccc(F)c(C(=O)c2c[nH]c3ncc(-c4ccc(Cl)cc4)cc23)c1F", ["3og7_A_A_032"]),
    ("1hpx", "A_B", "B", "KNI", "CSC[C@H](NC(=O)COc1cccc2cnccc12)C(=O)N[C@@H](Cc1ccccc1)[C@H](O)C(=O)N1CSC[C@H]1"
     "C(=O)NC(C)(C)C", ["1hpx_AB_B_KNI"]),
    ("1rmd", "A", "A", "ZN", "[Zn+2]", [f"1rmd_A_A_ZN_{k}" for k in range(4)]),
    ("3o1h", "A", "B", None, None, ["3o1h_A_B"]),
    ("1tf6", "A", "B_C", None, None, ["1tf6_A_BC"]),
]
FIELDS = ("B", "A", "block_lengths", "segment_ids", "atom_positions")


@pytest.fixture(scope="module")
def reference():
    return {r.id: r for r in read_records(REFERENCE)}


def _convert(pdb, chain1, chain2, code, smiles, mode):
    return convert_structure(STRUCTURES / f"{pdb}.pdb", chain1, chain2, ligand_code=code,
                             ligand_smiles=smiles, mode=mode)


def _segment(record, segment):
    """(block types, block lengths, coordinates) of one segment, global block included."""
    blocks = record.segment_ids == segment
    atoms = np.repeat(blocks, record.block_lengths)
    return record.B[blocks], record.block_lengths[blocks], record.X[atoms]


def _block_atom_sets(record, segment):
    starts = np.concatenate([[0], np.cumsum(record.block_lengths)])
    sets = set()
    for b in np.nonzero(record.segment_ids == segment)[0]:
        xyz = record.X[starts[b]:starts[b + 1]]
        sets.add((int(record.B[b]) if record.B[b] != INDEX["<G>"] else -1,
                  frozenset(map(tuple, np.round(xyz, 3)))))
    return sets


# ---------------------------------------------------------------------------
# ATOMICA mode reproduces ATOMICA's records


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_atomica_mode_reproduces_reference_records(row, reference):
    *args, expected_ids = row
    records = _convert(*args, mode="atomica")
    assert [r.id for r in records] == expected_ids
    for record in records:
        expected = reference[record.id]
        for name in FIELDS:
            np.testing.assert_array_equal(getattr(record, name), getattr(expected, name), err_msg=f"{record.id} {name}")
        # Bit-identical, global (centroid) atoms included: same float32 inputs, same float64/float32 means.
        np.testing.assert_array_equal(record.X, expected.X, err_msg=record.id)
        assert record.block_to_pdb_indexes == expected.block_to_pdb_indexes


def test_atomica_mode_4yb0_matches_except_rdkit_dependent_fragments(reference):
    """4yb0's c-di-GMP fragments differently with RDKit 2026.09 than with the RDKit 2022.09
    ATOMICA pins (reference README, data-conversion quirk 4): one vocabulary fragment gets
    the canonical SMILES "[nH]cn" instead of "nc[nH]" (another vocabulary entry with a lower
    frequency), so the merge order and the block order change. Everything else matches:
    the RNA side exactly (UNK A/G, carbon/uranium C/U, C2E/GDP/Mg as UNK), and on the
    ligand side the same atoms, centroid, block count and atom groups."""
    (record,) = _convert("4yb0", "R", "R", "C2E", C2E, mode="atomica")
    expected = reference["4yb0_R_R_C2E"]
    assert record.id == expected.id
    assert record.block_to_pdb_indexes == expected.block_to_pdb_indexes
    for got, want in zip(_segment(record, 0), _segment(expected, 0)):
        np.testing.assert_array_equal(got, want)
    b_got, len_got, x_got = _segment(record, 1)
    b_want, len_want, x_want = _segment(expected, 1)
    assert len(b_got) == len(b_want) == 19
    np.testing.assert_array_equal(x_got[0], x_want[0])  # float32 centroid of the same atoms
    assert sorted(map(tuple, x_got[1:])) == sorted(map(tuple, x_want[1:]))
    assert sorted(len_got) == sorted(len_want)
    # The two fragment SMILES name the same atoms; the atom groups are identical.
    rename = {INDEX["[nH]cn"]: INDEX["nc[nH]"]}
    got_sets = {(rename.get(b, b), atoms) for b, atoms in _block_atom_sets(record, 1)}
    assert got_sets == _block_atom_sets(expected, 1)
    assert [NAMES[b] for b in b_got].count("[nH]cn") == 2
    assert [NAMES[b] for b in b_want].count("nc[nH]") == 2
    # Atom order inside each block is ATOMICA's too.
    assert x_got[1:8].tolist() == x_want[1:8].tolist()


# ---------------------------------------------------------------------------
# Default mode: the documented differences


def _gemmi_residues_near(pdb, chain, ligand_code, cutoff=8.0):
    """ATOM-record residues of `chain` with a heavy atom within `cutoff` of the
    ligand's heavy atoms, counted with gemmi (convert.py reads with Biopython)."""
    import gemmi

    structure = gemmi.read_structure(str(STRUCTURES / f"{pdb}.pdb"))
    structure.remove_hydrogens()
    model = structure[0]
    ligand = np.array([a.pos.tolist() for ch in model for r in ch if r.name == ligand_code for a in r])
    count = 0
    for residue in model[chain]:
        if residue.het_flag == "A":
            xyz = np.array([a.pos.tolist() for a in residue])
            count += bool(np.linalg.norm(xyz[:, None] - ligand[None], axis=-1).min() < cutoff)
    return count


def _gemmi_ligand_atoms(pdb, ligand_code):
    """(all atoms, hydrogens) of the one HETATM residue `ligand_code`, read with gemmi."""
    import gemmi

    (residue,) = [r for ch in gemmi.read_structure(str(STRUCTURES / f"{pdb}.pdb"))[0]
                  for r in ch if r.name == ligand_code]
    return len(residue), sum(a.element.name == "H" for a in residue)


def test_default_mode_uses_all_atom_distances(reference):
    (atomica,) = _convert("1eve", "A", "A", "E20", E20, mode="atomica")
    (default,) = _convert("1eve", "A", "A", "E20", E20, mode="default")
    # Slot-wise selection keeps 38 residues, as many as ATOMICA's own record has;
    # true atom-pair distances keep 57, counted here with gemmi (README quirk 1).
    slotwise = (reference["1eve_A_A_E20"].segment_ids == 0).sum() - 1
    all_atom = _gemmi_residues_near("1eve", "A", "E20")
    assert (slotwise, all_atom) == (38, 57)
    assert (atomica.segment_ids == 0).sum() - 1 == slotwise
    assert (default.segment_ids == 0).sum() - 1 == all_atom
    assert set(atomica.block_to_pdb_indexes.values()) < set(default.block_to_pdb_indexes.values())
    # Same ligand fragments either way (donepezil has no H atoms in the file).
    np.testing.assert_array_equal(atomica.B[atomica.segment_ids == 1], default.B[default.segment_ids == 1])
    # Every kept residue really has an atom within 8 A of the ligand.
    seg = np.repeat(default.segment_ids, default.block_lengths)
    real = default.A != 2
    lig = default.X[(seg == 1) & real]
    starts = np.concatenate([[0], np.cumsum(default.block_lengths)])
    for b in np.nonzero((default.segment_ids == 0) & (default.B != INDEX["<G>"]))[0]:
        xyz = default.X[starts[b]:starts[b + 1]]
        assert np.linalg.norm(xyz[:, None] - lig[None], axis=-1).min() < 8.0


def test_default_mode_recognises_rna_and_keeps_ions_4yb0():
    (atomica,) = _convert("4yb0", "R", "R", "C2E", C2E, mode="atomica")
    (default,) = _convert("4yb0", "R", "R", "C2E", C2E, mode="default")
    names_a = [NAMES[b] for b in atomica.B[atomica.segment_ids == 0]]
    names_d = [NAMES[b] for b in default.B[default.segment_ids == 0]]
    assert "UNK" in names_a and not {"RA", "RG", "RC", "RU"} & set(names_a)
    assert {"RA", "RG", "RC", "RU"} <= set(names_d)
    assert "UNK" not in names_d and "U" not in names_d and "C" not in names_d
    assert "Mg" in names_d  # MG ions were UNK blocks in ATOMICA mode
    # The ligand itself (C2E R 102) is no longer on the receptor side.
    receptor_residues = {default.block_to_pdb_indexes[i] for i in np.nonzero(default.segment_ids == 0)[0]
                         if i in default.block_to_pdb_indexes}
    assert "R_102" not in receptor_residues
    assert "R_102" in {atomica.block_to_pdb_indexes[i] for i in np.nonzero(atomica.segment_ids == 0)[0] if i}


def test_default_mode_rna_protein_5ddr():
    (atomica,) = convert_structure(STRUCTURES / "5ddr.pdb", "C", "B", mode="atomica")
    (default,) = convert_structure(STRUCTURES / "5ddr.pdb", "C", "B", mode="default")
    rna_a = [NAMES[b] for b in atomica.B[atomica.segment_ids == 1]]
    rna_d = [NAMES[b] for b in default.B[default.segment_ids == 1]]
    assert {"UNK", "C", "U"} & set(rna_a)  # A/G unknown, C carbon, U uranium
    assert set(rna_d) - {"<G>"} <= {"RA", "RG", "RC", "RU", "K", "Mg", "Na", "Cs"}
    assert {"RA", "RG", "RC", "RU"} & set(rna_d)
    # The free glutamine ligand (GLN B 101) is not a GLN residue of the RNA chain in default mode.
    (ligand,) = convert_structure(STRUCTURES / "5ddr.pdb", "B", "B", ligand_code="GLN",
                                  ligand_smiles="N[C@@H](CCC(N)=O)C(=O)O", mode="default")
    assert "B_101" not in {ligand.block_to_pdb_indexes[i] for i in np.nonzero(ligand.segment_ids == 0)[0] if i}
    assert [NAMES[b] for b in ligand.B[ligand.segment_ids == 1]][0] == "<G>"


def test_default_mode_drops_hydrogens_before_fragmenting_1hpx(reference):
    row = ROWS[2]
    (atomica,) = _convert(*row[:5], mode="atomica")
    (default,) = _convert(*row[:5], mode="default")
    h = INDEX["H"]
    # KNI B 1 has 87 atoms in the file, 41 of them hydrogens (read with gemmi);
    # ATOMICA's own record has one block per atom, H included.
    n_atoms, n_hydrogens = _gemmi_ligand_atoms("1hpx", "KNI")
    assert (n_atoms, n_hydrogens) == (87, 41)
    assert (reference["1hpx_AB_B_KNI"].B == h).sum() == n_hydrogens
    assert (atomica.B == h).sum() == n_hydrogens  # fragmentation failed: one block per atom
    assert (default.B == h).sum() == 0 and (default.A == 3).sum() == 0
    lig = default.B[default.segment_ids == 1]
    assert len(lig) < 20 and (lig >= 150).any()  # real PS fragments
    assert (atomica.segment_ids == 1).sum() - 1 == n_atoms
    assert default.block_lengths[default.segment_ids == 1][1:].sum() == n_atoms - n_hydrogens  # heavy atoms


def test_default_mode_ions():
    # Zn ligands are element blocks in both modes; in default mode the other zinc ions of
    # the chain stay on the receptor side as Zn blocks instead of being trimmed.
    records = _convert("1rmd", "A", "A", "ZN", "[Zn+2]", mode="default")
    assert len(records) == 4
    for record in records:
        assert [NAMES[b] for b in record.B[record.segment_ids == 1]] == ["<G>", "Zn"]
    (pair,) = convert_structure(STRUCTURES / "1tf6.pdb", "A", "B_C", mode="default", cutoff=20.0)
    (pair_a,) = convert_structure(STRUCTURES / "1tf6.pdb", "A", "B_C", mode="atomica", cutoff=20.0)
    assert INDEX["Zn"] in pair.B[pair.segment_ids == 0]
    assert INDEX["Zn"] not in pair_a.B  # trailing ZN residues are trimmed by ATOMICA


def test_mmcif_input():
    records = convert_structure(STRUCTURES / "4cup.cif", "A", ligand_code="ZYB",
                                ligand_smiles="NC(=NO)c1ccc(F)cc1", mode="default")
    assert len(records) == 1
    lig = records[0].B[records[0].segment_ids == 1]
    assert lig[0] == INDEX["<G>"] and len(lig) >= 2
    assert records[0].block_lengths[records[0].segment_ids == 1][1:].sum() == 11  # C7FN2O


# ---------------------------------------------------------------------------
# SDF ligand


@pytest.mark.parametrize("mode", ["default", "atomica"])
def test_sdf_ligand(mode):
    (record,) = convert_structure(STRUCTURES / "1ia1_protein.pdb", "A_B",
                                  ligand_sdf=STRUCTURES / "1ia1_TQ3_ligand.sdf", mode=mode)
    names = [NAMES[b] for b in record.B[record.segment_ids == 1]]
    assert names[0] == "<G>"
    assert sorted(names[1:]) == sorted(["N", "N", "S", "c1ccccc1", "c1ccc2ncncc2c1"])
    assert record.block_lengths[record.segment_ids == 1][1:].sum() == 19  # TQ3 heavy atoms
    seg0 = {record.block_to_pdb_indexes[i] for i in np.nonzero(record.segment_ids == 0)[0] if i}
    assert {"B_27", "B_94"} & seg0  # the ligand sits in chain B's DHFR pocket
    assert record.id == "1ia1_protein_AB_sdf_1ia1_TQ3_ligand"


# ---------------------------------------------------------------------------
# Ligands without a SMILES: bond orders inferred, or a warning


def _fields_equal(a, b) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in (*FIELDS, "X"))


def _without(tmp_path, name, keep) -> Path:
    """A copy of a fixture structure without the lines ``keep`` refuses."""
    lines = (STRUCTURES / name).read_text().splitlines(keepends=True)
    path = tmp_path / name
    path.write_text("".join(line for line in lines if keep(line)))
    return path


def test_default_mode_infers_bond_orders_and_matches_the_smiles_conversion(tmp_path):
    # Donepezil's SMILES (E20) is the one ATOMICA's own index row gave for 1eve.
    given = convert_structure_report(STRUCTURES / "1eve.pdb", "A", "A", ligand_code="E20", ligand_smiles=E20)
    inferred = convert_structure_report(STRUCTURES / "1eve.pdb", "A", "A", ligand_code="E20")
    (with_smiles,), (without,) = given.records, inferred.records
    assert with_smiles.num_blocks == without.num_blocks == 63  # was 87: 28 one-atom blocks for the ligand
    assert _fields_equal(with_smiles, without)
    assert [r.as_dict() for r in given.ligands] == [{
        "ligand": "E20 A 2001", "bond_orders": "SMILES you gave", "fragmented": True, "blocks": 4, "warning": ""}]
    (report,) = inferred.ligands
    # No hydrogens in the file: CONECT gives the bonds, Open Babel their orders.
    assert report.bond_orders == "CONECT records + Open Babel PerceiveBondOrders"
    assert report.fragmented and not report.warning and inferred.warnings == []

    no_conect = _without(tmp_path, "1eve.pdb", lambda line: not line.startswith("CONECT"))
    conversion = convert_structure_report(no_conect, "A", "A", ligand_code="E20")
    assert conversion.ligands[0].bond_orders == bond_orders.SOURCE_OPENBABEL
    assert _fields_equal(conversion.records[0], with_smiles)


def test_ligand_with_hydrogens_gets_rdkit_determine_bonds():
    # KNI in 1hpx carries its hydrogens: RDKit's xyz2mol finds the orders.
    kni = "CSC[C@H](NC(=O)COc1cccc2cnccc12)C(=O)N[C@@H](Cc1ccccc1)[C@H](O)C(=O)N1CSC[C@H]1C(=O)NC(C)(C)C"
    inferred = convert_structure_report(STRUCTURES / "1hpx.pdb", "A_B", "B", ligand_code="KNI")
    (given,) = convert_structure(STRUCTURES / "1hpx.pdb", "A_B", "B", ligand_code="KNI", ligand_smiles=kni)
    assert inferred.ligands[0].bond_orders == bond_orders.SOURCE_RDKIT
    assert _fields_equal(inferred.records[0], given)


def test_ligand_with_a_missing_atom_is_kept_whole_and_said_so(tmp_path):
    broken = _without(tmp_path, "1eve.pdb", lambda line: " C28 E20 " not in line)
    conversion = convert_structure_report(broken, "A", "A", ligand_code="E20")
    (report,) = conversion.ligands
    assert (report.fragmented, report.bond_orders, report.blocks) == (False, "none", 27)
    (warning,) = conversion.warnings
    assert warning.startswith("Ligand E20 A 2001 is not fragmented")
    assert "C23 N O3" in warning and "C24 N O3" in warning  # the residue against the file's FORMUL
    ligand = conversion.records[0].segment_ids == 1
    assert (conversion.records[0].block_lengths[ligand][1:] == 1).all()  # one block per atom


def test_linked_residue_may_lack_its_leaving_atom():
    # NAG on Asn (CONECT 447-4256) has lost O1 of its formula C8 H15 N O6 and is still fragmented.
    conversion = convert_structure_report(STRUCTURES / "1eve.pdb", "A", "A", ligand_code="NAG")
    assert conversion.warnings == []
    assert all(r.fragmented and r.bond_orders.startswith("CONECT records") for r in conversion.ligands)


def test_atomica_mode_infers_nothing_but_warns(reference):
    conversion = convert_structure_report(STRUCTURES / "1eve.pdb", "A", "A", ligand_code="E20", mode="atomica")
    (report,) = conversion.ligands
    assert not report.fragmented and report.bond_orders == "none"
    assert "ATOMICA-compatible mode does not infer bond orders" in report.warning
    # With the SMILES it still writes ATOMICA's own record, with no warning.
    given = convert_structure_report(STRUCTURES / "1eve.pdb", "A", "A", ligand_code="E20", ligand_smiles=E20,
                                     mode="atomica")
    assert given.warnings == [] and _fields_equal(given.records[0], reference["1eve_A_A_E20"])


def test_block_labels_are_unique_per_block():
    from analysis.atomica.outputs import block_labels

    for smiles in (E20, None):
        for mode in ("default", "atomica"):
            (record,) = convert_structure(STRUCTURES / "1eve.pdb", "A", "A", ligand_code="E20",
                                          ligand_smiles=smiles, mode=mode)
            labels = block_labels(record)
            assert len(labels) == record.num_blocks == len(set(labels)), (smiles, mode)
    ligand = [label for label in labels if label.startswith("A:2001")]
    assert len(ligand) == 28 and ligand[0] == "A:2001 frag 1 (C)"  # ATOMICA mode, no SMILES: one per atom
    (record,) = convert_structure(STRUCTURES / "1eve.pdb", "A", "A", ligand_code="E20")
    fragments = [label for label in block_labels(record) if label.startswith("A:2001")]
    assert [label.split(" (")[0] for label in fragments] == [f"A:2001 frag {k}" for k in range(1, 5)]


# ---------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("mode", ["atomica", "default"])
@pytest.mark.parametrize("kwargs, message", [
    (dict(chains1="Z", ligand_code="E20"), r"1eve\.pdb: chain 'Z' not found"),
    (dict(chains1="A", ligand_code="XYZ"), r"1eve\.pdb: ligand 'XYZ' not found .*E20"),
    (dict(chains1="A", chains2="A", ligand_code="E20", ligand_smiles="c1ccccc1"),
     r"ligand E20 A 2001: SMILES 'c1ccccc1' has heavy atoms C6 but the structure has C24 N1 O3"),
    # Same formula, methoxy groups moved: only the connectivity tells.
    (dict(chains1="A", ligand_code="E20", ligand_smiles="COc1ccc2c(c1OC)C(=O)C(CC1CCN(Cc3ccccc3)CC1)C2"),
     r"ligand E20 A 2001: SMILES .* does not match the atoms' connectivity"),
    (dict(chains1="A", ligand_code="E20", ligand_smiles="not a smiles"), r"cannot be parsed"),
    (dict(chains1="A", ligand_code="E20", ligand_smiles=E20, cutoff=1.0),
     r"1eve\.pdb: no atoms of chain\(s\) A within 1\.0 A of ligand E20"),
    (dict(chains1="A"), r"give chains2, a ligand_code or a ligand_sdf"),
])
def test_errors(kwargs, message, mode):
    with pytest.raises(ValueError, match=message):
        convert_structure(STRUCTURES / "1eve.pdb", mode=mode, **kwargs)


def test_error_not_a_structure_file(tmp_path):
    for name, text in [("x.pdb", "HEADER only\nEND\n"), ("x.cif", "data_x\n_cell.length_a 1\n"),
                       ("x.txt", "hello\n")]:
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=rf"{name}: neither a PDB nor an mmCIF"):
            convert_structure(tmp_path / name, "A", "B")
    with pytest.raises(ValueError, match="1ia1_TQ3_ligand.sdf: neither a PDB nor an mmCIF"):
        load_structure(STRUCTURES / "1ia1_TQ3_ligand.sdf")
    with pytest.raises(ValueError, match="no such structure file"):
        convert_structure(tmp_path / "missing.pdb", "A", "B")
    with pytest.raises(ValueError, match="mode must be one of"):
        convert_structure(STRUCTURES / "1rmd.pdb", "A", ligand_code="ZN", mode="fast")


def test_error_no_interface_between_chains():
    with pytest.raises(ValueError, match=r"3o1h\.pdb: no atoms of chain\(s\) A within 0\.5 A of chain\(s\) B"):
        convert_structure(STRUCTURES / "3o1h.pdb", "A", "B", cutoff=0.5)


def test_fragmenter_reports_unfragmentable_ligands():
    with pytest.raises(FragmentationError, match="Zn"):
        fragment_ligand(["Zn"], np.zeros((1, 3)), smiles="[Zn+2]")
    # Benzene ring, 1.39 A bonds: one vocabulary fragment holding all six atoms in order.
    angles = np.arange(6) * np.pi / 3
    ring = np.stack([1.39 * np.cos(angles), 1.39 * np.sin(angles), np.zeros(6)], axis=1)
    (fragment,) = fragment_ligand(["C"] * 6, ring, smiles="c1ccccc1")
    assert fragment.smiles == "c1ccccc1" and sorted(fragment.atoms) == list(range(6))
    assert INDEX[fragment.smiles] != UNK_BLOCK


# ---------------------------------------------------------------------------
# suggest_sides


def test_suggest_sides():
    options = suggest_sides(STRUCTURES / "1hpx.pdb")
    assert all(isinstance(o, SideOption) for o in options)
    assert options[0].kind == "ligand" and options[0].ligand_code == "KNI"
    assert options[0].chains1 == ("A", "B") and options[0].chains2 == ("B",)
    assert [o.kwargs() for o in options] == [
        {"chains1": ["A", "B"], "chains2": ["B"], "ligand_code": "KNI"},
        {"chains1": ["A"], "chains2": ["B"]},
    ]
    # An option feeds the converter directly.
    (record,) = convert_structure(STRUCTURES / "1hpx.pdb", **options[1].kwargs())
    assert record.id == "1hpx_A_B"

    tf6 = suggest_sides(load_structure(STRUCTURES / "1tf6.pdb"))
    kinds = [o.kind for o in tf6]
    assert kinds.index("ion") < kinds.index("chains")  # ligands/ions first
    assert any(o.kwargs() == {"chains1": ["A"], "chains2": ["B", "C"]} for o in tf6)
    zn = next(o for o in tf6 if o.ligand_code == "ZN")
    assert zn.kind == "ion" and zn.chains1 == ("A", "D") and zn.copies == 12
    # Protein first in a protein-DNA pair; waters never offered.
    assert {"chains1": ["A"], "chains2": ["B"]} in [o.kwargs() for o in tf6]
    assert not any(o.ligand_code == "HOH" for o in tf6)

    rna = suggest_sides(STRUCTURES / "4yb0.pdb")
    codes = [o.ligand_code for o in rna if o.kind == "ligand"]
    assert codes == ["GDP", "C2E"] and "RNA" in rna[0].label
