"""Convert structures (PDB / mmCIF, optionally an SDF ligand) into ATOMICA records.

The output is a list of :class:`~analysis.atomica.compute.records.AtomicaRecord`, one per
interface: segment 0 is the "receptor" side (``chains1``), segment 1 the partner
(``chains2`` chains, a ligand picked by its residue code, or a ligand from an SDF
file). Each segment starts with a global block whose single atom sits at the
segment centroid; only blocks with an atom within ``cutoff`` (8 A by default) of
the other side are kept, in file order. Small-molecule ligands are split into
blocks with ATOMICA's principal-subgraph vocabulary (PS_300, see
``fragment.py``), using the given SMILES for bond orders; ions are single-atom
blocks of their element.

Two modes:

``mode="atomica"`` reproduces ATOMICA's own ``data/process_pdbs.py`` (commit
2904342), defects included, so that records match those ATOMICA would write:

* interface selection is slot-wise: atom *m* of one block is compared only with
  atom *m* of the other block (blocks padded to the longest one), so far fewer
  residues are kept than a true atom-pair cutoff would keep, and a single-atom
  ligand only "sees" the first atom (N) of each residue;
* residue names are looked up as-is: RNA residues ``A``/``G`` become UNK blocks,
  ``C`` a carbon and ``U`` a uranium element block (DNA ``DA/DC/DG/DT`` work);
  hetero groups inside a chain stay in it (as UNK, as an element block such as
  ``K``, or as an amino acid, e.g. free glutamine ``GLN``), only trailing UNK
  residues are trimmed, so ions such as ``ZN``/``MG`` vanish when trailing and
  become UNK otherwise; the ligand itself can appear in the receptor as UNK;
* hydrogens are removed from chains but not from the ligand, so any ligand with
  H atoms fails fragmentation and stays one block per atom (H included), as do
  ligands containing elements outside the tokenizer's valence table (Zn, Mg...);
* a ligand segment's global atom is the float32 mean of its atoms, a chain
  segment's the float64 mean;
* ids are ``{pdb}_{chains1}_{ligand chain}_{code}[_k]`` and
  ``{pdb}_{chains1}_{chains2}``.

``mode="default"`` fixes those defects:

* interface = blocks with any atom within ``cutoff`` of any atom of the other
  side (true all-atom distances);
* RNA (``A/G/C/U`` -> RA/RG/RC/RU) and DNA (``DA/DC/DG/DT``) are recognised;
  ``MSE`` -> MET as in ATOMICA;
* hydrogens (and deuterium) are dropped everywhere, before fragmentation;
* single-atom hetero groups in chains that are not water (Zn, Mg, K, Na, Cl...)
  are kept as element blocks wherever they are; other hetero groups (ligands,
  cofactors, glycans, additives) are left out of the chain sides, and the ligand
  never appears on the receptor side; hetero residues with standard names are
  kept only when bonded to the chain backbone (MSE yes, free glutamine no);
  ATOM-record residues with unknown names stay UNK blocks;
* all global atoms are float64 means.

In both modes a SMILES is checked against the ligand's heavy atoms (element
counts, then bond graph from the coordinates): a mismatch raises ``ValueError``.
Bond orders come from, in order: the SMILES (or SDF) the user gives; in default
mode only, bond orders inferred from the structure (``bond_orders.py``: RDKit
DetermineBonds, CONECT records, Open Babel, checked against the file's formula).
A ligand none of them fragments stays one block per atom, and the
:class:`LigandReport` of :func:`convert_structure_report` carries a warning
naming it (ATOMICA mode warns too, but infers nothing, as ATOMICA does). An SDF ligand (first record,
or ``sdf_index``) takes its bond orders from the file in default mode; in
ATOMICA mode it is handled like a HETATM ligand whose SMILES is the SDF's.

Fragment SMILES are RDKit canonical SMILES, so the fragments (block types and
order) can depend on the RDKit version: with RDKit 2026.09 the c-di-GMP of
``4yb0`` fragments differently from ATOMICA's pinned RDKit 2022.09.

Bad input (file neither PDB nor mmCIF, unknown chain, ligand code absent, SMILES
not matching the atoms, no interface within the cutoff) raises ``ValueError``
naming the file, chain or ligand. Only the first model of a file is read.
"""

from __future__ import annotations

import gzip
import io
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from Bio.PDB import MMCIFParser, PDBParser
from rdkit import Chem
from scipy.spatial import cKDTree

from . import bond_orders as bo
from .fragment import (
    FragmentationError,
    bonds_from_smiles,
    format_element,
    fragment_ligand,
)
from .records import AtomicaRecord
from .vocab import GLOBAL_ATOM, GLOBAL_BLOCK, UNK_BLOCK, UNKNOWN_ELEMENT, get_vocabulary

MODES = ("atomica", "default")
DEFAULT_CUTOFF = 8.0

