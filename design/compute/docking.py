"""Docking with AutoDock Vina (the `vina` package), Meeko preparing both sides.

    receptor = prepare_receptor("protein.pdb")          # PDBQT + what was removed and why
    site = site_from_ligand("protein.pdb", "ligand.sdf")  # design.compute.sites
    result = dock(receptor, "Nc1nc(N)c2c(Sc3ccccc3)cccc2n1", site, exhaustiveness=8)
    result.best_score, result.poses_sdf

For a GA, `DockingScorer(receptor, site)` keeps Vina's grid maps between
ligands and is callable as `scorer(smiles) -> kcal/mol`.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from dataclasses import dataclass, field
from typing import Callable

from rdkit import Chem
from rdkit.Chem import AllChem, rdMolAlign

from .molecules import to_mol
from .sites import BindingSite, check_box, read_protein_atoms

__all__ = ["ReceptorPrep", "DockingResult", "prepare_receptor", "prepare_ligand", "dock", "DockingScorer",
           "dock_many", "pose_rmsd", "reference_rmsds", "reference_from_pdb", "available_cpus"]

_WATERS = {"HOH", "WAT", "DOD", "H2O"}
# AutoDock atom types Vina knows for atoms outside Meeko's residue templates.
_HETERO_TYPES = {"C": "C", "N": "NA", "O": "OA", "S": "SA", "P": "P", "F": "F", "Cl": "Cl", "Br": "Br", "I": "I",
                 "Mg": "Mg", "Zn": "Zn", "Ca": "Ca", "Mn": "Mn", "Fe": "Fe"}


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass
class ReceptorPrep:
    pdbqt: str
    removed: list = field(default_factory=list)    # {"residue", "reason"}
    kept_hetero: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    log: str = ""

    def failures_by_reason(self) -> dict:
        out: dict[str, list] = {}
        for item in self.removed:
            out.setdefault(item["reason"], []).append(item["residue"])
        return out

    def actions(self) -> list:
        """{"residue", "reason", "action"} for each residue Meeko could not
        template: what preparation did to it."""
        return [dict(item) for item in self.removed if item.get("action")]


def _pdb_text(pdb) -> str:
    if isinstance(pdb, os.PathLike) or (isinstance(pdb, str) and "\n" not in pdb and os.path.isfile(pdb)):
        with open(pdb, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    if not isinstance(pdb, str) or "ATOM" not in pdb:
        raise ValueError("receptor: expected a PDB file path or PDB text with ATOM records")
    return pdb


def prepare_receptor(pdb, keep_hetero: bool = True, default_altloc: str = "A") -> ReceptorPrep:
    """Protonate, charge and type the protein with Meeko's residue templates
    and write a rigid PDBQT.

    Residues Meeko cannot match (incomplete side chains, unknown residues)
    are removed and listed with the reason. Meeko would look hetero groups
    (cofactors, ions) up online, which a worker cannot rely on, so they are
    taken out of the template step; with `keep_hetero` their heavy atoms are
    added back typed by element (O -> OA, N -> NA, S -> SA): Vina's scoring
    needs only those types, but they carry no hydrogens, so a cofactor's
    donors count as acceptors only. Waters are always removed."""
    from meeko import PDBQTWriterLegacy, Polymer, PolymerCreationError

    text = _pdb_text(pdb)
    hetero: dict[str, list[str]] = {}
    removed = []
    for line in text.splitlines():
        if line.startswith("HETATM"):
            resid = f"{line[21]}:{line[22:27].strip()}"
            hetero.setdefault(resid, []).append(line)
    for resid, lines in hetero.items():
        resname = lines[0][17:20].strip()
        if resname in _WATERS:
            removed.append({"residue": f"{resid} {resname}", "reason": "water"})
        elif not keep_hetero:
            removed.append({"residue": f"{resid} {resname}", "reason": "hetero group removed (keep_hetero=False)"})
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            polymer = Polymer.from_pdb_string(text, residues_to_delete=sorted(hetero) or None,
                                              default_altloc=default_altloc, allow_bad_res=True)
            ignored = polymer.get_ignored_monomers()
            rigid, _flex = PDBQTWriterLegacy.write_from_polymer(polymer)
    except PolymerCreationError as exc:
        raise ValueError(f"receptor: Meeko could not build the protein: {exc.error.strip()}") from None
    except Exception as exc:
        raise ValueError(f"receptor: preparation failed: {exc}") from None
    resnames = {}
    for line in text.splitlines():
        if line.startswith("ATOM"):
            resnames[f"{line[21]}:{line[22:27].strip()}"] = line[17:20].strip()
    for resid, monomer in ignored.items():
        removed.append({"residue": f"{resid} {resnames.get(resid, '?')}",
                        "reason": "no Meeko template matched (missing or extra heavy atoms)",
                        "action": _ignored_action(resid, monomer, rigid)})
    kept = []
    if keep_hetero:
        extra = []
        for resid, lines in hetero.items():
            resname = lines[0][17:20].strip()
            if resname in _WATERS:
                continue
            typed = []
            for line in lines:
                if line[16] not in (" ", default_altloc):
                    continue
                element = (line[76:78].strip() or line[12:16].strip()[:1]).capitalize()
                ad_type = _HETERO_TYPES.get(element)
                if ad_type is None:
                    typed = None
                    break
                typed.append(f"{line[:16]} {line[17:54]}  1.00  0.00    +0.000 {ad_type:<2s}")
            if typed:
                extra.extend(typed)
                kept.append(f"{resid} {resname}")
            else:
                removed.append({"residue": f"{resid} {resname}", "reason": "hetero group with an element Vina "
                                "cannot type"})
        rigid = rigid.rstrip("\n") + "\n" + "\n".join(extra) + ("\n" if extra else "")
    warnings = []
    if not rigid.strip():
        raise ValueError("receptor: no atoms left after preparation")
    return ReceptorPrep(rigid, removed, kept, warnings, log.getvalue())


def _ignored_action(resid: str, monomer, rigid: str) -> str:
    """What happened to a residue Meeko matched to no template, read from
    the PDBQT Meeko wrote rather than assumed: with allow_bad_res the
    residue is left out whole (Meeko sets its rdkit_mol to None and the
    writer skips it)."""
    chain, _, number = resid.partition(":")
    raw = getattr(monomer, "raw_rdkit_mol", None)
    n_input = sum(1 for a in raw.GetAtoms() if a.GetAtomicNum() > 1) if raw is not None else None
    written = sum(1 for line in rigid.splitlines() if line.startswith(("ATOM", "HETATM"))
                  and line[21] == chain and line[22:27].strip() == number)
    if written:
        return (f"kept with {written} atoms in the receptor PDBQT although Meeko matched no template "
                f"(check its types)")
    atoms = f"all {n_input} heavy atoms" if n_input is not None else "all its atoms"
    return (f"removed from the receptor: {atoms}, backbone included, are absent from receptor.pdbqt, "
            f"so Vina sees a gap there")


def prepare_ligand(ligand, random_seed: int = 0, new_conformer: bool = True, name: str = "ligand") -> str:
    """Ligand PDBQT from a SMILES or RDKit molecule: hydrogens added, a 3D
    conformer from ETKDG (with `new_conformer`, even if the input has one, so
    a redocked crystal ligand does not start from its answer), Meeko typing
    and torsion tree."""
    from meeko import MoleculePreparation, PDBQTWriterLegacy

    mol = Chem.Mol(to_mol(ligand, name))
    if len(Chem.GetMolFrags(mol)) > 1:
        # Salts and solvates: dock the largest component only.
        mol = max(Chem.GetMolFrags(mol, asMols=True), key=lambda m: m.GetNumHeavyAtoms())
    has_3d = mol.GetNumConformers() > 0 and mol.GetConformer().Is3D()
    mol = Chem.AddHs(mol, addCoords=has_3d)
    if new_conformer or not has_3d:
        params = AllChem.ETKDGv3()
        params.randomSeed = int(random_seed)
        mol.RemoveAllConformers()
        if AllChem.EmbedMolecule(mol, params) != 0:
            params.useRandomCoords = True
            if AllChem.EmbedMolecule(mol, params) != 0:
                raise ValueError(f"{name}: RDKit could not generate a 3D conformer")
        if AllChem.MMFFHasAllMoleculeParams(mol):
            AllChem.MMFFOptimizeMolecule(mol, maxIters=500)
    try:
        setups = MoleculePreparation().prepare(mol)
    except Exception as exc:
        raise ValueError(f"{name}: Meeko could not prepare the ligand: {exc}") from None
    pdbqt, ok, error = PDBQTWriterLegacy.write_string(setups[0])
    if not ok:
        raise ValueError(f"{name}: Meeko could not write PDBQT: {error}")
    return pdbqt


@dataclass
class DockingResult:
    best_score: float            # kcal/mol, Vina score of the top pose
    scores: list                 # kcal/mol per pose, best first
    poses_sdf: str               # every pose, best first, with a VINA_SCORE tag
    poses: list                  # RDKit molecules (heavy atoms + polar H), one per pose
    cpu: int
    exhaustiveness: int
    seconds: float
    site: dict


def _site_box(site, center=None, size=None):
    if site is not None:
        if isinstance(site, BindingSite):
            return list(site.center), list(site.size), site.as_dict()
        if isinstance(site, dict):
            return list(site["center"]), list(site["size"]), dict(site)
    if center is None or size is None:
        raise ValueError("site: give a BindingSite or both center and size")
    size = [size] * 3 if isinstance(size, (int, float)) else list(size)
    return list(center), size, {"center": list(center), "size": size}


def _receptor_pdbqt(receptor) -> str:
    if isinstance(receptor, ReceptorPrep):
        return receptor.pdbqt
    if isinstance(receptor, str) and receptor.endswith(".pdbqt") and os.path.isfile(receptor):
        with open(receptor) as handle:
            return handle.read()
    if isinstance(receptor, str) and ("ATOM" in receptor or "HETATM" in receptor) and "\n" in receptor:
        return receptor
    raise ValueError("receptor: expected a ReceptorPrep, a .pdbqt path or PDBQT text (see prepare_receptor)")


# Most Vina runs a docking is split into (see DockingScorer.dock_ligand).
MAX_CHUNKS = 8


class DockingScorer:
    """Vina with the receptor and box loaded once; `dock_ligand` per ligand.
    Calling the object with a SMILES returns the best score in kcal/mol,
    the shape design.compute.generate.docking_objective expects.

    Vina's `dock` holds the GIL and cannot be interrupted or asked how far
    it is: one call with exhaustiveness 8 on two cores ran six minutes with
    no progress, no cancel and no heartbeat. So the exhaustiveness (Vina's
    independent Monte Carlo runs) is split into chunks of one run per core,
    each its own Vina call with its own seed (a Vina object's seed is fixed,
    so each chunk has its own object, maps computed once), and the caller
    hears after each chunk. The chunks' poses are pooled as Vina pools its
    runs' poses: best score first, a pose within `min_rmsd` of a better one
    dropped, at most `n_poses`, within 3 kcal/mol of the best."""

    def __init__(self, receptor, site=None, *, center=None, size=None, exhaustiveness: int = 8,
                 n_poses: int = 9, cpu: int = 0, random_seed: int = 0, scoring: str = "vina"):
        from vina import Vina

        if exhaustiveness < 1:
            raise ValueError("exhaustiveness: must be at least 1")
        if n_poses < 1:
            raise ValueError("n_poses: must be at least 1")
        self.center, self.size, self.site = _site_box(site, center, size)
        if any(s <= 0 for s in self.size):
            raise ValueError(f"site: every box size must be positive, got {self.size}")
        self.exhaustiveness, self.n_poses, self.random_seed = int(exhaustiveness), int(n_poses), int(random_seed)
        self.cpu = int(cpu) if cpu else available_cpus()
        self._rec_text = _receptor_pdbqt(receptor)
        per_chunk = max(self.cpu, -(-self.exhaustiveness // MAX_CHUNKS))
        self.chunks = [min(per_chunk, self.exhaustiveness - start)
                       for start in range(0, self.exhaustiveness, per_chunk)]
        # Seed 0 is Vina's "pick one at random", for every chunk.
        self._vinas = [self._new_vina(Vina, scoring, self.random_seed + k if self.random_seed else 0)
                       for k in range(len(self.chunks))]

    def _new_vina(self, Vina, scoring: str, seed: int):
        vina = Vina(sf_name=scoring, cpu=self.cpu, seed=seed, verbosity=0)
        # Vina reads the receptor from a file only.
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".pdbqt", delete=False) as handle:
            handle.write(self._rec_text)
            path = handle.name
        try:
            vina.set_receptor(path)
        finally:
            os.unlink(path)
        # Maps computed before any ligand is set cover every atom type. Maps
        # made for one ligand's types would make Vina exit the whole process
        # ("Affinity map for atom type S_P is not present") on a later ligand
        # with a new element: in a worker, that is the worker.
        vina.compute_vina_maps(center=self.center, box_size=self.size)
        return vina

    def dock_ligand(self, ligand, name: str = "ligand",
                    progress: Callable[[float, str], None] | None = None) -> DockingResult:
        """`progress(fraction, message)` after each chunk of Vina runs (a
        caller may raise there to stop)."""
        from meeko import PDBQTMolecule, RDKitMolCreate

        started = time.monotonic()
        lig = prepare_ligand(ligand, self.random_seed, name=name)
        found = []  # (score, MODEL body) of every chunk
        for k, (vina, runs) in enumerate(zip(self._vinas, self.chunks)):
            vina.set_ligand_from_string(lig)
            vina.dock(exhaustiveness=runs, n_poses=self.n_poses)
            energies = vina.energies(n_poses=self.n_poses)
            found += zip([float(e[0]) for e in energies], _models(vina.poses(n_poses=self.n_poses)))
            if progress is not None:
                done = sum(self.chunks[:k + 1])
                progress(done / self.exhaustiveness, f"{name}: {done} of {self.exhaustiveness} Vina runs")
        scores, models = _pool_poses(found, self.n_poses)
        if not scores:
            raise ValueError(f"{name}: Vina found no pose in the box")
        pdbqt = "".join(f"MODEL {i + 1}\n{body}ENDMDL\n" for i, body in enumerate(models))
        pdbqt_mol = PDBQTMolecule(pdbqt, is_dlg=False, skip_typing=True)
        mols = RDKitMolCreate.from_pdbqt_mol(pdbqt_mol)
        if not mols or mols[0] is None:
            raise ValueError(f"{name}: Meeko could not rebuild the docked pose")
        pose_mol = mols[0]
        poses, sdf = [], io.StringIO()
        writer = Chem.SDWriter(sdf)
        for i, conf in enumerate(pose_mol.GetConformers()):
            one = Chem.Mol(pose_mol)
            one.RemoveAllConformers()
            one.AddConformer(Chem.Conformer(conf), assignId=True)
            one.SetProp("_Name", f"{name} pose {i + 1}")
            if i < len(scores):
                one.SetDoubleProp("VINA_SCORE", scores[i])
            poses.append(one)
            writer.write(one)
        writer.close()
        return DockingResult(scores[0], scores, sdf.getvalue(), poses, self.cpu, self.exhaustiveness,
                             time.monotonic() - started, self.site)

    def __call__(self, smiles: str) -> float:
        return self.dock_ligand(smiles).best_score


def _models(pdbqt: str) -> list[str]:
    """The bodies of a multi-model PDBQT's MODEL ... ENDMDL blocks."""
    models, body = [], None
    for line in pdbqt.splitlines(keepends=True):
        if line.startswith("MODEL"):
            body = []
        elif line.startswith("ENDMDL"):
            models.append("".join(body or []))
            body = None
        elif body is not None:
            body.append(line)
    return models


