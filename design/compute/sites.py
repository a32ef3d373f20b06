"""Binding-site definitions for docking: a box (centre and size in Å) plus,
where it is known, the residues lining it.

Three ways to define one:
  * `site_from_ligand`: around a co-crystallised ligand, residues within a
    cutoff of any of its heavy atoms;
  * `site_from_residues`: around listed residues ("A:30", "B:ASP:27");
  * `site_from_box`: an explicit centre and size.
Each result carries `warnings`, e.g. when the box holds no protein atoms
(a centre in the wrong frame) or is larger than Vina searches well.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
from rdkit import Chem

from .molecules import NO_LIMITS, MoleculeLimits, parse_molblock, read_sdf

__all__ = ["ProteinAtom", "BindingSite", "read_protein_atoms", "site_from_ligand", "site_from_residues",
           "site_from_box", "check_box", "MAX_EDGE", "MIN_EDGE"]

# Vina's authors advise search spaces under 30 x 30 x 30 Å; beyond that the
# search no longer covers the space at normal exhaustiveness.
MAX_EDGE = 30.0
# A box shorter than a drug-sized ligand cannot contain its poses.
MIN_EDGE = 8.0
_WATERS = {"HOH", "WAT", "DOD", "H2O"}


@dataclass(frozen=True)
class ProteinAtom:
    record: str      # ATOM or HETATM
    chain: str
    resname: str
    resnum: int
    icode: str
    name: str
    element: str
    xyz: tuple

    @property
    def residue_id(self) -> str:
        return f"{self.chain}:{self.resname}:{self.resnum}{self.icode}"


@dataclass
class BindingSite:
    center: tuple
    size: tuple
    method: str
    residues: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    protein_atoms_in_box: int = 0

    def as_dict(self) -> dict:
        return {"center": list(self.center), "size": list(self.size), "method": self.method,
                "residues": list(self.residues), "warnings": list(self.warnings),
                "protein_atoms_in_box": self.protein_atoms_in_box}


def _read_text(source) -> str:
    if isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source and os.path.isfile(source)):
        with open(source, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    return str(source)


def read_protein_atoms(pdb, include_hetero: bool = True) -> list[ProteinAtom]:
    """ATOM (and non-water HETATM) records of a PDB file or text; first model only."""
    atoms = []
    for lineno, line in enumerate(_read_text(pdb).splitlines(), start=1):
        if line.startswith("ENDMDL"):
            break
        record = line[:6].strip()
        if record not in ("ATOM", "HETATM"):
            continue
        resname = line[17:20].strip()
        if record == "HETATM" and (not include_hetero or resname in _WATERS):
            continue
        try:
            xyz = (float(line[30:38]), float(line[38:46]), float(line[46:54]))
            resnum = int(line[22:26])
        except ValueError:
            raise ValueError(f"PDB line {lineno}: unreadable coordinates or residue number") from None
        element = line[76:78].strip() or line[12:16].strip()[:1]
        atoms.append(ProteinAtom(record, line[21].strip(), resname, resnum, line[26].strip(),
                                 line[12:16].strip(), element.capitalize(), xyz))
    if not atoms:
        raise ValueError("PDB: no ATOM records found")
    return atoms


def _coords(atoms) -> np.ndarray:
    return np.array([a.xyz for a in atoms], dtype=float)


def check_box(atoms: list[ProteinAtom], center, size) -> tuple[int, list[str]]:
    """Number of protein atoms inside the box and the warnings it deserves."""
    center, size = np.asarray(center, float), np.asarray(size, float)
    if center.shape != (3,) or size.shape != (3,):
        raise ValueError("box: centre and size need three numbers each (x, y, z)")
    if not np.all(np.isfinite(center)) or not np.all(np.isfinite(size)):
        raise ValueError("box: centre and size must be finite numbers")
    if np.any(size <= 0):
        raise ValueError(f"box: every size must be positive, got {size.tolist()}")
    warnings = []
    xyz = _coords([a for a in atoms if a.record == "ATOM"] or atoms)
    inside = int(np.all(np.abs(xyz - center) <= size / 2, axis=1).sum())
    if inside == 0:
        nearest = float(np.min(np.linalg.norm(xyz - center, axis=1)))
        warnings.append(f"the box contains no protein atoms (nearest is {nearest:.1f} Å from its centre): "
                        "check the centre is in the receptor's coordinate frame")
    if np.any(size > MAX_EDGE):
        warnings.append(f"the box is large ({' x '.join(f'{s:g}' for s in size)} Å): Vina samples boxes over "
                        f"{MAX_EDGE:g} Å per edge poorly; raise exhaustiveness or shrink it")
    if np.any(size < MIN_EDGE):
        warnings.append(f"the box is small ({' x '.join(f'{s:g}' for s in size)} Å): a drug-sized ligand may not fit")
    return inside, warnings


def _residues_near(atoms, points: np.ndarray, cutoff: float) -> list[str]:
    from scipy.spatial import cKDTree

    # A k-d tree, not an atoms x points distance matrix: that matrix for a
    # large structure and a large ligand runs to gigabytes in a web request.
    xyz = _coords(atoms)
    d, _ = cKDTree(points).query(xyz, k=1, distance_upper_bound=cutoff + 1e-9)
    return list(dict.fromkeys(atom.residue_id for atom, dist in zip(atoms, d) if dist <= cutoff))


def _box_around(points: np.ndarray, padding: float, min_size: float):
    lo, hi = points.min(axis=0), points.max(axis=0)
    center = (lo + hi) / 2
    size = np.maximum(hi - lo + 2 * padding, min_size)
    return tuple(round(float(c), 3) for c in center), tuple(round(float(s), 3) for s in size)


def _ligand_mol(ligand, limits: MoleculeLimits = NO_LIMITS) -> Chem.Mol:
    if isinstance(ligand, Chem.Mol):
        mol = ligand
    else:
        text = _read_text(ligand)
        if "$$$$" in text or text.count("M  END") > 1:
            # Only the first record is used: the rest of the file is not parsed.
            end = text.find("$$$$")
            records = read_sdf(text if end < 0 else text[:end], limits=limits)
            if not records:
                raise ValueError("ligand: the SDF has no records")
            if not records[0].ok:
                raise ValueError(f"ligand: {records[0].error}")
            mol = records[0].mol
        else:
            mol = parse_molblock(text, "ligand", limits=limits)
    if mol.GetNumConformers() == 0:
        raise ValueError("ligand: no coordinates (a co-crystallised ligand needs its 3D pose)")
    return mol


def site_from_ligand(protein, ligand, cutoff: float = 5.0, padding: float = 6.0,
                     min_size: float = 18.0, limits: MoleculeLimits = NO_LIMITS) -> BindingSite:
    """Box around the ligand's heavy atoms (extent + `padding` on every side,
    at least `min_size` per edge), residues with an atom within `cutoff` Å.
    `limits` caps the ligand's size before RDKit sanitises it."""
    atoms = protein if isinstance(protein, list) else read_protein_atoms(protein)
    mol = _ligand_mol(ligand, limits)
    points = np.array([list(mol.GetConformer().GetAtomPosition(a.GetIdx()))
                       for a in mol.GetAtoms() if a.GetAtomicNum() > 1])
    center, size = _box_around(points, padding, min_size)
    inside, warnings = check_box(atoms, center, size)
    residues = _residues_near([a for a in atoms if a.record == "ATOM"], points, cutoff)
    if not residues:
        warnings.append(f"no protein residue lies within {cutoff:g} Å of the ligand: is it from this structure?")
    return BindingSite(center, size, f"ligand ({mol.GetProp('_Name') if mol.HasProp('_Name') else 'given'}), "
                       f"residues within {cutoff:g} Å, box padding {padding:g} Å", residues, warnings, inside)