_VOCAB = get_vocabulary("PS_300")
_ABRV_TO_INDEX = {name: i for i, name in enumerate(_VOCAB.block_names)}
_SYMBOL_TO_INDEX = {symbol: i for i, symbol in enumerate(_VOCAB.block_symbols)}
_ATOM_TO_INDEX = {symbol: i for i, symbol in enumerate(_VOCAB.atom_symbols)}
# Atom-name position codes (vocab.json atom_position_vocab); the model ignores them.
_POSITION_CODES = ["p", "m", "g", "", "A", "B", "G", "D", "E", "Z", "H", "XT", "P", "sm", "'"]
_POSITION_TO_INDEX = {code: i for i, code in enumerate(_POSITION_CODES)}
_GLOBAL_POSITION = 2
_MASK_POSITION = 1

_AMINO_ACIDS = {"GLY", "ALA", "VAL", "LEU", "ILE", "PHE", "TRP", "TYR", "ASP", "HIS", "ASN", "GLU",
                "LYS", "GLN", "MET", "ARG", "SER", "THR", "CYS", "PRO"}
_NUCLEOTIDES = {"DA", "DG", "DC", "DT", "RA", "RG", "RC", "RU"}
_RNA_NAMES = {"A": "RA", "G": "RG", "C": "RC", "U": "RU"}
_ORGANIC = {"C", "N", "O", "S", "P", "H", "D", "Se"}
_BACKBONE_LINK = 2.0  # Angstrom; peptide C-N is 1.33, phosphodiester O3'-P 1.6


# ---------------------------------------------------------------------------
# Internal blocks


@dataclass
class _Atom:
    name: str
    element: str  # formatted, e.g. "Zn"
    coord: np.ndarray  # float32 [3], as Biopython stores it
    position: int  # atom-name position code index
    serial: int | None = None  # PDB atom serial number, for CONECT


@dataclass
class _Block:
    type_index: int
    atoms: list[_Atom]
    pdb_index: str  # "chain_resseq"

    @property
    def coords(self) -> np.ndarray:
        return np.array([a.coord for a in self.atoms], dtype=np.float32).reshape(-1, 3)


def _position_code(name: str, raw_element: str) -> int:
    # ATOMICA strips the element's *characters* from the left of the atom name
    # and drops digits: "CA" -> "A", "O5'" -> "'", "OP1" -> "P".
    code = "".join(c for c in name.lstrip(raw_element) if not c.isdigit())
    return _POSITION_TO_INDEX.get(code, _MASK_POSITION)


def _make_atom(bio_atom) -> _Atom:
    raw = bio_atom.element or ""
    serial = bio_atom.get_serial_number()
    return _Atom(bio_atom.get_id(), format_element(raw) if raw else "",
                 np.asarray(bio_atom.get_coord(), dtype=np.float32), _position_code(bio_atom.get_id(), raw),
                 int(serial) if isinstance(serial, (int, np.integer)) else None)


def _is_hydrogen(element: str) -> bool:
    return element in ("H", "D")


def _element_block_index(element: str) -> int:
    return _SYMBOL_TO_INDEX.get(element.lower(), UNK_BLOCK)


# ---------------------------------------------------------------------------
# Reading files


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise ValueError(f"{path}: no such structure file")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", errors="replace")


def _detect_format(path: Path, text: str) -> str:
    name = path.name.lower().removesuffix(".gz")
    lines = text.splitlines()
    looks_cif = any(line.startswith("data_") for line in lines[:50]) and "_atom_site." in text
    looks_pdb = any(line.startswith(("ATOM  ", "HETATM")) for line in lines)
    if name.endswith((".cif", ".mmcif")):
        if looks_cif:
            return "cif"
    elif name.endswith((".pdb", ".ent")):
        if looks_pdb:
            return "pdb"
    elif looks_cif:
        return "cif"
    elif looks_pdb:
        return "pdb"
    raise ValueError(f"{path}: neither a PDB nor an mmCIF file with atom records")


def load_structure(path: str | Path):
    """Biopython structure of a PDB or mmCIF file (optionally gzipped)."""
    path = Path(path)
    text = _read_text(path)
    kind = _detect_format(path, text)
    parser = MMCIFParser(QUIET=True) if kind == "cif" else PDBParser(QUIET=True)
    try:
        structure = parser.get_structure(path.stem, io.StringIO(text))
    except Exception as exc:  # Biopython raises assorted types on malformed input
        raise ValueError(f"{path}: cannot be read as {'mmCIF' if kind == 'cif' else 'PDB'} ({exc})") from None
    if len(structure) == 0 or not any(True for _ in structure[0].get_atoms()):
        raise ValueError(f"{path}: no atoms in the first model")
    structure.xtra["source_path"] = str(path)
    structure.xtra["formulas"] = _cif_formulas(text) if kind == "cif" else _pdb_formulas(text)
    structure.xtra["conect"] = {} if kind == "cif" else _pdb_conect(text)
    structure.xtra["serials"] = {a.get_serial_number() for a in structure[0].get_atoms()}
    return structure