def _heavy_coords(body: str) -> list[tuple[float, float, float]]:
    return [(float(line[30:38]), float(line[38:46]), float(line[46:54])) for line in body.splitlines()
            if line.startswith(("ATOM", "HETATM")) and line[77:79].strip() not in ("H", "HD", "HS")]


def _pool_poses(found: list[tuple[float, str]], n_poses: int, min_rmsd: float = 1.0,
                energy_range: float = 3.0) -> tuple[list[float], list[str]]:
    """Poses of several Vina runs as one run reports them: best first, none
    within `min_rmsd` Å (heavy atoms, same atom order) of a better one, at
    most `n_poses`, within `energy_range` of the best (Vina's defaults)."""
    kept: list[tuple[float, str, list]] = []
    for score, body in sorted(found, key=lambda f: f[0]):
        if len(kept) == n_poses or (kept and score > kept[0][0] + energy_range):
            break
        coords = _heavy_coords(body)
        if all(_rmsd(coords, other) >= min_rmsd for _, _, other in kept):
            kept.append((score, body, coords))
    return [k[0] for k in kept], [k[1] for k in kept]


def _rmsd(a, b) -> float:
    if not a or len(a) != len(b):
        return float("inf")
    return (sum((x - y) ** 2 for p, q in zip(a, b) for x, y in zip(p, q)) / len(a)) ** 0.5


