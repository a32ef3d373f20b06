"""Checking what is submitted for the design kinds (web forms and API alike),
and reading uploaded structures.

Jobs store ids of targets, sites and campaigns rather than copies of them;
clean_* only checks the ids exist. Whether the submitting user may use them
is ``check_access``'s job, which every submission runs (the kinds register
it), and the runner checks again against the job's owner. An id the user may
not see gets the same answer as one that does not exist.
"""

from __future__ import annotations

import csv

from django.conf import settings

from accounts.scoping import require_visible_ids
from workers.errors import ParamsError
from workers.kinds import Cleaned, JobKind

from . import model_properties
from .models import BindingSite, Campaign, Target

MAX_MOLECULES = 20_000
MAX_POPULATION = 500
MAX_GENERATIONS = 200
MAX_SEEDS = 200
# Docking inside the GA costs seconds per molecule: every scored molecule is
# docked once, so the GA's evaluation budget is what caps it.
MAX_GA_DOCKINGS = 300
MAX_GA_EXHAUSTIVENESS = 8

# With no seeds the GA starts from common drug ring systems.
DEFAULT_SEEDS = ["c1ccccc1", "c1ccncc1", "C1CCNCC1", "c1ccc2[nH]ccc2c1", "O=C(N)c1ccccc1",
                 "c1cn[nH]c1", "C1COCCN1", "Nc1ncccn1"]


# ---------------------------------------------------------------- common checks

def molecule_limits(use: str = "properties"):
    """The size caps on one molecule from settings, for `use` "properties"
    (property rows), "docking" (ligands), "seeds" (GA seeds) or "depict"
    (drawings in a web request)."""
    from design.compute.molecules import MoleculeLimits

    heavy = {"docking": settings.BIOFM_DOCK_MAX_HEAVY_ATOMS, "depict": settings.BIOFM_DEPICT_MAX_HEAVY_ATOMS}
    if use == "seeds":
        from design.compute.generate import MAX_HEAVY_ATOMS

        heavy["seeds"] = min(MAX_HEAVY_ATOMS, settings.BIOFM_MOLECULE_MAX_HEAVY_ATOMS)
    smiles = settings.BIOFM_DEPICT_MAX_SMILES_CHARS if use == "depict" else settings.BIOFM_MOLECULE_MAX_SMILES_CHARS
    return MoleculeLimits(max_heavy_atoms=heavy.get(use, settings.BIOFM_MOLECULE_MAX_HEAVY_ATOMS),
                          max_smiles_chars=smiles, max_molblock_chars=settings.BIOFM_MOLECULE_MAX_MOLBLOCK_CHARS)


def _int(params: dict, key: str, default: int, lo: int, hi: int, what: str) -> int:
    value = params.get(key, default)
    try:
        value = int(value)
    except (TypeError, ValueError):
        raise ParamsError(key, f"{what} must be a whole number.") from None
    if not lo <= value <= hi:
        raise ParamsError(key, f"{what} must be from {lo} to {hi}, not {value}.")
    return value


