"""Principal-subgraph (PS) fragmentation of small molecules, as ATOMICA does it.

ATOMICA splits a small-molecule ligand into blocks with a "principal subgraph"
vocabulary (``ps_vocab_300.txt``, see SOURCES.md): starting from single atoms,
the pair of neighbouring subgraphs whose merged SMILES is in the vocabulary
with the highest corpus frequency is merged, again and again, until no merge
is in the vocabulary. This module is our own implementation of that procedure;
it reproduces ATOMICA's fragment order and atom order (which depend on
dictionary insertion order during the merges), because records are compared
block by block.

Pipeline for a ligand read from coordinates (``fragment_ligand``):

1. bonds: the SMILES supplies bond orders; its heavy-atom graph is matched
   onto a bond graph guessed from the coordinates (covalent radii sum x 1.3),
   the same VF2 matching ATOMICA uses, so symmetric groups get the same
   Kekulé assignment;
2. an RDKit molecule is built in the structure's atom order and sanitised
   (aromaticity perceived again), four-valent neutral N gets a +1 charge;
3. PS merging, then each fragment's canonical SMILES is looked up in the
   block vocabulary.

Fragment SMILES are RDKit canonical SMILES, so the result depends on the
RDKit version (the vocabulary was written by an older RDKit; see the
reference README, quirk 4 of the data conversion).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import networkx as nx
import numpy as np
from networkx.algorithms import isomorphism
from rdkit import Chem
from rdkit.rdBase import BlockLogs
from rdkit.Chem.rdchem import BondType

PS_VOCAB_PATH = Path(__file__).with_name("ps_vocab_300.txt")

# Elements ATOMICA's tokenizer knows a maximum valence for; any other element
# in a ligand makes its tokenizer raise (KeyError), so the ligand is left as
# one block per atom.
MAX_VALENCE = {"B": 3, "Br": 1, "C": 4, "Cl": 1, "F": 1, "I": 1, "N": 5, "O": 2,
               "P": 5, "S": 6, "Se": 4, "Si": 4}

# Covalent radii (Angstrom) used to guess bonds from coordinates. Values as in
# xyz2graph, which ATOMICA uses; only the elements found in ligands matter.
COVALENT_RADII = {
    "Ac": 1.88, "Ag": 1.59, "Al": 1.35, "Am": 1.51, "As": 1.21, "Au": 1.50, "B": 0.83,
    "Ba": 1.34, "Be": 0.35, "Bi": 1.54, "Br": 1.21, "C": 0.68, "Ca": 0.99, "Cd": 1.69,
    "Ce": 1.83, "Cl": 0.99, "Co": 1.33, "Cr": 1.35, "Cs": 1.67, "Cu": 1.52, "D": 0.23,
    "Dy": 1.75, "Er": 1.73, "Eu": 1.99, "F": 0.64, "Fe": 1.34, "Ga": 1.22, "Gd": 1.79,
    "Ge": 1.17, "H": 0.23, "Hf": 1.57, "Hg": 1.70, "Ho": 1.74, "I": 1.40, "In": 1.63,
    "Ir": 1.32, "K": 1.33, "La": 1.87, "Li": 0.68, "Lu": 1.72, "Mg": 1.10, "Mn": 1.35,
    "Mo": 1.47, "N": 0.68, "Na": 0.97, "Nb": 1.48, "Nd": 1.81, "Ni": 1.50, "Np": 1.55,
    "O": 0.68, "Os": 1.37, "P": 1.05, "Pa": 1.61, "Pb": 1.54, "Pd": 1.50, "Pm": 1.80,
    "Po": 1.68, "Pr": 1.82, "Pt": 1.50, "Pu": 1.53, "Ra": 1.90, "Rb": 1.47, "Re": 1.35,
    "Rh": 1.45, "Ru": 1.40, "S": 1.02, "Sb": 1.46, "Sc": 1.44, "Se": 1.22, "Si": 1.20,
    "Sm": 1.80, "Sn": 1.46, "Sr": 1.12, "Ta": 1.43, "Tb": 1.76, "Tc": 1.35, "Te": 1.47,
    "Th": 1.79, "Ti": 1.47, "Tl": 1.55, "Tm": 1.72, "U": 1.58, "V": 1.33, "W": 1.37,
    "Y": 1.78, "Yb": 1.94, "Zn": 1.45, "Zr": 1.56,
}

_BOND_TYPES = {1: BondType.SINGLE, 2: BondType.DOUBLE, 3: BondType.TRIPLE, 4: BondType.AROMATIC}
_BOND_ORDERS = {BondType.SINGLE: 1, BondType.DOUBLE: 2, BondType.TRIPLE: 3, BondType.AROMATIC: 4}


class FragmentationError(ValueError):
    """The ligand cannot be split into vocabulary fragments."""


@dataclass(frozen=True)
class PSVocabulary:
    smiles: tuple[str, ...]
    frequency: dict[str, int]  # fragment SMILES -> corpus frequency
    kekulize: bool


@lru_cache(maxsize=None)
def load_ps_vocabulary(path: str | Path = PS_VOCAB_PATH) -> PSVocabulary:
    import json

    lines = Path(path).read_text().strip().split("\n")
    settings = json.loads(lines[0])
    smiles, frequency = [], {}
    for line in lines[1:]:
        smi, _atoms, freq = line.strip().split("\t")
        smiles.append(smi)
        frequency[smi] = int(freq)
    return PSVocabulary(tuple(smiles), frequency, bool(settings.get("kekulize", False)))


def format_element(element: str) -> str:
    """'ZN' -> 'Zn', 'c' -> 'C' (PDB element columns are upper case)."""
    element = element.strip().upper()
    return element[0] + element[1:].lower() if len(element) == 2 else element


# --------------------------------------------------------------------------
# Bonds


def _smiles_topology(smiles: str) -> nx.Graph:
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise FragmentationError(f"SMILES {smiles!r} cannot be parsed")
    # Kekulé bond orders: the molecule is sanitised again after building, so
    # aromaticity comes back, and no "aromatic" bond order has to be cleaned.
    Chem.Kekulize(mol, clearAromaticFlags=True)
    graph = nx.Graph()
    for atom in mol.GetAtoms():
        if atom.GetSymbol() != "H":
            graph.add_node(atom.GetIdx(), atom=atom.GetSymbol())
    for bond in mol.GetBonds():
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        if i in graph and j in graph:
            graph.add_edge(i, j, bond_type=bond.GetBondType())
    return graph


def coordinate_topology(elements: Sequence[str], coords: np.ndarray) -> nx.Graph:
    coords = np.asarray(coords, dtype=np.float64)
    try:
        radius = np.array([COVALENT_RADII[e] for e in elements])
    except KeyError as exc:
        raise FragmentationError(f"no covalent radius for element {exc.args[0]!r}") from None
    dist = np.linalg.norm(coords[:, None, :] - coords[None, :, :], axis=-1)
    bonded = (0.1 < dist) & ((radius[:, None] + radius[None, :]) * 1.3 > dist)
    graph = nx.Graph()
    for i, element in enumerate(elements):
        graph.add_node(i, atom=element)
    # Edge insertion order decides which isomorphism VF2 finds first.
    for i, j in zip(*np.nonzero(bonded)):
        graph.add_edge(int(i), int(j))
    return graph


def bonds_from_smiles(elements: Sequence[str], coords: np.ndarray, smiles: str) -> list[tuple[int, int, int]]:
    """Bonds (i, j, order 1-3) between structure atoms, orders taken from ``smiles``.

    Raises FragmentationError when the SMILES heavy-atom graph is not
    isomorphic to the bond graph guessed from the coordinates.
    """
    template = _smiles_topology(smiles)
    observed = coordinate_topology(elements, coords)
    matcher = isomorphism.GraphMatcher(template, observed, node_match=lambda a, b: a["atom"] == b["atom"])
    if not matcher.is_isomorphic():
        raise FragmentationError(
            f"SMILES heavy-atom graph ({template.number_of_nodes()} atoms, {template.number_of_edges()} bonds) "
            f"does not match the bonds implied by the coordinates ({observed.number_of_nodes()} atoms, "
            f"{observed.number_of_edges()} bonds)")
    mapping = matcher.mapping
    return [(mapping[i], mapping[j], _BOND_ORDERS[data["bond_type"]]) for i, j, data in template.edges.data()]


def build_molecule(elements: Sequence[str], bonds: Sequence[tuple[int, int, int]]) -> Chem.Mol:
    """RDKit molecule in the given atom order; raises FragmentationError if it
    cannot be sanitised or holds an element the tokenizer does not handle."""
    unsupported = sorted({e for e in elements if e not in MAX_VALENCE})
    if unsupported:
        raise FragmentationError(f"elements {', '.join(unsupported)} are outside the fragment vocabulary")
    mol = Chem.RWMol()
    for element in elements:
        mol.AddAtom(Chem.Atom(element))
    for i, j, order in bonds:
        mol.AddBond(int(i), int(j), _BOND_TYPES[order])
    mol.UpdatePropertyCache(strict=False)
    # Structures carry no charges; quaternary/protonated N would otherwise fail sanitisation.
    for atom in mol.GetAtoms():
        if (atom.GetAtomicNum() == 7 and atom.GetFormalCharge() == 0
                and atom.GetValence(Chem.ValenceType.EXPLICIT) == 4):
            atom.SetFormalCharge(1)
    result = mol.GetMol()
    try:
        Chem.SanitizeMol(result)
    except Exception as exc:  # RDKit raises several exception types
        raise FragmentationError(f"molecule cannot be sanitised: {exc}") from None
    return result


# --------------------------------------------------------------------------
# Principal-subgraph merging


def _submol_smiles(mol: Chem.Mol, atoms: Sequence[int]) -> str | None:
    if len(atoms) == 1:
        symbol = mol.GetAtomWithIdx(atoms[0]).GetSymbol()
        single = Chem.MolFromSmiles("[Si]" if symbol == "Si" else symbol)
        # Elements outside the SMILES organic subset do not parse unbracketed.
        return None if single is None else Chem.MolToSmiles(single)
    members = set(atoms)
    bond_ids = [b.GetIdx() for b in mol.GetBonds()
                if b.GetBeginAtomIdx() in members and b.GetEndAtomIdx() in members]
    return Chem.MolToSmiles(Chem.PathToSubmol(mol, bond_ids))


class _SubgraphState:
    """Subgraphs keyed by id. The dict insertion order is meaningful: merged
    subgraphs go to the end under a fresh id, which fixes the output order."""

    def __init__(self, mol: Chem.Mol):
        self.mol = mol
        self.subgraphs: dict[int, dict[int, str]] = {}
        self.smiles: dict[int, str] = {}
        for atom in mol.GetAtoms():
            self.subgraphs[atom.GetIdx()] = {atom.GetIdx(): atom.GetSymbol()}
            self.smiles[atom.GetIdx()] = atom.GetSymbol()
        self.owner = {aid: aid for aid in self.subgraphs}  # atom -> subgraph id
        self.next_id = len(self.subgraphs)
        self._smiles_cache: dict[frozenset, str | None] = {}
        self._pairs: dict[str, list[tuple[int, int]]] | None = None

    def _smiles_of(self, atoms: list[int]) -> str | None:
        key = frozenset(atoms)
        if key not in self._smiles_cache:
            self._smiles_cache[key] = _submol_smiles(self.mol, atoms)
        return self._smiles_cache[key]

    def candidate_pairs(self) -> dict[str, list[tuple[int, int]]]:
        """Merged SMILES -> (subgraph, neighbour) pairs producing it, in discovery order."""
        if self._pairs is not None:
            return self._pairs
        pairs: dict[str, list[tuple[int, int]]] = {}
        for key, members in self.subgraphs.items():
            neighbours = []
            for aid in members:
                for nei in self.mol.GetAtomWithIdx(aid).GetNeighbors():
                    nid = nei.GetIdx()
                    # Each bond is seen once, from its higher-numbered atom.
                    if nid in members or nid > aid:
                        continue
                    neighbours.append(self.owner[nid])
            # A set, not a list: its iteration order is part of the behaviour
            # being reproduced (it decides which overlapping pair merges first).
            for nei_key in set(neighbours):
                merged = dict(members)
                merged.update(self.subgraphs[nei_key])
                smi = self._smiles_of(list(merged))
                pairs.setdefault(smi, []).append((key, nei_key))
        self._pairs = pairs
        return pairs

    def merge(self, smi: str) -> None:
        for first, second in self.candidate_pairs().get(smi, []):
            if first not in self.subgraphs or second not in self.subgraphs:
                continue  # consumed by an earlier merge in this round
            merged = self.subgraphs[first]
            merged.update(self.subgraphs[second])
            new_id = self.next_id
            self.next_id += 1
            self.subgraphs[new_id] = merged
            self.smiles[new_id] = smi
            for aid in merged:
                self.owner[aid] = new_id
            for old in (first, second):
                del self.subgraphs[old]
                del self.smiles[old]
        self._pairs = None


def principal_subgraphs(mol: Chem.Mol, vocab: PSVocabulary | None = None) -> list[list[int]]:
    """Atom-index groups of ``mol``, in ATOMICA's fragment order and atom order."""
    vocab = vocab or load_ps_vocabulary()
    state = _SubgraphState(mol)
    while True:
        best, best_freq = None, -1
        for smi in state.candidate_pairs():
            freq = vocab.frequency.get(smi)
            if freq is not None and freq > best_freq:  # ties: first discovered wins
                best, best_freq = smi, freq
        if best is None:
            break
        state.merge(best)
    return [list(members) for members in state.subgraphs.values()]