def dock(receptor, ligand, site=None, *, center=None, size=None, exhaustiveness: int = 8, n_poses: int = 9,
         cpu: int = 0, random_seed: int = 0, name: str = "ligand") -> DockingResult:
    """Dock one ligand (SMILES or RDKit molecule) into a prepared receptor."""
    return DockingScorer(receptor, site, center=center, size=size, exhaustiveness=exhaustiveness,
                         n_poses=n_poses, cpu=cpu, random_seed=random_seed).dock_ligand(ligand, name)


OUT_OF_TIME = "not docked: the job's time budget ran out"


def dock_many(receptor, ligands, site=None, progress: Callable[[float, str], None] | None = None,
              reference: Chem.Mol | None = None, deadline: float | None = None, **options) -> list[dict]:
    """Dock (name, SMILES-or-mol) pairs with one scorer (Vina's maps are
    computed once for the whole list); one row each, `error` set on failure.
    With a `reference` ligand, each pose of the same molecule gets its
    in-place RMSD to it (`rmsd`, one per pose; None for another molecule).
    Ligands not started by `deadline` (time.monotonic()) are row errors."""
    scorer = DockingScorer(receptor, site, **options)
    rows = []
    for i, (name, ligand) in enumerate(ligands):
        row = {"name": name, "best_score": None, "poses_sdf": None, "error": None, "rmsd": None}
        if deadline is not None and time.monotonic() > deadline:
            row["error"] = f"{name}: {OUT_OF_TIME}"
            rows.append(row)
            continue
        try:
            result = scorer.dock_ligand(ligand, name, progress=None if progress is None else (
                lambda share, msg, i=i: progress(100.0 * (i + share) / len(ligands),
                                                 f"docking {i + 1} of {len(ligands)}, {msg}")))
            row.update(best_score=result.best_score, scores=result.scores, poses_sdf=result.poses_sdf)
            if reference is not None:
                row["rmsd"] = reference_rmsds(result.poses, reference)
                if row["rmsd"]:
                    row["poses_sdf"] = _sdf(result.poses, "RMSD_TO_REFERENCE", row["rmsd"])
        except Exception as exc:  # one bad ligand must not stop the batch
            row["error"] = str(exc) if str(exc).startswith(str(name)) else f"{name}: {exc}"
        rows.append(row)
        if progress is not None:
            progress(100.0 * (i + 1) / len(ligands), f"docked {i + 1} of {len(ligands)}")
    return rows