def _float(value, key: str, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParamsError(key, f"{what} must be a number.") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ParamsError(key, f"{what} must be a finite number.")
    return number


def _pk(params: dict, key: str, model, what: str) -> int:
    value = params.get(key)
    try:
        pk = int(value)
    except (TypeError, ValueError):
        raise ParamsError(key, f"Give the {what} id.") from None
    if not model.objects.filter(pk=pk).exists():
        raise ParamsError(key, f"No {what} with id {pk}.")
    return pk


def check_access(params: dict, user) -> None:
    """Refuse ids of targets, sites, campaigns or registered models the user
    may not see, with the answer a missing id gets. Runs before the clean_*
    functions, so malformed ids are left for them to name."""
    require_visible_ids(user, [
        (key, model, what, params.get(key))
        for key, model, what in (("target_id", Target, "target"), ("site_id", BindingSite, "binding site"),
                                 ("campaign_id", Campaign, "campaign"))])
    objectives = params.get("objectives")
    if isinstance(objectives, list):
        model_properties.check_access(user, [(f"objectives[{n}].property", o.get("property"))
                                             for n, o in enumerate(objectives) if isinstance(o, dict)])


def check_properties_access(params: dict, user) -> None:
    keys = params.get("model_properties")
    if isinstance(keys, list):
        model_properties.check_access(user, [(f"model_properties[{n}]", k) for n, k in enumerate(keys)])


def _model_keys(params: dict) -> list[str]:
    """The registered-model properties asked for, checked and deduplicated in order."""
    keys = params.get("model_properties") or []
    if isinstance(keys, str):
        keys = [keys]
    if not isinstance(keys, list):
        raise ParamsError("model_properties", "Model properties are a list of keys model:<id>:<target>.")
    clean = []
    for n, key in enumerate(keys):
        key = model_properties.clean_key(key, f"model_properties[{n}]")
        if key not in clean:
            clean.append(key)
    return clean


def cpu_cap() -> int:
    from design.compute.docking import available_cpus

    return max(1, available_cpus())


# ---------------------------------------------------------------- properties

def clean_properties_params(params: dict) -> Cleaned:
    """Cheap checks only: this runs in the web process, where a 5 MB upload
    parsed with RDKit took seconds and hundreds of MB. Size, format, the CSV
    header and a streaming count of records are checked here; RDKit reads
    the molecules in the worker, which reports bad rows one by one."""
    from design.compute.molecules import count_records, sniff_format

    text = params.get("molecules")
    if params.get("smiles") is not None:
        items = params["smiles"]
        if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
            raise ParamsError("smiles", "Give a list of SMILES strings.")
        if len(items) > MAX_MOLECULES:
            raise ParamsError("smiles", f"{len(items)} molecules: the limit is {MAX_MOLECULES}.")
        if any("\n" in s or "\r" in s for s in items):
            raise ParamsError("smiles", "Each SMILES is one line.")
        text, fmt = "\n".join(items), "smi"
    else:
        fmt = str(params.get("format") or "").lower() or None
    if not isinstance(text, str) or not text.strip():
        raise ParamsError("molecules", "Give molecules: SMILES (CSV or one per line) or SDF text.")
    cap = settings.BIOFM_UPLOAD_MAX_BYTES
    # isascii() is a flag lookup; only other text is encoded to be measured.
    size = len(text) if text.isascii() else len(text.encode())
    if size > cap:
        raise ParamsError("molecules", f"The molecules are {size / 1e6:.1f} MB, over the {cap / 1e6:.1f} MB limit.")
    if fmt is None:
        fmt = sniff_format(text)
    if fmt not in ("csv", "sdf", "smi"):
        raise ParamsError("format", f"Unknown format “{fmt}”: use csv, sdf or smi.")
    options = {}
    if fmt == "csv":
        for key in ("smiles_column", "name_column"):
            if params.get(key):
                options[key] = str(params[key])
    try:
        n_records = count_records(text, fmt, **options)
    except ValueError as exc:
        raise ParamsError("smiles_column" if "column" in str(exc) and options else "molecules", str(exc)) from None
    except csv.Error as exc:
        raise ParamsError("molecules", f"CSV: {exc}") from None
    if not n_records:
        raise ParamsError("molecules", "No molecule: the input has no records.")
    if n_records > MAX_MOLECULES:
        raise ParamsError("molecules", f"{n_records} molecules: the limit is {MAX_MOLECULES}.")
    clean = {"molecules": text, "format": fmt, **options, "filename": str(params.get("filename") or "")[:200]}
    facts = {"n_molecules": n_records}
    keys = _model_keys(params)
    if keys:
        # Only when asked for, so the parameters of a job without models stay as they were.
        clean["model_properties"] = keys
        facts["model_labels"] = model_properties.labels_for(keys)
    # RDKit's verdict on each row comes from the worker; the count is a fact.
    return Cleaned(params=clean, facts=facts)


def summarize_properties(params: dict, facts: dict) -> str:
    models = list((facts.get("model_labels") or {}).values())
    extra = f" + {', '.join(models)}" if models else ""
    return f"{facts.get('n_molecules', 0)} molecules ({params.get('format', '')}){extra}"


# ---------------------------------------------------------------- docking

def max_dock_ligands() -> int:
    return settings.BIOFM_DOCK_MAX_LIGANDS


def docking_time_limit() -> int:
    """Seconds for the largest job the caps allow: BIOFM_DOCK_MAX_WORK
    ligand-exhaustiveness units at BIOFM_DOCK_SECONDS_PER_UNIT each, plus
    ten minutes for the receptor and the files."""
    return settings.BIOFM_DOCK_MAX_WORK * settings.BIOFM_DOCK_SECONDS_PER_UNIT + 600


def _ligand_items(params: dict) -> list:
    ligands = params.get("ligands")
    if ligands is None and params.get("smiles"):
        ligands = [{"name": "ligand", "smiles": params["smiles"]}]
    if ligands is None:
        return []
    if not isinstance(ligands, list):
        raise ParamsError("ligands", "Ligands are a list of {\"name\", \"smiles\"}.")
    return ligands


def _ligand_text(params: dict) -> tuple[str | None, str | None, str]:
    """(text, format, field) of a ligand file given as text: `ligands_sdf`
    (SDF) or `molecules` (SDF, SMILES lines or CSV, as for properties)."""
    from design.compute.molecules import sniff_format

    for key in ("ligands_sdf", "molecules"):
        text = params.get(key)
        if text in (None, ""):
            continue
        if not isinstance(text, str):
            raise ParamsError(key, "Give the ligands as text.")
        if not text.strip():
            continue
        cap = settings.BIOFM_UPLOAD_MAX_BYTES
        size = len(text) if text.isascii() else len(text.encode())
        if size > cap:
            raise ParamsError(key, f"The ligands are {size / 1e6:.1f} MB, over the {cap / 1e6:.1f} MB limit.")
        fmt = "sdf" if key == "ligands_sdf" else (str(params.get("format") or "").lower() or sniff_format(text))
        if fmt not in ("csv", "sdf", "smi"):
            raise ParamsError("format", f"Unknown format “{fmt}”: use csv, sdf or smi.")
        return text, fmt, key
    return None, None, ""


def clean_docking_params(params: dict) -> Cleaned:
    """Bad ligands are left out and listed (row, name, RDKit's reason) in
    the facts; only a submission with no valid ligand is refused. SMILES
    are parsed here (a list is a few hundred small molecules, under the
    docking caps); SDF text is only split into records here and parsed in
    the worker, which reports its bad records the same way."""
    from design.compute.molecules import count_records, parse_smiles, read_molecules

    target_id = _pk(params, "target_id", Target, "target")
    site = _clean_site(params, target_id)
    items = _ligand_items(params)
    text, fmt, text_field = _ligand_text(params)
    n_sdf = 0
    if text is not None:
        try:
            n_records = count_records(text, fmt)
        except (ValueError, csv.Error) as exc:
            raise ParamsError(text_field, str(exc)) from None
        if fmt == "sdf":
            n_sdf = n_records
        if not n_records:
            raise ParamsError(text_field, "No molecule: the ligand file has no records.")
    n_total = len(items) + (n_records if text is not None else 0)
    cap = max_dock_ligands()
    if not n_total:
        raise ParamsError("ligands", "Give at least one ligand: {\"name\", \"smiles\"}, or SDF text.")
    if n_total > cap:
        raise ParamsError(text_field if text is not None and not items else "ligands",
                          f"{n_total} ligands: the limit is {cap} per job.")
    exhaustiveness = _int(params, "exhaustiveness", 8, 1, 64, "Exhaustiveness")
    work = settings.BIOFM_DOCK_MAX_WORK
    if n_total * exhaustiveness > work:
        raise ParamsError("exhaustiveness", f"{n_total} ligands at exhaustiveness {exhaustiveness} is over the "
                          f"job's budget of {work} ligand-exhaustiveness units: lower the exhaustiveness to "
                          f"{max(1, work // n_total)} or split the list.")
    limits = molecule_limits("docking")
    clean_ligands, invalid, first_field = [], [], None
    for n, item in enumerate(items):
        if isinstance(item, str):
            item = {"smiles": item}
        if not isinstance(item, dict) or not isinstance(item.get("smiles"), str):
            raise ParamsError(f"ligands[{n}].smiles", "Each ligand needs a \"smiles\" string.")
        row = item.get("row") if isinstance(item.get("row"), int) else n + 1
        name = str(item.get("name") or f"ligand{row}")[:100]
        try:
            parse_smiles(item["smiles"], name, limits)
        except ValueError as exc:
            invalid.append({"row": row, "name": name, "input": item["smiles"].strip()[:200], "error": str(exc)})
            first_field = first_field or f"ligands[{n}].smiles"
            continue
        clean_ligands.append({"row": row, "name": name, "smiles": item["smiles"].strip()})
    if text is not None and fmt != "sdf":
        # SMILES lines or CSV: RDKit reads them here, like the list above.
        offset = len(items)
        try:
            records = read_molecules(text, fmt, limits=limits)
        except (ValueError, csv.Error) as exc:
            raise ParamsError(text_field, str(exc)) from None
        for rec in records:
            name = (rec.name or f"ligand{offset + rec.row}")[:100]
            if rec.ok:
                clean_ligands.append({"row": offset + rec.row, "name": name, "smiles": rec.source})
            else:
                invalid.append({"row": offset + rec.row, "name": name, "input": rec.source[:200],
                                "error": rec.error})
                first_field = first_field or text_field
    if not clean_ligands and not n_sdf:
        if len(invalid) == 1:
            raise ParamsError(first_field, invalid[0]["error"])
        raise ParamsError(first_field, f"No valid ligand among {len(invalid)}: {invalid[0]['error']}")
    clean = {
        "target_id": target_id, **site, "ligands": clean_ligands,
        "exhaustiveness": exhaustiveness,
        "n_poses": _int(params, "n_poses", 9, 1, 20, "Number of poses"),
        "cpu": _int(params, "cpu", 0, 0, 256, "CPU cores (0 = all)"),
        "random_seed": _int(params, "random_seed", 0, 0, 2**31 - 1, "Random seed"),
    }
    if n_sdf:
        clean["ligands_sdf"] = text
    facts = {"n_ligands": n_total, "n_invalid": len(invalid), "invalid_ligands": invalid}
    if n_sdf:
        facts["n_sdf_records"] = n_sdf
    return Cleaned(params=clean, facts=facts)


def _clean_site(params: dict, target_id: int) -> dict:
    """Either a stored site of the target, or an explicit box."""

    if params.get("site_id") not in (None, ""):
        site_id = _pk(params, "site_id", BindingSite, "binding site")
        if not BindingSite.objects.filter(pk=site_id, target_id=target_id).exists():
            raise ParamsError("site_id", f"Binding site {site_id} belongs to another target.")
        return {"site_id": site_id}
    center, size = params.get("center"), params.get("size")
    if center is None:
        raise ParamsError("site_id", "Give a binding site id, or a box: center [x, y, z] and size.")
    if not isinstance(center, (list, tuple)) or len(center) != 3:
        raise ParamsError("center", "The box centre needs three numbers [x, y, z] in Å.")
    if isinstance(size, (int, float)):
        size = [size] * 3
    if not isinstance(size, (list, tuple)) or len(size) != 3:
        raise ParamsError("size", "The box size needs three numbers [x, y, z] in Å, or one for a cube.")
    center = [_float(c, "center", "The box centre") for c in center]
    size = [_float(s, "size", "The box size") for s in size]
    if any(s <= 0 or s > 126 for s in size):
        raise ParamsError("size", "Every box edge must be above 0 and at most 126 Å.")
    return {"center": center, "size": size}


def summarize_docking(params: dict, facts: dict) -> str:
    ligands = params.get("ligands", [])
    n = facts.get("n_ligands") or len(ligands)
    shown = ligands[:3]
    names = ", ".join(l["name"] for l in shown) if shown else f"{n} ligand{'s' if n != 1 else ''} from SDF"
    more = f" and {n - len(shown)} more" if shown and n > len(shown) else ""
    return f"Dock {names}{more} (exhaustiveness {params.get('exhaustiveness')})"


# ---------------------------------------------------------------- campaign runs

def numeric_properties() -> dict:
    from design.compute.properties import PROPERTIES

    return {k: s for k, s in PROPERTIES.items() if s.unit not in ("list", "bool")}


def clean_campaign_params(params: dict) -> dict:

    campaign_id = _pk(params, "campaign_id", Campaign, "campaign")
    seeds = params.get("seeds") or []
    if isinstance(seeds, str):
        seeds = [s for s in (line.split()[0] for line in seeds.splitlines() if line.strip()) if s]
    if not isinstance(seeds, list) or not all(isinstance(s, str) for s in seeds):
        raise ParamsError("seeds", "Seeds are a list of SMILES strings.")
    if len(seeds) > MAX_SEEDS:
        raise ParamsError("seeds", f"{len(seeds)} seeds: the limit is {MAX_SEEDS}.")
    from design.compute.molecules import parse_smiles

    limits = molecule_limits("seeds")
    for n, smiles in enumerate(seeds):
        try:
            parse_smiles(smiles, f"seed {n + 1}", limits)
        except ValueError as exc:
            raise ParamsError(f"seeds[{n}]", str(exc)) from None
    known = numeric_properties()
    objectives = params.get("objectives") or [{"property": "qed", "direction": "max", "weight": 1.0}]
    if not isinstance(objectives, list):
        raise ParamsError("objectives", "Objectives are a list of {\"property\", \"direction\", \"weight\"}.")
    clean_obj, names = [], set()
    for n, obj in enumerate(objectives):
        if not isinstance(obj, dict):
            raise ParamsError(f"objectives[{n}]", "Each objective is an object.")
        key = obj.get("property")
        if key == "docking_score":
            raise ParamsError(f"objectives[{n}].property",
                              "The docking score is an objective through \"docking\": {\"enabled\": true}.")
        if model_properties.is_model_key(key):
            model_properties.clean_key(key, f"objectives[{n}].property")
        elif key not in known:
            raise ParamsError(f"objectives[{n}].property",
                              f"Unknown numeric property “{key}”; choose from {', '.join(known)}, "
                              f"or a registered model's target as model:<id>:<target>.")
        if key in names:
            raise ParamsError(f"objectives[{n}].property", f"“{key}” is listed twice.")
        names.add(key)
        direction = obj.get("direction", "max")
        if direction not in ("max", "min"):
            raise ParamsError(f"objectives[{n}].direction", "Direction is max or min.")
        weight = _float(obj.get("weight", 1.0), f"objectives[{n}].weight", "The weight")
        if weight <= 0:
            raise ParamsError(f"objectives[{n}].weight", "The weight must be above 0.")
        clean_obj.append({"property": key, "direction": direction, "weight": weight})
    if not clean_obj:
        raise ParamsError("objectives", "Give at least one objective.")
    mode = params.get("mode", "weighted")
    if mode not in ("weighted", "pareto"):
        raise ParamsError("mode", "Mode is weighted or pareto.")
    filters = params.get("filters") or {}
    if not isinstance(filters, dict):
        raise ParamsError("filters", "Filters are an object.")
    alerts = filters.get("no_alerts", ["PAINS"])
    if not isinstance(alerts, list) or any(a not in ("PAINS", "Brenk", "NIH") for a in alerts):
        raise ParamsError("filters.no_alerts", "Alert catalogs are PAINS, Brenk and NIH.")
    mw_min = filters.get("mw_min")
    mw_max = filters.get("mw_max")
    mw_min = None if mw_min in (None, "") else _float(mw_min, "filters.mw_min", "The lowest MW")
    mw_max = None if mw_max in (None, "") else _float(mw_max, "filters.mw_max", "The highest MW")
    if mw_min is not None and mw_max is not None and mw_min > mw_max:
        raise ParamsError("filters.mw_min", f"The MW window is empty: {mw_min} > {mw_max}.")
    docking = params.get("docking") or {}
    if not isinstance(docking, dict):
        raise ParamsError("docking", "Docking options are an object.")
    dock = {"enabled": bool(docking.get("enabled", False))}
    if dock["enabled"]:
        if not Campaign.objects.filter(pk=campaign_id, site__isnull=False).exists():
            raise ParamsError("docking.enabled", "The campaign has no binding site to dock into.")
        dock.update(
            exhaustiveness=_int(docking, "exhaustiveness", 4, 1, MAX_GA_EXHAUSTIVENESS, "Docking exhaustiveness"),
            max_dockings=_int(docking, "max_dockings", 100, 1, MAX_GA_DOCKINGS, "Docked molecules"),
            weight=_float(docking.get("weight", 1.0), "docking.weight", "The docking weight"),
        )
    clean = {
        "campaign_id": campaign_id, "seeds": [s.strip() for s in seeds], "objectives": clean_obj,
        "mode": mode,
        "filters": {"no_alerts": alerts, "mw_min": mw_min, "mw_max": mw_max},
        "population_size": _int(params, "population_size", 50, 2, MAX_POPULATION, "Population size"),
        "generations": _int(params, "generations", 10, 1, MAX_GENERATIONS, "Generations"),
        "random_seed": _int(params, "random_seed", 0, 0, 2**31 - 1, "Random seed"),
        "brics_seeds": _int(params, "brics_seeds", 0, 0, 500, "BRICS recombinations of the seeds"),
        "docking": dock,
    }
    if dock["enabled"] and dock["max_dockings"] < clean["population_size"]:
        # Every scored molecule is docked, so a cap below one generation's
        # size would stop the run before its first offspring.
        raise ParamsError("docking.max_dockings",
                          f"A cap of {dock['max_dockings']} docked molecules cannot score one generation of "
                          f"{clean['population_size']}: raise the cap to at least "
                          f"{clean['population_size']} or lower the population size.")
    scatter = params.get("scatter") or {}
    axes = [o["property"] for o in clean_obj] + [k for k in ("mw", "clogp", "qed") if k not in names]
    clean["scatter"] = {"x": scatter.get("x") or axes[0], "y": scatter.get("y") or axes[1]}
    for axis in ("x", "y"):
        value = clean["scatter"][axis]
        # A model's value is known for the population only where it is an objective.
        if value not in known and value != "docking_score" and value not in names:
            raise ParamsError(f"scatter.{axis}", f"Unknown property “{value}”.")
    return clean


def summarize_campaign(params: dict, facts: dict) -> str:
    # A model objective is named by its record (display name, target), read once at submission.
    labels = model_properties.labels_for([o["property"] for o in params.get("objectives", [])])
    objectives = ", ".join(labels.get(o["property"], o["property"]) for o in params.get("objectives", []))
    dock = " + docking" if params.get("docking", {}).get("enabled") else ""
    return (f"GA {params.get('mode')} {objectives}{dock}: {params.get('population_size')} x "
            f"{params.get('generations')} generations, seed {params.get('random_seed')}")


KINDS = [
    JobKind(
        name="design.properties", label="Molecular property prediction", queue="cpu",
        runner="design.jobs:run_properties", clean_params=clean_properties_params,
        check_access=check_properties_access,
        result_template="design/result_properties.html",
        soft_time_limit=3600, time_limit=3700,
        description="Drug-likeness, solubility, bioavailability and structural alerts, each by a "
                    "named method, and the predictions of your registered models, for a SMILES/CSV or "
                    "SDF list; invalid rows are reported per row.",
        submit_url_name="design:properties_new", summarize_params=summarize_properties,
    ),
    JobKind(
        name="design.docking", label="Docking (AutoDock Vina)", queue="cpu",
        runner="design.jobs:run_docking", clean_params=clean_docking_params,
        check_access=check_access,
        result_template="design/result_docking.html",
        # Covers the largest job the caps allow (docking_time_limit); the
        # runner stops starting ligands at 90 % of it.
        soft_time_limit=docking_time_limit(), time_limit=docking_time_limit() + 300,
        description="AutoDock Vina docking with Meeko-prepared receptor and ligands into a "
                    "binding site; poses as SDF, best score in kcal/mol.",
        submit_url_name="design:docking_new", summarize_params=summarize_docking,
    ),
    # Docking inside the GA is capped by MAX_GA_DOCKINGS; the time
    # limit covers that cap at the highest allowed exhaustiveness.
    JobKind(
        name="design.campaign_run", label="Design campaign run", queue="cpu",
        runner="design.jobs:run_campaign", clean_params=clean_campaign_params,
        check_access=check_access,
        result_template="design/result_campaign.html",
        soft_time_limit=10 * 3600, time_limit=10 * 3600 + 600,
        description="Genetic algorithm with BRICS seeding over molecular graphs, weighted or "
                    "Pareto objectives over properties, registered models' predictions and "
                    "(optionally) the Vina score.",
        submit_url_name="design:index", summarize_params=summarize_campaign,
    ),
]
