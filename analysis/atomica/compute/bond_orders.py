"""Bond orders of a ligand read from a structure, when the user gave no SMILES.

ATOMICA's fragment vocabulary needs bond orders; a PDB or mmCIF file gives
coordinates and, at best, CONECT connectivity without orders. The sources are
tried in this order, and the first whose result passes the checks wins:

1. the ligand carries its hydrogens: RDKit ``rdDetermineBonds.DetermineBonds``
   (connectivity and orders from the coordinates), total charge tried at 0,
   then +1, -1, +2, -2;
2. the file's CONECT records give the connectivity: orders by RDKit
   ``DetermineBondOrders`` when hydrogens are present, otherwise by Open Babel's
   ``PerceiveBondOrders`` (bond lengths and angles; xyz2mol needs every H);
3. hydrogens absent, no CONECT: Open Babel ``ConnectTheDots`` then
   ``PerceiveBondOrders`` on the coordinates.

Checks on every candidate: the residue is complete when the file states the
component's formula (PDB ``FORMUL`` or mmCIF ``_chem_comp.formula``: same heavy
atoms, element by element; a residue bonded to another, per CONECT, may lack up
to two leaving atoms), the molecule sanitises in RDKit, and its hydrogen count
(explicit + implicit) equals the formula's when one is known and the residue is
not linked. Failing all, :class:`BondOrderError` says why,
and the caller keeps the ligand unfragmented and says so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdDetermineBonds
from rdkit.Geometry import Point3D
from rdkit.rdBase import BlockLogs

from .fragment import FragmentationError, build_molecule

SOURCE_SMILES = "SMILES you gave"
SOURCE_SDF = "SDF you gave"
SOURCE_RDKIT = "inferred from coordinates (RDKit DetermineBonds)"
SOURCE_CONECT = "CONECT records"  # + how the orders were found, see _conect
SOURCE_OPENBABEL = "inferred from coordinates (Open Babel PerceiveBondOrders)"
SOURCE_NONE = "none"

_CHARGES = (0, 1, -1, 2, -2)


class BondOrderError(FragmentationError):
    """No source gave bond orders that pass the checks."""


def formula_text(counts: Counter) -> str:
    return " ".join(f"{e}{counts[e] if counts[e] != 1 else ''}" for e in sorted(counts))


def _rdkit_mol(elements: Sequence[str], coords: np.ndarray) -> Chem.RWMol:
    mol = Chem.RWMol()
    for element in elements:
        mol.AddAtom(Chem.Atom(element))
    conformer = Chem.Conformer(len(elements))
    for i, xyz in enumerate(np.asarray(coords, dtype=np.float64)):
        conformer.SetAtomPosition(i, Point3D(*map(float, xyz)))
    mol.AddConformer(conformer, assignId=True)
    return mol


def _heavy_bonds(mol: Chem.Mol, heavy: list[int]) -> list[tuple[int, int, int]]:
    """Bonds between heavy atoms, renumbered to positions in ``heavy``, Kekulé orders."""
    kekule = Chem.Mol(mol)
    Chem.Kekulize(kekule, clearAromaticFlags=True)
    position = {atom: k for k, atom in enumerate(heavy)}
    order = {Chem.BondType.SINGLE: 1, Chem.BondType.DOUBLE: 2, Chem.BondType.TRIPLE: 3}
    bonds = []
    for bond in kekule.GetBonds():
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        if i in position and j in position:
            if bond.GetBondType() not in order:
                raise BondOrderError(f"bond of type {bond.GetBondType()} between atoms {i} and {j}")
            bonds.append((position[i], position[j], order[bond.GetBondType()]))
    return bonds


def _rdkit_determine(elements, coords, heavy, conect) -> list[tuple[int, int, int]]:
    problems = []
    for charge in _CHARGES:
        mol = _rdkit_mol(elements, coords)
        try:
            if conect is None:
                rdDetermineBonds.DetermineBonds(mol, charge=charge)
            else:
                for i, j in conect:
                    mol.AddBond(i, j, Chem.BondType.SINGLE)
                rdDetermineBonds.DetermineBondOrders(mol, charge=charge)
            Chem.SanitizeMol(mol)
        except Exception as exc:  # RDKit raises ValueError and its own types
            problems.append(f"charge {charge:+d}: {str(exc).splitlines()[0]}")
            continue
        return _heavy_bonds(mol, heavy)
    raise BondOrderError("RDKit found no bond orders (" + "; ".join(problems) + ")")


def _openbabel_orders(elements, coords, heavy, conect) -> list[tuple[int, int, int]]:
    from openbabel import openbabel as ob

    ob.obErrorLog.SetOutputLevel(0)
    mol = ob.OBMol()
    mol.BeginModify()
    for element, xyz in zip(elements, np.asarray(coords, dtype=np.float64)):
        atom = mol.NewAtom()
        atom.SetAtomicNum(ob.GetAtomicNum(element))
        atom.SetVector(*map(float, xyz))
    if conect is not None:
        for i, j in conect:
            mol.AddBond(i + 1, j + 1, 1)
    mol.EndModify()
    if conect is None:
        mol.ConnectTheDots()
    mol.PerceiveBondOrders()
    position = {atom: k for k, atom in enumerate(heavy)}
    bonds = []
    for bond in ob.OBMolBondIter(mol):
        i, j = bond.GetBeginAtomIdx() - 1, bond.GetEndAtomIdx() - 1
        if i in position and j in position:
            bonds.append((position[i], position[j], int(bond.GetBondOrder())))
    if any(order not in (1, 2, 3) for _, _, order in bonds):
        raise BondOrderError("Open Babel gave a bond order outside 1-3")
    return bonds


def _checked(heavy_elements, bonds, expected_h: int | None, method: str):
    _quiet = BlockLogs()  # noqa: F841 - failures are reported through the exception
    try:
        mol = build_molecule(heavy_elements, bonds)
    except FragmentationError as exc:
        raise BondOrderError(f"{method}: {exc}") from None
    if expected_h is not None:
        found = sum(a.GetTotalNumHs() for a in mol.GetAtoms())
        # build_molecule's implicit H stand for the file's explicit ones as well.
        # Its N+ (four bonds) leave a zwitterion's anion protonated: one H each
        # may differ; a wrong double bond moves the count by two.
        charged = sum(a.GetFormalCharge() != 0 for a in mol.GetAtoms())
        if abs(found - expected_h) > charged:
            raise BondOrderError(f"{method}: the bond orders imply {found} hydrogens, the formula has {expected_h}")
    return bonds


def infer_bond_orders(elements: Sequence[str], coords: np.ndarray, *,
                      conect: Sequence[tuple[int, int]] | None = None,
                      formula: Counter | None = None,
                      linked: bool = False) -> tuple[list[tuple[int, int, int]], str]:
    """Bonds (i, j, order 1-3) between the heavy atoms (numbered in their order
    among ``elements``) and the name of the source that gave them.

    ``elements`` and ``coords`` are all the residue's atoms, hydrogens included
    where the file has them; ``conect`` pairs index into them; ``formula`` is
    the component's full formula (element -> count) when the file states it.
    ``linked``: the residue is bonded to another one (a glycan on Asn, say), so
    it may lack the leaving atoms of its formula, and its hydrogen count differs.
    Raises BondOrderError naming what failed.
    """
    elements = list(elements)
    heavy = [k for k, e in enumerate(elements) if e not in ("H", "D")]
    heavy_elements = [elements[k] for k in heavy]
    n_h = len(elements) - len(heavy)
    expected_h = None
    if formula:
        wanted = Counter({e: n for e, n in formula.items() if e not in ("H", "D")})
        found = Counter(heavy_elements)
        leaving = linked and not (found - wanted) and sum((wanted - found).values()) <= 2
        if wanted != found and not leaving:
            raise BondOrderError(f"the residue has heavy atoms {formula_text(found)} but the file's formula for it "
                                 f"has {formula_text(wanted)}: atoms are missing")
        if not linked:
            expected_h = formula.get("H", 0) + formula.get("D", 0)
    if len(heavy) < 2:
        raise BondOrderError("fewer than two heavy atoms")
    problems = []
    attempts = []
    if n_h:
        attempts.append((SOURCE_RDKIT, lambda: _rdkit_determine(elements, coords, heavy, None)))
    if conect:
        how = "RDKit DetermineBondOrders" if n_h else "Open Babel PerceiveBondOrders"
        run = (lambda: _rdkit_determine(elements, coords, heavy, conect)) if n_h else \
            (lambda: _openbabel_orders(elements, coords, heavy, conect))
        attempts.append((f"{SOURCE_CONECT} + {how}", run))
    if not n_h:
        attempts.append((SOURCE_OPENBABEL, lambda: _openbabel_orders(elements, coords, heavy, None)))
    for source, attempt in attempts:
        try:
            return _checked(heavy_elements, attempt(), expected_h, source), source
        except BondOrderError as exc:
            problems.append(str(exc) if str(exc).startswith(source) else f"{source}: {exc}")
    raise BondOrderError("; ".join(problems))