def _sdf(poses: list, tag: str, values: list) -> str:
    out = io.StringIO()
    writer = Chem.SDWriter(out)
    for pose, value in zip(poses, values):
        pose = Chem.Mol(pose)
        pose.SetDoubleProp(tag, value)
        writer.write(pose)
    writer.close()
    return out.getvalue()


RMSD_METHOD = "symmetry-aware heavy-atom RMSD, no alignment (RDKit rdMolAlign.CalcRMS)"


def _heavy(mol: Chem.Mol) -> Chem.Mol:
    return Chem.RemoveHs(mol, sanitize=False)


def _graph(mol: Chem.Mol) -> Chem.Mol:
    """The element graph only: bonds single, no aromaticity or charges. A
    crystal ligand read from PDB records has no bond orders, and a docked
    pose's protonation or tautomer may differ from the crystal file's; the
    atoms and their connections are what the RMSD compares."""
    graph = Chem.RWMol(mol)
    for bond in graph.GetBonds():
        bond.SetBondType(Chem.BondType.SINGLE)
        bond.SetIsAromatic(False)
    for atom in graph.GetAtoms():
        atom.SetIsAromatic(False)
        atom.SetFormalCharge(0)
        atom.SetNoImplicit(True)
        atom.SetNumExplicitHs(0)
    graph.UpdatePropertyCache(strict=False)
    Chem.FastFindRings(graph)
    return graph


