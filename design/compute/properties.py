"""Molecular property predictors, each registered with the method it uses.

Adding a predictor is one decorated function:

    @register_property("my_key", "My label", "unit", "How it is computed (reference)")
    def _my_key(mol):
        return ...

`score_molecule` then returns it with every other registered value, and
`METHODS` (key -> method text) lets a page say how each number was made.
"""

from __future__ import annotations

import importlib.util
import math
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from rdkit import Chem, RDConfig
from rdkit.Chem import QED, Crippen, Descriptors, Lipinski, rdMolDescriptors
from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams

from .molecules import MoleculeRecord, to_mol

__all__ = [
    "PropertySpec",
    "PROPERTIES",
    "METHODS",
    "register_property",
    "score_molecule",
    "score_records",
    "MoleculeTooSlow",
    "structural_alerts",
    "esol_logs",
    "abbott_score",
    "lipinski_violations",
]


@dataclass(frozen=True)
class PropertySpec:
    key: str
    label: str
    unit: str
    method: str
    func: Callable[[Chem.Mol], object]


PROPERTIES: dict[str, PropertySpec] = {}
METHODS: dict[str, str] = {}


def register_property(key: str, label: str, unit: str, method: str):
    """Register `func(mol) -> value` under `key`. Registering a key twice is a
    programming error (two predictors would silently shadow each other)."""

    def decorate(func):
        if key in PROPERTIES:
            raise ValueError(f"property {key!r} is already registered")
        PROPERTIES[key] = PropertySpec(key, label, unit, method, func)
        METHODS[key] = method
        return func

    return decorate


class MoleculeTooSlow(ValueError):
    """Scoring one molecule ran past its time limit."""


def score_molecule(smiles_or_mol, keys=None, max_seconds: float | None = None) -> dict:
    """Every registered property (or those in `keys`) for one molecule.

    Raises ValueError naming the molecule if it cannot be parsed, and
    MoleculeTooSlow once scoring has taken over `max_seconds`. The clock is
    read between properties: one RDKit call cannot be interrupted from
    Python (a signal waits for it too), so the size caps bound each call and
    this bounds their sum."""
    mol = to_mol(smiles_or_mol)
    wanted = PROPERTIES if keys is None else {k: _spec(k) for k in keys}
    started = time.monotonic()
    values = {}
    for key, spec in wanted.items():
        values[key] = spec.func(mol)
        elapsed = time.monotonic() - started
        if max_seconds is not None and elapsed > max_seconds and len(values) < len(wanted):
            raise MoleculeTooSlow(f"scoring stopped after {elapsed:.1f} s, over the limit of {max_seconds:g} s "
                                  f"per molecule ({len(values)} of {len(wanted)} properties done, "
                                  f"the last “{key}”)")
    return values


def _spec(key: str) -> PropertySpec:
    try:
        return PROPERTIES[key]
    except KeyError:
        raise ValueError(f"property {key!r} is not registered (known: {', '.join(PROPERTIES)})") from None