def hetero_codes(atoms: list[ProteinAtom]) -> list[str]:
    """Ligand codes present as HETATM records (waters left out), as “CHAIN:CODE”."""
    return list(dict.fromkeys(f"{a.chain}:{a.resname}" for a in atoms
                              if a.record == "HETATM" and a.resname not in ("HOH", "WAT", "DOD")))


def site_from_hetero(protein, code: str, cutoff: float = 5.0, padding: float = 6.0,
                     min_size: float = 18.0) -> BindingSite:
    """Like site_from_ligand, for a ligand inside the structure's own HETATM
    records, named “E20” (first copy) or “A:E20” (the copy on chain A)."""
    atoms = protein if isinstance(protein, list) else read_protein_atoms(protein)
    chain, _, name = code.strip().upper().rpartition(":")
    copies = [a for a in atoms if a.record == "HETATM" and a.resname == name and (not chain or a.chain == chain)]
    if not copies:
        present = ", ".join(hetero_codes(atoms)[:20]) or "none"
        raise ValueError(f"ligand {code!r} is not among the structure's HETATM groups ({present})")
    first = (copies[0].chain, copies[0].resnum, copies[0].icode)
    ligand = [a for a in copies if (a.chain, a.resnum, a.icode) == first and a.element not in ("H", "D")]
    points = np.array([a.xyz for a in ligand], dtype=float)
    center, size = _box_around(points, padding, min_size)
    inside, warnings = check_box(atoms, center, size)
    residues = _residues_near([a for a in atoms if a.record == "ATOM"], points, cutoff)
    return BindingSite(center, size, f"co-crystallised ligand {ligand[0].residue_id} (from the structure), "
                       f"residues within {cutoff:g} Å, box padding {padding:g} Å", residues, warnings, inside)