def same_molecule_maps(pose: Chem.Mol, reference: Chem.Mol, max_matches: int = 10_000) -> list | None:
    """Atom maps [(pose atom, reference atom), ...] over the heavy atoms, one
    per symmetry-equivalent match, when the two are the same molecule (same
    heavy-atom element graph); None otherwise."""
    a, b = _heavy(pose), _heavy(reference)
    if a.GetNumAtoms() != b.GetNumAtoms() or a.GetNumBonds() != b.GetNumBonds():
        return None
    matches = _graph(a).GetSubstructMatches(_graph(b), uniquify=False, useChirality=False,
                                            maxMatches=max_matches)
    if not matches:
        return None
    return [list(zip(match, range(b.GetNumAtoms()))) for match in matches]


def pose_rmsd(pose: Chem.Mol, reference: Chem.Mol) -> float:
    """Heavy-atom RMSD in place (no superposition), symmetry-aware: the
    minimum over the graph automorphisms, as docking papers report it."""
    maps = same_molecule_maps(pose, reference)
    if maps is None:
        a, b = _heavy(pose), _heavy(reference)
        raise ValueError(f"pose_rmsd: the pose ({a.GetNumAtoms()} heavy atoms) and the reference "
                         f"({b.GetNumAtoms()}) are not the same molecule")
    return float(rdMolAlign.CalcRMS(_heavy(pose), _heavy(reference), map=maps))


def reference_rmsds(poses: list, reference: Chem.Mol) -> list | None:
    """pose_rmsd of each pose, or None when the docked ligand is another
    molecule than the reference."""
    if not poses or same_molecule_maps(poses[0], reference) is None:
        return None
    return [round(pose_rmsd(pose, reference), 3) for pose in poses]


def reference_from_pdb(pdb_text: str, chain: str, resnum: str, resname: str) -> Chem.Mol | None:
    """A HETATM group of a structure as an RDKit molecule (connectivity from
    distances, no bond orders: enough for same_molecule_maps)."""
    lines = [line for line in pdb_text.splitlines() if line.startswith("HETATM") and line[17:20].strip() == resname
             and line[21] == chain and line[22:27].strip() == resnum and line[16] in (" ", "A")]
    if not lines:
        return None
    mol = Chem.MolFromPDBBlock("\n".join(lines) + "\nEND\n", sanitize=False, removeHs=False)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    mol.UpdatePropertyCache(strict=False)
    return mol


def box_warnings(protein_pdb, center, size) -> list[str]:
    return check_box(read_protein_atoms(protein_pdb), center, size)[1]