def _parse_formula(text: str) -> Counter | None:
    """'C24 H29 N O3' -> Counter; None for what is not a plain formula."""
    text = text.strip()
    multiple = re.fullmatch(r"\*?\d*\s*\((.*)\)", text)
    if multiple:
        text = multiple.group(1)
    counts = Counter()
    for token in text.split():
        if token.endswith(("+", "-")) or token.rstrip("+-").isdigit():
            continue  # a charge such as "2+"
        match = re.fullmatch(r"([A-Za-z]{1,2})(\d*)", token)
        if not match:
            return None
        counts[format_element(match.group(1))] += int(match.group(2) or 1)
    return counts or None


def _pdb_formulas(text: str) -> dict[str, Counter]:
    """Hetero component code -> its formula, from FORMUL records."""
    raw: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("FORMUL"):
            code = line[12:15].strip()
            raw[code] = (raw.get(code, "") + " " + line[18:].strip()).strip()
    formulas = {code: _parse_formula(value) for code, value in raw.items()}
    return {code: f for code, f in formulas.items() if f}


def _cif_formulas(text: str) -> dict[str, Counter]:
    from Bio.PDB.MMCIF2Dict import MMCIF2Dict

    try:
        table = MMCIF2Dict(io.StringIO(text))
    except Exception:  # a file Biopython's structure parser read but its dict parser did not
        return {}
    ids, values = table.get("_chem_comp.id", []), table.get("_chem_comp.formula", [])
    formulas = {code: _parse_formula(value) for code, value in zip(ids, values) if value not in ("?", ".")}
    return {code: f for code, f in formulas.items() if f}


def _pdb_conect(text: str) -> dict[int, set[int]]:
    """Atom serial -> serials it is bonded to, from CONECT records."""
    bonded: dict[int, set[int]] = {}
    for line in text.splitlines():
        if not line.startswith("CONECT"):
            continue
        fields = [line[k:k + 5].strip() for k in range(6, 31, 5)]
        try:
            numbers = [int(f) for f in fields if f]
        except ValueError:
            continue
        if len(numbers) > 1:
            for other in numbers[1:]:
                bonded.setdefault(numbers[0], set()).add(other)
                bonded.setdefault(other, set()).add(numbers[0])
    return bonded


def _first_model(structure):
    return next(iter(structure))


def _chain_map(structure) -> dict:
    return {chain.get_id(): chain for chain in _first_model(structure)}


def _name(structure) -> str:
    return structure.xtra.get("source_path", structure.get_id())


# ---------------------------------------------------------------------------
# Chains -> blocks


def _chain_blocks_atomica(chain) -> list[_Block]:
    blocks, seen = [], set()
    for residue in chain:
        hetero, number, icode = residue.get_id()
        if hetero == "W":
            continue
        if hetero.strip() and (number, icode) in seen:
            continue
        abrv = residue.get_resname().strip()
        if abrv == "MSE":
            abrv = "MET"
        atoms = [_make_atom(a) for a in residue if a.element != "H"]
        seen.add((number, icode))
        blocks.append(_Block(_ABRV_TO_INDEX.get(abrv, UNK_BLOCK), atoms, f"{chain.get_id()}_{number}"))
    while blocks and blocks[-1].type_index == UNK_BLOCK:
        blocks.pop()
    return blocks


def _heavy_atoms(residue) -> list:
    return [a for a in residue if not _is_hydrogen(format_element(a.element or ""))]


def _residue_kind(residue) -> str:
    """'polymer', 'ion', 'water' or 'hetero' (small molecule) for default mode."""
    hetero = residue.get_id()[0]
    if hetero == "W" or residue.get_resname().strip() in ("HOH", "WAT", "DOD"):
        return "water"
    if hetero.strip() == "":
        return "polymer"
    heavy = _heavy_atoms(residue)
    if len(heavy) == 1 and format_element(heavy[0].element or "") not in _ORGANIC:
        return "ion"
    return "hetero"


def _default_abrv(name: str) -> str:
    name = name.strip()
    if name == "MSE":
        return "MET"
    return _RNA_NAMES.get(name, name)


def _linked_to_backbone(residue, previous, following) -> bool:
    """Whether a hetero residue is covalently part of the chain (modified residue)."""
    def close(a, b):
        return a is not None and b is not None and float(np.linalg.norm(a.get_coord() - b.get_coord())) < _BACKBONE_LINK

    def get(res, name):
        return res[name] if res is not None and name in res else None

    return (close(get(residue, "N"), get(previous, "C")) or close(get(residue, "C"), get(following, "N"))
            or close(get(residue, "P"), get(previous, "O3'")) or close(get(residue, "O3'"), get(following, "P")))