def _parse_residue(spec: str):
    parts = [p.strip() for p in str(spec).replace(" ", ":").split(":") if p.strip()]
    if len(parts) == 2:
        chain, number = parts
        name = None
    elif len(parts) == 3:
        chain, name, number = parts
    else:
        raise ValueError(f"residue {spec!r}: use CHAIN:NUMBER or CHAIN:NAME:NUMBER, e.g. A:30 or A:GLU:30")
    icode = ""
    if number and number[-1].isalpha():
        number, icode = number[:-1], number[-1]
    try:
        return chain, (name.upper() if name else None), int(number), icode
    except ValueError:
        raise ValueError(f"residue {spec!r}: {number!r} is not a residue number") from None


def site_from_residues(protein, residues, padding: float = 6.0, min_size: float = 18.0) -> BindingSite:
    atoms = protein if isinstance(protein, list) else read_protein_atoms(protein)
    if not residues:
        raise ValueError("residues: the list is empty")
    # Atoms by residue, built once: a scan of every atom per listed residue
    # is residues x atoms in a web request.
    by_residue: dict[tuple, list[ProteinAtom]] = {}
    for atom in atoms:
        by_residue.setdefault((atom.chain, atom.resnum, atom.icode), []).append(atom)
    chosen, found = [], {}
    for spec in residues:
        chain, name, number, icode = _parse_residue(spec)
        match = [a for a in by_residue.get((chain, number, icode), []) if name is None or a.resname == name]
        if not match:
            raise ValueError(f"residue {spec!r}: not found in the structure")
        chosen.extend(match)
        found[match[0].residue_id] = None
    found = list(found)
    center, size = _box_around(_coords(chosen), padding, min_size)
    inside, warnings = check_box(atoms, center, size)
    return BindingSite(center, size, f"residues {', '.join(found)}, box padding {padding:g} Å", found,
                       warnings, inside)


def site_from_box(protein, center, size, cutoff_residues: float = 0.0) -> BindingSite:
    """An explicit box. Residues listed are those with an atom inside it."""
    atoms = protein if isinstance(protein, list) else read_protein_atoms(protein)
    try:
        center = tuple(float(c) for c in center)
        size = tuple(float(s) for s in ([size] * 3 if isinstance(size, (int, float)) else size))
    except (TypeError, ValueError):
        raise ValueError("box: centre and size must be numbers") from None
    inside, warnings = check_box(atoms, center, size)
    c, s = np.asarray(center), np.asarray(size)
    protein_atoms = [a for a in atoms if a.record == "ATOM"]
    residues = []
    if protein_atoms:
        inside_box = np.all(np.abs(_coords(protein_atoms) - c) <= s / 2 + cutoff_residues, axis=1)
        # In order of first appearance; a dict, as a huge box holds thousands.
        residues = list(dict.fromkeys(a.residue_id for a, keep in zip(protein_atoms, inside_box) if keep))
    return BindingSite(center, size, "explicit box", residues, warnings, inside)


def box_volume(size) -> float:
    return math.prod(size)
