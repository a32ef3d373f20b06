"""Binding sites (design.compute.sites) and Vina docking with Meeko (design.compute.docking).

The redocking check puts TQ3 back into dihydrofolate reductase 1IA1 (chain B
pocket, NADPH kept as a typed cofactor) from an ETKDG conformer, not from
the crystal pose. Achieved on 2 cores with exhaustiveness 4, seed 0: best
pose -8.8 kcal/mol at 0.33 Å heavy-atom symmetry-aware RMSD from the
crystal pose, about 20-30 s of docking.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from rdkit import Chem

from design.compute.docking import dock, pose_rmsd, prepare_ligand, prepare_receptor
from design.compute.sites import site_from_box, site_from_ligand, site_from_residues

FIXTURES = Path(__file__).parent / "fixtures" / "design"
PROTEIN = FIXTURES / "1ia1_protein.pdb"
LIGAND = FIXTURES / "1ia1_TQ3_ligand.sdf"


@pytest.fixture(scope="module")
def receptor():
    return prepare_receptor(PROTEIN)


def test_site_from_ligand_lists_pocket_residues():
    site = site_from_ligand(PROTEIN, LIGAND)
    assert site.warnings == []
    assert all(r.startswith("B:") for r in site.residues)
    # DHFR's catalytic acid (Glu/Asp ~30) and the Phe that stacks the ligand line the pocket.
    assert "B:GLU:32" in site.residues and "B:PHE:36" in site.residues
    assert all(18 <= s <= 30 for s in site.size)
    assert site.protein_atoms_in_box > 100


def test_box_checks_warn_empty_and_large():
    # The centre given for this pair in shared/data/SOURCES.md lies ~60 Å
    # outside the protein; the check must say so instead of docking into vacuum.
    far = site_from_box(PROTEIN, (1.548, 68.184, 83.831), 30)
    assert any("no protein atoms" in w for w in far.warnings)
    big = site_from_box(PROTEIN, (10.1, 36.0, 18.4), (40, 40, 40))
    assert any("large" in w for w in big.warnings) and big.protein_atoms_in_box > 0
    with pytest.raises(ValueError, match="positive"):
        site_from_box(PROTEIN, (0, 0, 0), (0, 10, 10))
    by_res = site_from_residues(PROTEIN, ["B:32", "B:PHE:36", "B:ILE:9"])
    assert by_res.residues == ["B:GLU:32", "B:PHE:36", "B:ILE:9"] and by_res.warnings == []
    with pytest.raises(ValueError, match="residue 'B:999'"):
        site_from_residues(PROTEIN, ["B:999"])


def test_receptor_preparation_reports_failures_by_reason(receptor):
    reasons = receptor.failures_by_reason()
    # Six residues have truncated side chains in this entry.
    assert sorted(reasons["no Meeko template matched (missing or extra heavy atoms)"]) == sorted(
        ["A:22 LYS", "A:45 LYS", "A:105 ASP", "B:45 LYS", "B:170 ASP", "B:192 LYS"])
    assert "B:195 NDP" in receptor.kept_hetero
    lines = [l for l in receptor.pdbqt.splitlines() if l.startswith(("ATOM", "HETATM"))]
    assert any(l.endswith("HD") for l in lines), "polar hydrogens must be added"
    assert all(l[70:76].strip() for l in lines), "every atom needs a charge column"
    with pytest.raises(ValueError, match="receptor"):
        prepare_receptor("not a pdb")


def test_ligand_preparation_errors_name_the_ligand():
    assert "TORSDOF" in prepare_ligand("CCOc1ccccc1")
    with pytest.raises(ValueError, match="cmpd-7"):
        prepare_ligand("C1CC", name="cmpd-7")


def test_redock_crystal_ligand_within_2_angstrom(receptor):
    crystal = Chem.MolFromMolFile(str(LIGAND))
    site = site_from_ligand(PROTEIN, LIGAND)
    started = time.monotonic()
    result = dock(receptor, crystal, site, exhaustiveness=4, n_poses=5, cpu=2, random_seed=0)
    elapsed = time.monotonic() - started
    rmsd = pose_rmsd(result.poses[0], crystal)
    assert rmsd < 2.0, f"best pose {rmsd:.2f} Å from the crystal pose"
    assert -11 < result.best_score < -6
    assert result.scores == sorted(result.scores)
    assert result.cpu == 2 and result.exhaustiveness == 4
    assert result.poses_sdf.count("$$$$") == len(result.poses) and "VINA_SCORE" in result.poses_sdf
    assert elapsed < 90


def test_scorer_docks_ligands_with_new_elements_one_after_another():
    """Grids are built for every atom type: a sulfur or halogen ligand after a
    plain one must dock (Vina would otherwise exit the whole process)."""
    from design.compute.docking import DockingScorer, prepare_receptor

    receptor = prepare_receptor((FIXTURES / "1ia1_protein.pdb").read_text())
    scorer = DockingScorer(receptor, center=(10.26, 36.34, 18.56), size=(20, 20, 20),
                           exhaustiveness=1, n_poses=1)
    scores = [scorer(smiles) for smiles in ("CCO", "CCS(=O)(=O)N", "FC(F)(F)c1ccc(Cl)cc1Br")]
    assert all(-15 < s < 5 for s in scores)


def test_rmsd_needs_the_same_molecule_and_reads_a_ligand_from_pdb_records():
    from design.compute.docking import reference_from_pdb, reference_rmsds

    crystal = Chem.MolFromMolFile(str(LIGAND))
    # The same graph with other bond orders and charges (as PDB records give it) still matches.
    assert pose_rmsd(crystal, crystal) == 0.0
    assert reference_rmsds([Chem.AddHs(Chem.MolFromSmiles("CCO"), addCoords=False)], crystal) is None
    with pytest.raises(ValueError, match="not the same molecule"):
        pose_rmsd(Chem.MolFromSmiles("CCO"), crystal)
    nadph = reference_from_pdb(PROTEIN.read_text(), "B", "195", "NDP")
    assert nadph.GetNumAtoms() == 48
    assert reference_rmsds([nadph], nadph) == [0.0]


def test_ligands_not_started_by_the_deadline_are_row_errors(receptor):
    from design.compute.docking import dock_many

    rows = dock_many(receptor, [("a", "CCO"), ("b", "CCN")], center=(10.26, 36.34, 18.56), size=(20, 20, 20),
                     exhaustiveness=1, n_poses=1, deadline=time.monotonic() - 1)
    assert [r["error"] for r in rows] == ["a: not docked: the job's time budget ran out",
                                          "b: not docked: the job's time budget ran out"]