def _chain_blocks_default(chain, exclude: set | None = None) -> list[_Block]:
    exclude = exclude or set()
    residues = [r for r in chain if _residue_kind(r) != "water"]
    blocks = []
    for k, residue in enumerate(residues):
        if (chain.get_id(), residue.get_id()) in exclude:
            continue
        kind = _residue_kind(residue)
        number = residue.get_id()[1]
        atoms = [_make_atom(a) for a in _heavy_atoms(residue)]
        if not atoms:
            continue
        if kind == "ion":
            blocks.append(_Block(_element_block_index(atoms[0].element), atoms, f"{chain.get_id()}_{number}"))
            continue
        abrv = _default_abrv(residue.get_resname())
        standard = abrv in _AMINO_ACIDS or abrv in _NUCLEOTIDES
        if kind == "hetero":
            previous = residues[k - 1] if k > 0 else None
            following = residues[k + 1] if k + 1 < len(residues) else None
            if not (standard and _linked_to_backbone(residue, previous, following)):
                continue
        blocks.append(_Block(_ABRV_TO_INDEX[abrv] if standard else UNK_BLOCK, atoms, f"{chain.get_id()}_{number}"))
    return blocks


def _side_blocks(structure, chains: Sequence[str], mode: str, exclude: set | None = None) -> list[_Block]:
    available = _chain_map(structure)
    blocks = []
    for chain_id in chains:
        if chain_id not in available:
            raise ValueError(f"{_name(structure)}: chain {chain_id!r} not found "
                             f"(chains: {', '.join(available) or 'none'})")
        chain = available[chain_id]
        chain_blocks = _chain_blocks_atomica(chain) if mode == "atomica" else _chain_blocks_default(chain, exclude)
        if not chain_blocks:
            raise ValueError(f"{_name(structure)}: chain {chain_id!r} has no polymer residues")
        blocks.extend(chain_blocks)
    return blocks


# ---------------------------------------------------------------------------
# Ligands


@dataclass
class _Ligand:
    atoms: list[_Atom]
    pdb_index: str
    label: str  # for messages
    residue_key: tuple | None = None  # (chain, residue id) of a HETATM ligand
    bonds: list[tuple[int, int, int]] | None = None  # from an SDF, heavy-atom indices
    name: str = ""  # "E20 A 2001", for warnings shown to the user
    code: str = ""


def _smiles_heavy_elements(smiles: str, where: str) -> list[str]:
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"{where}: SMILES {smiles!r} cannot be parsed")
    return sorted(a.GetSymbol() for a in mol.GetAtoms() if a.GetSymbol() != "H")


def _check_smiles(ligand: _Ligand, smiles: str) -> None:
    heavy = [a for a in ligand.atoms if not _is_hydrogen(a.element)]
    expected = _smiles_heavy_elements(smiles, ligand.label)
    found = sorted(a.element for a in heavy)
    if expected != found:
        def formula(elements):
            return " ".join(f"{e}{elements.count(e)}" for e in sorted(set(elements)))
        raise ValueError(f"{ligand.label}: SMILES {smiles!r} has heavy atoms {formula(expected)} but the "
                         f"structure has {formula(found)}")
    if len(heavy) > 1:
        try:
            bonds_from_smiles([a.element for a in heavy], np.array([a.coord for a in heavy]), smiles)
        except FragmentationError as exc:
            raise ValueError(f"{ligand.label}: SMILES {smiles!r} does not match the atoms' connectivity "
                             f"({exc}); missing atoms or a wrong SMILES?") from None


@dataclass
class LigandReport:
    """How one ligand was split into blocks, for the result to say."""

    ligand: str  # "E20 A 2001"
    bond_orders: str  # where they came from: bond_orders.SOURCE_* (or "not needed (one atom)")
    fragmented: bool
    blocks: int
    warning: str = ""

    def as_dict(self) -> dict:
        return {"ligand": self.ligand, "bond_orders": self.bond_orders, "fragmented": self.fragmented,
                "blocks": self.blocks, "warning": self.warning}


_NO_FIX = "ATOMICA's fragment vocabulary cannot split it, with any SMILES"


def _unfragmented(ligand: _Ligand, per_atom: list[_Block], source: str, why: str,
                  hint: str = "give its SMILES to fragment it") -> tuple[list[_Block], LigandReport]:
    warning = (f"Ligand {ligand.name} is not fragmented: {why}. It is kept as one block per atom "
               f"({len(per_atom)} blocks); {hint}.")
    return per_atom, LigandReport(ligand.name, source, False, len(per_atom), warning)


