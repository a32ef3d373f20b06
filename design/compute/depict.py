"""RDKit SVG depictions for pages: one molecule, a molecule with a
structural alert highlighted, or a grid."""

from __future__ import annotations

from rdkit import Chem
from rdkit.Chem import rdDepictor
from rdkit.Chem.Draw import rdMolDraw2D

from .molecules import to_mol

__all__ = ["mol_to_svg", "alert_svg", "grid_svg"]


def _prepared(mol):
    mol = Chem.Mol(to_mol(mol))
    # Docked poses and SDF uploads carry 3D coordinates; a drawing needs 2D.
    mol = Chem.RemoveHs(mol)
    rdDepictor.SetPreferCoordGen(True)
    rdDepictor.Compute2DCoords(mol)
    return mol


def mol_to_svg(smiles_or_mol, width: int = 300, height: int = 220, legend: str = "",
               highlight_atoms=None) -> str:
    """A standalone <svg> element (no XML prolog) ready to inline in HTML."""
    if width < 50 or height < 50:
        raise ValueError("depiction: width and height must be at least 50 px")
    mol = _prepared(smiles_or_mol)
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


def grid_svg(mols, legends=None, per_row: int = 4, size=(220, 180)) -> str:
    from rdkit.Chem import Draw

    prepared = [_prepared(m) for m in mols]
    if not prepared:
        raise ValueError("depiction: no molecules to draw")
    svg = Draw.MolsToGridImage(prepared, molsPerRow=per_row, subImgSize=size, legends=legends, useSVG=True)
    return svg[svg.find("<svg"):]