def _group_is_matchable(mol: Chem.Mol, group: list[int], smiles: str) -> bool:
    """ATOMICA re-finds every fragment in the molecule by substructure search
    and asserts a hit lying inside the fragment; mirror that check."""
    if len(group) == 1:
        return True
    query = Chem.MolFromSmiles(smiles, sanitize=False)
    if query is None:
        return False
    members = set(group)
    return any(set(match) <= members for match in mol.GetSubstructMatches(query))


@dataclass(frozen=True)
class Fragment:
    smiles: str
    atoms: tuple[int, ...]  # indices into the ligand's atom list


def fragment_molecule(mol: Chem.Mol, vocab: PSVocabulary | None = None) -> list[Fragment]:
    fragments = []
    for group in principal_subgraphs(mol, vocab):
        smiles = _submol_smiles(mol, group)
        if smiles is None:
            raise FragmentationError(f"fragment of atoms {group} has no SMILES")
        if not _group_is_matchable(mol, group, smiles):
            raise FragmentationError(f"fragment {smiles} cannot be matched back onto the molecule")
        fragments.append(Fragment(smiles, tuple(group)))
    return fragments


def fragment_ligand(elements: Sequence[str], coords: np.ndarray, smiles: str | None = None,
                    bonds: Sequence[tuple[int, int, int]] | None = None,
                    vocab: PSVocabulary | None = None) -> list[Fragment]:
    """Fragments of a ligand given its atoms (formatted element symbols) and
    either a SMILES (bond orders mapped onto the coordinates) or explicit
    bonds (i, j, order 1-3). Raises FragmentationError when it cannot."""
    if bonds is None:
        if smiles is None:
            raise FragmentationError("neither a SMILES nor bonds were given")
        bonds = bonds_from_smiles(list(elements), coords, smiles)
    # Sanitisation failures are reported through the exception, not RDKit's log.
    _quiet = BlockLogs()  # noqa: F841 - restores logging when released
    mol = build_molecule(list(elements), bonds)
    return fragment_molecule(mol, vocab)