def _ligand_blocks(ligand: _Ligand, smiles: str | None, mode: str, smiles_source: str = bo.SOURCE_SMILES,
                   context: dict | None = None) -> tuple[list[_Block], LigandReport]:
    context = context or {}
    atoms = ligand.atoms if mode == "atomica" else [a for a in ligand.atoms if not _is_hydrogen(a.element)]
    per_atom = [_Block(_element_block_index(a.element), [a], ligand.pdb_index) for a in atoms]
    elements = [a.element for a in atoms]
    coords = np.array([a.coord for a in atoms], dtype=np.float64)
    if len(atoms) == 1:
        return per_atom, LigandReport(ligand.name, "not needed (one atom)", False, 1)
    if mode == "atomica":
        if smiles is None:
            return _unfragmented(ligand, per_atom, bo.SOURCE_NONE,
                                 "no SMILES was given and ATOMICA-compatible mode does not infer bond orders")
        source = smiles_source
        # ATOMICA tries and falls back to one block per atom on any failure.
        try:
            fragments = fragment_ligand(elements, coords, smiles=smiles)
        except FragmentationError as exc:
            return _unfragmented(ligand, per_atom, source, f"ATOMICA's fragmentation fails ({exc})")
    else:
        bonds = ligand.bonds
        if bonds is not None:
            source = bo.SOURCE_SDF
        elif smiles is not None:
            source = smiles_source
        else:
            try:
                bonds, source = _inferred_bonds(ligand, context)
            except FragmentationError as exc:
                return _unfragmented(ligand, per_atom, bo.SOURCE_NONE, f"its bond orders could not be inferred ({exc})")
        try:
            fragments = fragment_ligand(elements, coords, smiles=smiles if bonds is None else None, bonds=bonds)
        except FragmentationError as exc:
            # Elements outside the vocabulary (metal complexes...): keep atoms, typed by element.
            return _unfragmented(ligand, per_atom, source, str(exc), _NO_FIX)
    blocks = []
    for fragment in fragments:
        index = _ABRV_TO_INDEX.get(fragment.smiles, UNK_BLOCK)
        if index == UNK_BLOCK:  # a fragment outside the vocabulary: ATOMICA gives up on the ligand
            return _unfragmented(ligand, per_atom, source, f"its fragment {fragment.smiles} is not in the vocabulary",
                                 _NO_FIX)
        blocks.append(_Block(index, [atoms[i] for i in fragment.atoms], ligand.pdb_index))
    return blocks, LigandReport(ligand.name, source, True, len(blocks))


def _inferred_bonds(ligand: _Ligand, context: dict) -> tuple[list[tuple[int, int, int]], str]:
    """Bond orders of a HETATM ligand from its own atoms (see bond_orders.py)."""
    atoms = [a for a in ligand.atoms if a.element]
    if len(atoms) != len(ligand.atoms):
        raise bo.BondOrderError("an atom has no element")
    elements = ["H" if a.element == "D" else a.element for a in atoms]
    coords = np.array([a.coord for a in atoms], dtype=np.float64)
    index = {a.serial: k for k, a in enumerate(atoms) if a.serial is not None}
    conect = context.get("conect") or {}
    pairs = sorted({(min(index[s], index[t]), max(index[s], index[t]))
                    for s in index for t in conect.get(s, ()) if t in index and t != s})
    formula = (context.get("formulas") or {}).get(ligand.code)
    # Bonded to an atom of another residue; CONECT may also name atoms no longer in the file.
    present = context.get("serials") or set()
    linked = any(t not in index and t in present for s in index for t in conect.get(s, ()))
    return bo.infer_bond_orders(elements, coords, conect=pairs or None, formula=formula, linked=linked)


def _hetatm_ligands(structure, code: str, chains: Sequence[str] | None) -> list[_Ligand]:
    available = _chain_map(structure)
    if chains:
        for chain_id in chains:
            if chain_id not in available:
                raise ValueError(f"{_name(structure)}: chain {chain_id!r} not found "
                                 f"(chains: {', '.join(available) or 'none'})")
        searched = list(chains)
    else:
        searched = list(available)
    ligands = []
    for chain_id in searched:
        for residue in available[chain_id]:
            hetero, number, _icode = residue.get_id()
            if hetero == f"H_{code}":
                ligands.append(_Ligand(
                    atoms=[_make_atom(a) for a in residue], pdb_index=f"{chain_id}_{number}",
                    label=f"{_name(structure)}: ligand {code} {chain_id} {number}",
                    residue_key=(chain_id, residue.get_id()), name=f"{code} {chain_id} {number}", code=code))
    if not ligands:
        present = sorted({r.get_resname().strip() for c in searched for r in available[c]
                          if r.get_id()[0].startswith("H_")})
        where = f"chain(s) {', '.join(searched)}" if chains else "any chain"
        raise ValueError(f"{_name(structure)}: ligand {code!r} not found on {where} "
                         f"(hetero groups present: {', '.join(present) or 'none'})")
    return ligands