def score_records(records: list[MoleculeRecord], keys=None, progress=None,
                  max_seconds: float | None = None, deadline: float | None = None) -> list[dict]:
    """Score a parsed batch: one row per record, `error` set where the record
    did not parse, a predictor failed on it or it took over `max_seconds`,
    and the others scored. Records left when time.monotonic() passes
    `deadline` are row errors too, so a batch near its job's time limit
    keeps what it has scored."""
    rows = []
    total = max(len(records), 1)
    step = max(1, total // 100)
    for i, rec in enumerate(records):
        row = {"row": rec.row, "name": rec.name, "input": rec.source,
               "smiles": rec.smiles, "error": rec.error, "properties": None}
        if rec.ok and deadline is not None and time.monotonic() > deadline:
            row["error"] = (f"row {rec.row}" + (f" ({rec.name})" if rec.name else "")
                            + ": not scored: the job's time budget ran out")
        elif rec.ok:
            try:
                row["properties"] = score_molecule(rec.mol, keys, max_seconds)
            except Exception as exc:  # a predictor failing on one molecule must not sink the batch
                row["error"] = f"row {rec.row}" + (f" ({rec.name})" if rec.name else "") + f": {exc}"
        rows.append(row)
        if progress is not None and (i % step == 0 or i == total - 1):
            progress(100.0 * (i + 1) / total, f"scored {i + 1} of {len(records)} molecules")
    return rows


# ---------------------------------------------------------------- basic descriptors

@register_property("mw", "Molecular weight", "g/mol", "Average molecular weight (RDKit Descriptors.MolWt)")
def _mw(mol):
    return round(Descriptors.MolWt(mol), 3)


@register_property("clogp", "cLogP", "", "Wildman-Crippen logP (RDKit Crippen.MolLogP, Wildman & Crippen 1999)")
def _clogp(mol):
    return round(Crippen.MolLogP(mol), 3)


@register_property("tpsa", "TPSA", "Å²", "Topological polar surface area, N and O only (Ertl 2000; RDKit CalcTPSA)")
def _tpsa(mol):
    return round(rdMolDescriptors.CalcTPSA(mol), 2)


@register_property("hbd", "H-bond donors", "", "Lipinski donors: count of OH and NH (RDKit CalcNumLipinskiHBD)")
def _hbd(mol):
    return rdMolDescriptors.CalcNumLipinskiHBD(mol)


@register_property("hba", "H-bond acceptors", "", "Lipinski acceptors: count of N and O (RDKit CalcNumLipinskiHBA)")
def _hba(mol):
    return rdMolDescriptors.CalcNumLipinskiHBA(mol)


@register_property("rotatable_bonds", "Rotatable bonds", "",
                   "Non-terminal single bonds outside rings (RDKit Lipinski.NumRotatableBonds, default strict definition)")
def _rb(mol):
    return Lipinski.NumRotatableBonds(mol)


@register_property("aromatic_proportion", "Aromatic proportion", "",
                   "Aromatic heavy atoms / heavy atoms (Delaney 2004), RDKit aromaticity")
def _ap(mol):
    heavy = mol.GetNumHeavyAtoms()
    return round(sum(a.GetIsAromatic() for a in mol.GetAtoms() if a.GetAtomicNum() > 1) / heavy, 4) if heavy else 0.0


# ---------------------------------------------------------------- solubility

# Delaney, J. S. "ESOL: Estimating Aqueous Solubility Directly from Molecular
# Structure", J. Chem. Inf. Comput. Sci. 2004, 44, 1000-1005, equation (1):
# log(Sw) = 0.16 - 0.63 clogP - 0.0062 MWT + 0.066 RB - 0.74 AP.
# Delaney computed clogP with Daylight's ClogP; here it is Crippen's, which
# is why the ESOL dataset's own predictions differ a little from ours.
ESOL_COEFFICIENTS = {"intercept": 0.16, "clogp": -0.63, "mw": -0.0062, "rotatable_bonds": 0.066,
                     "aromatic_proportion": -0.74}


def esol_logs(mol) -> float:
    mol = to_mol(mol)
    c = ESOL_COEFFICIENTS
    return (c["intercept"] + c["clogp"] * Crippen.MolLogP(mol) + c["mw"] * Descriptors.MolWt(mol)
            + c["rotatable_bonds"] * Lipinski.NumRotatableBonds(mol)
            + c["aromatic_proportion"] * _ap(mol))


@register_property("esol_logs", "Solubility (ESOL logS)", "log10(mol/L)",
                   "ESOL, Delaney 2004: logS = 0.16 - 0.63 cLogP - 0.0062 MW + 0.066 RB - 0.74 AP, with "
                   "cLogP = Crippen (RDKit), MW = average MW, RB = RDKit rotatable bonds, "
                   "AP = aromatic heavy atoms / heavy atoms")
def _esol(mol):
    return round(esol_logs(mol), 3)


# ---------------------------------------------------------------- bioavailability

def lipinski_violations(mol) -> list[str]:
    """Lipinski et al. 1997: MW > 500, cLogP > 5, > 5 donors, > 10 acceptors."""
    mol = to_mol(mol)
    out = []
    mw, logp = Descriptors.MolWt(mol), Crippen.MolLogP(mol)
    hbd, hba = _hbd(mol), _hba(mol)
    if mw > 500:
        out.append(f"MW {mw:.1f} > 500")
    if logp > 5:
        out.append(f"cLogP {logp:.2f} > 5")
    if hbd > 5:
        out.append(f"H-bond donors {hbd} > 5")
    if hba > 10:
        out.append(f"H-bond acceptors {hba} > 10")
    return out


@register_property("lipinski_violations", "Rule-of-five violations", "list",
                   "Lipinski 1997: MW > 500, Crippen cLogP > 5, OH+NH > 5, N+O > 10; each violation listed")
def _lipinski(mol):
    return lipinski_violations(mol)


@register_property("lipinski_pass", "Passes rule of five", "bool",
                   "At most one Lipinski violation (Lipinski 1997 flags compounds with more than one)")
def _lipinski_pass(mol):
    return len(lipinski_violations(mol)) <= 1


@register_property("veber_pass", "Passes Veber rules", "bool",
                   "Veber 2002: rotatable bonds <= 10 and TPSA <= 140 Å²")
def _veber(mol):
    return Lipinski.NumRotatableBonds(mol) <= 10 and rdMolDescriptors.CalcTPSA(mol) <= 140


# Martin's score depends on the charge a compound carries at pH 6-7; without a
# pKa model we call a compound an anion when it has a group that is ionised
# at that pH in nearly all drugs: carboxylic, sulfonic, phosphonic/phosphoric
# acids, tetrazoles and acyl sulfonamides (or an explicit negative charge).
_ACID_SMARTS = [
    "[CX3](=O)[OX2H1,OX1-]",
    "[SX4](=O)(=O)[OX2H1,OX1-]",
    "[PX4](=O)[OX2H1,OX1-]",
    "c1nn[nH]n1",
    "c1nnn[nH]1",
    "C(=O)[NH][SX4](=O)=O",
]


@lru_cache(maxsize=1)
def _acid_patterns():
    return [Chem.MolFromSmarts(s) for s in _ACID_SMARTS]


def _is_anion(mol) -> bool:
    if any(a.GetFormalCharge() < 0 for a in mol.GetAtoms()) and Chem.GetFormalCharge(mol) < 0:
        return True
    return any(mol.HasSubstructMatch(p) for p in _acid_patterns())


def abbott_score(mol) -> float:
    """Martin 2005 (J. Med. Chem. 48, 3164): probability of F > 10 % in rat.
    Anions: 0.85 if TPSA <= 75, 0.56 if 75 < TPSA < 150, 0.11 if TPSA >= 150.
    Others: 0.55 if they pass the rule of five, 0.17 if not."""
    mol = to_mol(mol)
    if _is_anion(mol):
        tpsa = rdMolDescriptors.CalcTPSA(mol)
        if tpsa <= 75:
            return 0.85
        return 0.56 if tpsa < 150 else 0.11
    return 0.55 if len(lipinski_violations(mol)) <= 1 else 0.17


@register_property("abbott_score", "Abbott bioavailability score", "probability",
                   "Martin 2005: anions 0.85/0.56/0.11 by TPSA <=75 / <150 / >=150 Å²; others 0.55 if "
                   "they pass the rule of five (<= 1 violation) else 0.17. Approximation: 'anion' = has a "
                   "carboxylic/sulfonic/phosphonic acid, tetrazole or acyl sulfonamide (substructure, not pKa)")
def _abbott(mol):
    return abbott_score(mol)


# ---------------------------------------------------------------- structural alerts

_CATALOGS = {
    "PAINS": FilterCatalogParams.FilterCatalogs.PAINS,
    "Brenk": FilterCatalogParams.FilterCatalogs.BRENK,
    "NIH": FilterCatalogParams.FilterCatalogs.NIH,
}


@lru_cache(maxsize=None)
def _catalog(name: str) -> FilterCatalog:
    params = FilterCatalogParams()
    params.AddCatalog(_CATALOGS[name])
    return FilterCatalog(params)


def structural_alerts(mol, catalogs=("PAINS", "Brenk", "NIH")) -> list[dict]:
    """Every matching filter as {"catalog", "description", "atoms"}."""
    mol = to_mol(mol)
    out = []
    for name in catalogs:
        if name not in _CATALOGS:
            raise ValueError(f"catalog {name!r} is unknown (use {', '.join(_CATALOGS)})")
        for entry in _catalog(name).GetMatches(mol):
            atoms = sorted({a for match in entry.GetFilterMatches(mol) for _, a in match.atomPairs})
            out.append({"catalog": name, "description": entry.GetDescription(), "atoms": atoms})
    return out


def _alert_property(name: str, what: str):
    @register_property(f"{name.lower()}_alerts", f"{name} alerts", "list",
                       f"RDKit FilterCatalog {name} ({what}); each match names the catalog and the "
                       f"substructure's description")
    def _alerts(mol):
        return structural_alerts(mol, (name,))

    return _alerts


_alert_property("PAINS", "Baell & Holloway 2010 pan-assay interference, toxicity/assay flag")
_alert_property("Brenk", "Brenk 2008 unwanted/reactive groups, toxicity and stability flag")
_alert_property("NIH", "Jadhav 2010 NCGC reactive/undesirable groups, stability flag")


# ---------------------------------------------------------------- drug-likeness, SA

@register_property("qed", "QED", "0-1", "Quantitative estimate of drug-likeness, Bickerton 2012 (RDKit QED.qed, "
                   "weighted mean)")
def _qed(mol):
    return round(QED.qed(mol), 4)


@lru_cache(maxsize=1)
def _sascorer():
    # Loaded from the installed RDKit so the fragment scores always match the
    # RDKit version in use; the module is not importable as a package.
    path = os.path.join(RDConfig.RDContribDir, "SA_Score", "sascorer.py")
    if not os.path.exists(path):
        raise RuntimeError(f"RDKit's SA_Score contrib is missing ({path})")
    spec = importlib.util.spec_from_file_location("rdkit_contrib_sascorer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@register_property("sa_score", "Synthetic accessibility", "1 (easy) - 10 (hard)",
                   "SA score, Ertl & Schuffenhauer 2009 (RDKit Contrib SA_Score/sascorer.py)")
def _sa(mol):
    return round(_sascorer().calculateScore(mol), 3)


def is_finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
