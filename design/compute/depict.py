"""RDKit SVG depictions for pages: one molecule, a molecule with a
structural alert highlighted, or a grid."""

from __future__ import annotations

from rdkit import Chem
from rdkit.Chem import rdDepictor
from rdkit.Chem.Draw import rdMolDraw2D

from .molecules import NO_LIMITS, MoleculeLimits, to_mol

__all__ = ["mol_to_svg", "alert_svg", "grid_svg", "COORDGEN_MAX_RING"]

# CoordGen lays out rings best, but its macrocycle search explodes: measured
# on cyclic alkanes with RDKit 2026.09, a 30-membered ring took 0.2 s, 34
# took 7 s, 40 over 20 s and 60 over a minute (RDKit's own depictor: under
# 0.01 s for each). Larger rings are laid out by RDKit's depictor.
COORDGEN_MAX_RING = 30


def _largest_ring(mol) -> int:
    return max((len(ring) for ring in mol.GetRingInfo().AtomRings()), default=0)


def _prepared(mol, limits: MoleculeLimits = NO_LIMITS):
    mol = Chem.Mol(to_mol(mol, "depiction", limits))
    # Docked poses and SDF uploads carry 3D coordinates; a drawing needs 2D.
    mol = Chem.RemoveHs(mol)
    rdDepictor.SetPreferCoordGen(_largest_ring(mol) <= COORDGEN_MAX_RING)
    rdDepictor.Compute2DCoords(mol)
    return mol


def mol_to_svg(smiles_or_mol, width: int = 300, height: int = 220, legend: str = "",
               highlight_atoms=None, limits: MoleculeLimits = NO_LIMITS) -> str:
    """A standalone <svg> element (no XML prolog) ready to inline in HTML.
    `limits` caps the molecule's size before RDKit reads it (a ValueError
    names the cap)."""
    if width < 50 or height < 50:
        raise ValueError("depiction: width and height must be at least 50 px")
    mol = _prepared(smiles_or_mol, limits)
    drawer = rdMolDraw2D.MolDraw2DSVG(width, height)
    drawer.drawOptions().clearBackground = False
    rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol, legend=legend,
                                       highlightAtoms=list(highlight_atoms or []))
    drawer.FinishDrawing()
    svg = drawer.GetDrawingText()
    return svg[svg.find("<svg"):]


def alert_svg(smiles_or_mol, alert: dict, width: int = 300, height: int = 220) -> str:
    """Highlight the atoms of one alert from design.compute.properties.structural_alerts."""
    return mol_to_svg(smiles_or_mol, width, height, legend=f"{alert['catalog']}: {alert['description']}",
                      highlight_atoms=alert.get("atoms"))


def grid_svg(mols, legends=None, per_row: int = 4, size=(220, 180), limits: MoleculeLimits = NO_LIMITS) -> str:
    from rdkit.Chem import Draw

    prepared = [_prepared(m, limits) for m in mols]
    if not prepared:
        raise ValueError("depiction: no molecules to draw")
    svg = Draw.MolsToGridImage(prepared, molsPerRow=per_row, subImgSize=size, legends=legends, useSVG=True)
    return svg[svg.find("<svg"):]