def _sdf_ligand(sdf_path: Path, index: int, mode: str) -> tuple[_Ligand, str]:
    if not sdf_path.is_file():
        raise ValueError(f"{sdf_path}: no such SDF file")
    supplier = Chem.SDMolSupplier(str(sdf_path), removeHs=False, sanitize=True)
    if index >= len(supplier):
        raise ValueError(f"{sdf_path}: has {len(supplier)} molecule(s), no record {index}")
    mol = supplier[index]
    if mol is None or mol.GetNumConformers() == 0:
        raise ValueError(f"{sdf_path}: record {index} cannot be read as a 3D molecule")
    label = f"{sdf_path}: ligand record {index}"
    if mode == "default":
        mol = Chem.RemoveHs(mol, sanitize=True)
    positions = mol.GetConformer().GetPositions()
    atoms = [_Atom(a.GetSymbol(), a.GetSymbol(), np.asarray(positions[i], dtype=np.float32),
                   _POSITION_TO_INDEX[""]) for i, a in enumerate(mol.GetAtoms())]
    ligand = _Ligand(atoms=atoms, pdb_index=f"{sdf_path.stem}_{index}", label=label,
                     name=f"SDF record {index}", code=sdf_path.stem)
    smiles = Chem.MolToSmiles(Chem.RemoveHs(mol))
    if mode == "default":
        kekule = Chem.Mol(mol)
        Chem.Kekulize(kekule, clearAromaticFlags=True)
        order = {Chem.BondType.SINGLE: 1, Chem.BondType.DOUBLE: 2, Chem.BondType.TRIPLE: 3}
        ligand.bonds = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx(), order.get(b.GetBondType(), 1))
                        for b in kekule.GetBonds()]
    return ligand, smiles


# ---------------------------------------------------------------------------
# Interface and record assembly


def _padded(blocks: list[_Block], width: int) -> tuple[np.ndarray, np.ndarray]:
    coords = np.zeros((len(blocks), width, 3), dtype=np.float64)
    mask = np.zeros((len(blocks), width), dtype=bool)
    for i, block in enumerate(blocks):
        c = block.coords.astype(np.float64)
        coords[i, : len(c)] = c
        mask[i, : len(c)] = True
    return coords, mask


def _interface_slotwise(blocks1, blocks2, cutoff) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(b.atoms) for b in blocks1 + blocks2)
    c1, m1 = _padded(blocks1, width)
    c2, m2 = _padded(blocks2, width)
    best = np.full((len(blocks1), len(blocks2)), np.inf)
    # One slot at a time: the same numbers as ATOMICA's [N1, N2, M] array without its memory.
    for m in range(width):
        d = np.linalg.norm(c1[:, None, m] - c2[None, :, m], axis=-1)
        d = d + np.logical_not(m1[:, None, m] & m2[None, :, m]) * 1e6
        np.minimum(best, d, out=best)
    close = best < cutoff
    return np.nonzero(close.any(axis=1))[0], np.nonzero(close.any(axis=0))[0]


def _interface_all_atoms(blocks1, blocks2, cutoff) -> tuple[np.ndarray, np.ndarray]:
    def side(blocks):
        xyz = np.concatenate([b.coords.astype(np.float64) for b in blocks])
        owner = np.repeat(np.arange(len(blocks)), [len(b.atoms) for b in blocks])
        return xyz, owner

    x1, o1 = side(blocks1)
    x2, o2 = side(blocks2)
    d1, _ = cKDTree(x2).query(x1, k=1, distance_upper_bound=cutoff * 1.001)
    d2, _ = cKDTree(x1).query(x2, k=1, distance_upper_bound=cutoff * 1.001)
    return np.unique(o1[d1 < cutoff]), np.unique(o2[d2 < cutoff])


def _segment_centroid(blocks: list[_Block], float32_mean: bool) -> list[float]:
    coords = np.concatenate([b.coords for b in blocks])
    # ATOMICA averages ligand atoms as float32 arrays and chain atoms as Python floats.
    if float32_mean:
        return np.mean(coords, axis=0).tolist()
    return np.mean(coords.astype(np.float64), axis=0).tolist()


def _build_record(record_id: str, sides: list[tuple[list[_Block], bool]]) -> AtomicaRecord:
    X, B, A, positions, lengths, segments, pdb_map = [], [], [], [], [], [], {}
    for segment, (blocks, float32_mean) in enumerate(sides):
        B.append(GLOBAL_BLOCK)
        A.append(GLOBAL_ATOM)
        positions.append(_GLOBAL_POSITION)
        lengths.append(1)
        segments.append(segment)
        X.append(_segment_centroid(blocks, float32_mean))
        for block in blocks:
            pdb_map[len(B)] = block.pdb_index
            B.append(block.type_index)
            lengths.append(len(block.atoms))
            segments.append(segment)
            for atom in block.atoms:
                X.append([float(v) for v in atom.coord])
                A.append(_ATOM_TO_INDEX.get(atom.element, UNKNOWN_ELEMENT))
                positions.append(atom.position)
    as_int = lambda values: np.asarray(values, dtype=np.int64)  # noqa: E731
    return AtomicaRecord(
        id=record_id, X=np.asarray(X, dtype=np.float64), B=as_int(B), A=as_int(A),
        block_lengths=as_int(lengths), segment_ids=as_int(segments), atom_positions=as_int(positions),
        block_to_pdb_indexes=pdb_map)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")


def _as_chain_list(chains, what: str) -> list[str]:
    if chains is None:
        return []
    if isinstance(chains, str):
        chains = [c for c in chains.replace("_", ",").split(",") if c.strip()]
    chains = [c.strip() for c in chains]
    if len(set(chains)) != len(chains):
        raise ValueError(f"{what} lists a chain twice: {chains}")
    return chains


@dataclass
class Conversion:
    records: list[AtomicaRecord]
    ligands: list[LigandReport]  # one per ligand copy converted, in record order

    @property
    def warnings(self) -> list[str]:
        return [report.warning for report in self.ligands if report.warning]


def convert_structure(*args, **kwargs) -> list[AtomicaRecord]:
    """The records of :func:`convert_structure_report` (same arguments)."""
    return convert_structure_report(*args, **kwargs).records


def convert_structure_report(
    path: str | Path,
    chains1: Sequence[str] | str,
    chains2: Sequence[str] | str | None = None,
    *,
    ligand_code: str | None = None,
    ligand_smiles: str | None = None,
    ligand_sdf: str | Path | None = None,
    sdf_index: int = 0,
    mode: str = "default",
    cutoff: float = DEFAULT_CUTOFF,
    pdb_id: str | None = None,
) -> Conversion:
    """ATOMICA records for the interface between ``chains1`` and a partner,
    with a report on each ligand: where its bond orders came from, whether it
    was fragmented and, when it was not, a warning naming it.

    The partner is, in order of precedence: the molecule ``sdf_index`` of
    ``ligand_sdf``; every residue named ``ligand_code`` on ``chains2`` (all
    chains when ``chains2`` is None), one record per copy with an interface;
    or the chains ``chains2``. Chains may be given as a list or as "A_B" / "A,B".
    ``pdb_id`` defaults to the file name up to its first dot.
    """
    _check_mode(mode)
    path = Path(path)
    structure = load_structure(path)
    pdb_id = pdb_id or path.name.split(".")[0]
    chains1 = _as_chain_list(chains1, "chains1")
    chains2 = _as_chain_list(chains2, "chains2")
    if not chains1:
        raise ValueError(f"{path}: no receptor chains (chains1) given")
    if not cutoff > 0:
        raise ValueError(f"cutoff must be positive, got {cutoff!r}")
    interface = _interface_slotwise if mode == "atomica" else _interface_all_atoms

    if ligand_sdf is not None or ligand_code:
        if ligand_sdf is not None:
            ligand, sdf_smiles = _sdf_ligand(Path(ligand_sdf), sdf_index, mode)
            ligands = [ligand]
            smiles = ligand_smiles or sdf_smiles
            smiles_source = bo.SOURCE_SMILES if ligand_smiles else bo.SOURCE_SDF
            code = Path(ligand_sdf).stem
        else:
            code = ligand_code.strip().upper()
            ligands = _hetatm_ligands(structure, code, chains2 or None)
            smiles = ligand_smiles.strip() if ligand_smiles and ligand_smiles.strip() else None
            smiles_source = bo.SOURCE_SMILES
        if smiles is not None:
            for ligand in ligands:
                _check_smiles(ligand, smiles)
        exclude = {lig.residue_key for lig in ligands if lig.residue_key is not None}
        receptor = _side_blocks(structure, chains1, mode, exclude)
        records, reports = [], []
        for k, ligand in enumerate(ligands):
            lig_blocks, report = _ligand_blocks(ligand, smiles, mode, smiles_source, structure.xtra)
            idx1, idx2 = interface(receptor, lig_blocks, cutoff)
            if len(idx1) == 0 or len(idx2) == 0:
                continue
            lig_chain = ligand.pdb_index.rsplit("_", 1)[0] if ligand.residue_key else "sdf"
            record_id = f"{pdb_id}_{''.join(chains1)}_{lig_chain}_{code}"
            if len(ligands) > 1:
                record_id = f"{record_id}_{k}"
            records.append(_build_record(record_id, [
                ([receptor[i] for i in idx1], False),
                ([lig_blocks[i] for i in idx2], mode == "atomica"),
            ]))
            reports.append(report)
        if not records:
            raise ValueError(f"{path}: no atoms of chain(s) {', '.join(chains1)} within {cutoff} A of "
                             f"ligand {code} ({len(ligands)} cop{'y' if len(ligands) == 1 else 'ies'} checked)")
        return Conversion(records, reports)

    if not chains2:
        raise ValueError(f"{path}: give chains2, a ligand_code or a ligand_sdf for the second side")
    overlap = set(chains1) & set(chains2)
    if overlap:
        raise ValueError(f"{path}: chain(s) {', '.join(sorted(overlap))} on both sides")
    blocks1 = _side_blocks(structure, chains1, mode)
    blocks2 = _side_blocks(structure, chains2, mode)
    idx1, idx2 = interface(blocks1, blocks2, cutoff)
    if len(idx1) == 0 or len(idx2) == 0:
        raise ValueError(f"{path}: no atoms of chain(s) {', '.join(chains1)} within {cutoff} A of "
                         f"chain(s) {', '.join(chains2)}")
    record_id = f"{pdb_id}_{''.join(chains1)}_{''.join(chains2)}"
    return Conversion([_build_record(record_id, [([blocks1[i] for i in idx1], False),
                                                 ([blocks2[i] for i in idx2], False)])], [])


# ---------------------------------------------------------------------------
# Side suggestions


@dataclass(frozen=True)
class SideOption:
    """One choice of interface sides; ``kwargs()`` feeds :func:`convert_structure`."""

    kind: str  # "ligand", "ion" or "chains"
    label: str
    chains1: tuple[str, ...]
    chains2: tuple[str, ...] = ()
    ligand_code: str | None = None
    copies: int = 0  # ligand residues with that code on chains2

    def kwargs(self) -> dict:
        out = {"chains1": list(self.chains1), "chains2": list(self.chains2) or None}
        if self.ligand_code:
            out["ligand_code"] = self.ligand_code
        return out


def _chain_polymer_kind(chain) -> str | None:
    counts = {"protein": 0, "RNA": 0, "DNA": 0}
    for residue in chain:
        if residue.get_id()[0].strip():
            continue
        name = residue.get_resname().strip()
        if name in _AMINO_ACIDS:
            counts["protein"] += 1
        elif name in _RNA_NAMES or name in {"RA", "RG", "RC", "RU"}:
            counts["RNA"] += 1
        elif name in {"DA", "DG", "DC", "DT"}:
            counts["DNA"] += 1
    kind, n = max(counts.items(), key=lambda item: item[1])
    return kind if n > 0 else None


SUGGEST_CONTACT = 5.0  # Angstrom; closer than the interface cutoff, so only real contacts count


def suggest_sides(structure, contact: float = SUGGEST_CONTACT) -> list[SideOption]:
    """Interface choices read from a structure (a path or a Biopython structure).

    In order: each hetero code (small molecules, then ions; waters never) vs
    the polymer chains with an atom within ``contact`` of one of its copies;
    every contacting pair of polymer chains (a protein chain first); each
    protein chain vs all the nucleic-acid chains it contacts, when several.
    Ligand options carry no SMILES: in default mode the converter infers
    the ligand's bond orders, and reports a ligand it cannot fragment.
    """
    if isinstance(structure, (str, Path)):
        structure = load_structure(structure)
    chains = _chain_map(structure)
    kinds = {cid: _chain_polymer_kind(chain) for cid, chain in chains.items()}
    polymers = [cid for cid, kind in kinds.items() if kind]
    trees = {}
    for cid in polymers:
        xyz = np.array([a.get_coord() for r in chains[cid] if not r.get_id()[0].strip() for a in r])
        trees[cid] = cKDTree(xyz)

    def touching(xyz: np.ndarray, cid: str) -> bool:
        d, _ = trees[cid].query(xyz, k=1, distance_upper_bound=contact)
        return bool(np.isfinite(d).any())

    options: list[SideOption] = []
    groups: dict[str, dict] = {}
    for cid, chain in chains.items():
        for residue in chain:
            kind = _residue_kind(residue)
            if kind not in ("ion", "hetero"):
                continue
            code = residue.get_resname().strip()
            group = groups.setdefault(code, {"kind": "ion" if kind == "ion" else "ligand", "chains": [],
                                             "copies": 0, "partners": set()})
            group["copies"] += 1
            if cid not in group["chains"]:
                group["chains"].append(cid)
            xyz = np.array([a.get_coord() for a in _heavy_atoms(residue)]).reshape(-1, 3)
            if len(xyz):
                group["partners"].update(p for p in polymers if touching(xyz, p))
    for wanted in ("ligand", "ion"):
        for code, group in groups.items():
            if group["kind"] != wanted or not group["partners"]:
                continue
            partners = tuple(p for p in polymers if p in group["partners"])
            label = (f"{'+'.join(partners)} ({'/'.join(sorted({kinds[p] for p in partners}))}) vs "
                     f"{'ion' if wanted == 'ion' else 'ligand'} {code} on {'+'.join(group['chains'])}"
                     f" ({group['copies']} cop{'y' if group['copies'] == 1 else 'ies'})")
            options.append(SideOption(wanted, label, partners, tuple(group["chains"]), code, group["copies"]))

    contacts = {}
    for i, a in enumerate(polymers):
        xyz = trees[a].data
        for b in polymers[i + 1:]:
            if touching(xyz, b):
                contacts.setdefault(a, []).append(b)
                first, second = (b, a) if kinds[b] == "protein" and kinds[a] != "protein" else (a, b)
                options.append(SideOption("chains", f"chain {first} ({kinds[first]}) vs chain {second} "
                                          f"({kinds[second]})", (first,), (second,)))
    for a in polymers:
        if kinds[a] != "protein":
            continue
        nucleic = [b for b in polymers if b != a and kinds[b] in ("RNA", "DNA")
                   and (b in contacts.get(a, []) or a in contacts.get(b, []))]
        if len(nucleic) > 1:
            options.append(SideOption("chains", f"chain {a} (protein) vs chains {'+'.join(nucleic)} "
                                      f"({'/'.join(sorted({kinds[b] for b in nucleic}))})", (a,), tuple(nucleic)))
    return options
