"""The worker side of the design kinds: property prediction, docking and
campaign runs. The science is in design.compute.properties/docking/generate; this
module loads inputs and reports progress; outputs.py writes the result files."""

from __future__ import annotations

import math

from accounts.scoping import find_visible
from workers.context import JobContext
from workers.errors import JobInputError

from . import outputs as out
from .outputs import display_value

# The job page shows at most this many rows; the downloads have them all.
MAX_TABLE_ROWS = 500

DOCKING_METHOD = ("AutoDock Vina {vina} (scoring function “vina”), receptor and ligands prepared with "
                  "Meeko {meeko} (ligand 3D conformer by RDKit ETKDGv3 + MMFF); score = Vina's "
                  "estimate of binding free energy of the best pose, kcal/mol")


def finite(value):
    """JSON (and PostgreSQL jsonb) has no NaN or infinity: those become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def _owner(ctx: JobContext):
    job = getattr(ctx, "job", None)
    return job.owner if job is not None else None


def _visible(model, pk, ctx, what):
    # Checked again at run time: the owner may have lost access since submitting.
    owner = _owner(ctx)
    obj = model.objects.filter(pk=pk).first() if owner is None else find_visible(model, owner, pk)
    if obj is None:
        raise JobInputError(f"The {what} (id {pk}) does not exist or is not yours to use.")
    return obj


def _versions() -> dict:
    import meeko
    import vina

    return {"vina": getattr(vina, "__version__", "?"), "meeko": getattr(meeko, "__version__", "?")}


# ---------------------------------------------------------------- properties

def property_columns() -> list[dict]:
    from design.compute.properties import PROPERTIES

    return [{"key": s.key, "label": s.label, "unit": s.unit, "method": s.method} for s in PROPERTIES.values()]


def run_properties(ctx: JobContext) -> dict:

    from design.compute.molecules import read_molecules
    from design.compute.properties import METHODS, score_records

    import dataclasses
    import time

    from django.conf import settings

    from workers import kinds

    from .kind import molecule_limits

    p = ctx.params
    options = {k: p[k] for k in ("smiles_column", "name_column") if p.get(k)}
    # Reading and scoring stop at 90 % of the kind's time limit: the rows
    # left become row errors and what was scored is saved, where the limit
    # itself would fail the job with nothing.
    deadline = time.monotonic() + 0.9 * kinds.get("design.properties").soft_time_limit
    limits = dataclasses.replace(molecule_limits("properties"), deadline=deadline)
    ctx.progress(0, "Reading the molecules (RDKit)")
    try:
        records = read_molecules(p["molecules"], p["format"], limits=limits, **options)
    except ValueError as exc:
        raise JobInputError(str(exc)) from None
    if not any(r.ok for r in records):
        # The web side counts records without RDKit, so an all-bad batch is
        # found here.
        first = "; ".join(r.error for r in records[:3] if r.error)
        raise JobInputError(f"No valid molecule. {first}".strip())
    model_keys = p.get("model_properties") or []
    share = 0.8 if model_keys else 0.95
    rows = score_records(records, progress=lambda pct, msg: ctx.progress(pct * share, msg),
                         max_seconds=settings.BIOFM_MOLECULE_MAX_SECONDS, deadline=deadline)
    columns = property_columns()
    models = []
    if model_keys:
        model_cols, models = _model_predictions(ctx, model_keys, rows, deadline)
        columns += model_cols
    keys = [c["key"] for c in columns]
    out.write_properties(ctx, records, rows, keys)
    errors = [{"row": r["row"], "name": r["name"], "input": r["input"], "error": r["error"]}
              for r in rows if r["error"]]
    # An over-long input is kept whole in the files, cut in the stored result.
    shown_errors = [{**e, "input": e["input"] if len(e["input"]) <= 200 else e["input"][:199] + "…"}
                    for e in errors[:MAX_TABLE_ROWS]]
    valid_rows = [r for r in rows if not r["error"]]
    shown = [{"row": r["row"], "name": r["name"], "smiles": r["smiles"],
              "values": {k: display_value(v) for k, v in r["properties"].items()}}
             for r in valid_rows[:MAX_TABLE_ROWS]]
    ctx.progress(100, f"Scored {len(valid_rows)} molecules, {len(errors)} invalid rows")
    return finite({
        "n_molecules": len(rows), "n_valid": len(valid_rows), "n_invalid": len(errors),
        "columns": columns, "rows": shown, "truncated": len(valid_rows) > MAX_TABLE_ROWS,
        "errors": shown_errors, "methods": {c["key"]: c["method"] for c in columns},
        "models": models,
    })


def _model_predictions(ctx: JobContext, keys: list[str], rows: list[dict],
                       deadline: float) -> tuple[list[dict], list[dict]]:
    """Each registered model the keys name, loaded once, predicts every scored
    row in batches; its value, std and domain flag join the row's properties.
    A molecule the model refuses becomes that row's error."""
    from . import model_properties as mp

    with ctx.phase("loading models"):
        loaded = mp.load(keys, _owner(ctx), ctx.workdir)
    threshold, domain_method = mp.domain()
    scored = [r for r in rows if r["properties"] is not None and not r["error"]]
    smiles = [r["smiles"] for r in scored]
    wanted: dict[int, list[str]] = {}
    for key in keys:
        pk, target = mp.parse_key(key)
        wanted.setdefault(pk, []).append(target)
    columns, models = [], []
    for n, (pk, targets) in enumerate(wanted.items()):
        model = loaded[pk]
        name = model.record.display_name
        ctx.progress(80 + 18 * n / len(wanted), f"Predicting {len(smiles)} molecules with {name}")
        result = mp.predict(model, smiles, targets, progress=lambda done, total, n=n: ctx.progress(
            80 + 18 * (n + done / max(total, 1)) / len(wanted), f"{name}: {done} of {total} molecules predicted"),
            deadline=deadline)
        for target in targets:
            key = mp.model_key(pk, target)
            values = result["targets"][target]
            for i, row in enumerate(scored):
                row["properties"].update({key: values["value"][i], f"{key}:std": values["std"][i],
                                          f"{key}:in_domain": values["in_domain"][i]})
            columns += mp.columns(model.record, target, key, domain_method)
        for i, message in result["errors"].items():
            row = scored[i]
            # A second model's refusal is added to the first's, not written over it.
            row["error"] = (f"{row['error']}; {message}" if row["error"] else
                            f"row {row['row']}" + (f" ({row['name']})" if row["name"] else "") + f": {message}")
        models.append({"id": pk, "display_name": name, "targets": targets,
                       "training_data": mp.training_data(model.record), "ad_threshold": threshold})
    return columns, models


# ---------------------------------------------------------------- docking

def _receptor(target):
    from design.compute.docking import prepare_receptor

    try:
        return prepare_receptor(target.pdb_text())
    except ValueError as exc:
        raise JobInputError(f"Target “{target.name}”: {exc}") from None


def _receptor_summary(prep) -> dict:
    return {"failures_by_reason": prep.failures_by_reason(), "kept_hetero": list(prep.kept_hetero),
            "warnings": list(prep.warnings), "actions": prep.actions()}


def _site_of(params: dict, target, ctx) -> tuple[dict, object]:
    from design.compute.sites import check_box, read_protein_atoms

    from .models import BindingSite

    if params.get("site_id"):
        site = BindingSite.objects.filter(pk=params["site_id"], target=target).first()
        if site is None:
            raise JobInputError(f"Binding site {params['site_id']} is not a site of “{target.name}”.")
        return {**site.as_site(), "name": site.name}, site
    _, warnings = check_box(read_protein_atoms(target.pdb_text()), params["center"], params["size"])
    return {"center": params["center"], "size": params["size"], "residues": [], "method": "explicit box",
            "warnings": warnings, "name": "box"}, None


def _reference_ligand(site, target):
    """(name, molecule) of the co-crystallised ligand a site was defined
    from, for RMSDs; None for sites from residues or a box, or when the
    ligand cannot be read back."""
    from design.compute.docking import reference_from_pdb
    from design.compute.molecules import read_sdf

    if site is None or site.method != "ligand":
        return None
    given = site.params or {}
    if given.get("ligand_sdf"):
        text = given["ligand_sdf"]
        end = text.find("$$$$")
        records = read_sdf(text if end < 0 else text[:end])
        if records and records[0].ok:
            return records[0].name or "given ligand", records[0].mol
        return None
    code = str(given.get("ligand_code") or "")
    if not code:
        return None
    from design.compute.sites import read_protein_atoms

    text = target.pdb_text()
    chain, _, name = code.strip().upper().rpartition(":")
    copies = [a for a in read_protein_atoms(text) if a.record == "HETATM" and a.resname == name
              and (not chain or a.chain == chain)]
    if not copies:
        return None
    first = copies[0]
    mol = reference_from_pdb(text, first.chain, f"{first.resnum}{first.icode or ''}".strip(), name)
    return (f"{name} ({first.chain}:{first.resnum})", mol) if mol is not None else None


def _docking_inputs(p: dict, facts: dict) -> tuple[list, list]:
    """(ligands to dock, invalid rows): the list checked at submission, then
    the SDF records, read here with the docking caps; a bad record is a row
    error like a bad SMILES at submission."""
    from design.compute.molecules import read_sdf

    from .kind import molecule_limits

    ligands = [{"row": l.get("row", n + 1), "name": l["name"], "smiles": l["smiles"], "mol": l["smiles"]}
               for n, l in enumerate(p["ligands"])]
    invalid = [dict(e) for e in facts.get("invalid_ligands", [])]
    if p.get("ligands_sdf"):
        for rec in read_sdf(p["ligands_sdf"], limits=molecule_limits("docking")):
            name = (rec.name or f"record {rec.row}")[:100]
            if rec.ok:
                ligands.append({"row": f"SDF {rec.row}", "name": name, "smiles": rec.smiles, "mol": rec.mol})
            else:
                invalid.append({"row": f"SDF {rec.row}", "name": name, "input": rec.source, "error": rec.error})
    return ligands, invalid


def run_docking(ctx: JobContext) -> dict:
    import time

    from design.compute.docking import RMSD_METHOD, available_cpus, dock_many
    from workers import kinds

    from .models import Target

    p = ctx.params
    deadline = time.monotonic() + 0.9 * kinds.get("design.docking").soft_time_limit
    target = _visible(Target, p["target_id"], ctx, "target")
    ligands, invalid = _docking_inputs(p, ctx.facts)
    if not ligands:
        raise JobInputError("No valid ligand: " + "; ".join(e["error"] for e in invalid[:3]))
    ctx.progress(1, "Preparing the receptor (Meeko)")
    with ctx.phase("preparing receptor"):
        prep = _receptor(target)
    site, site_obj = _site_of(p, target, ctx)
    reference = _reference_ligand(site_obj, target)
    cpu = min(p["cpu"] or available_cpus(), available_cpus())
    ctx.progress(10, f"Docking {len(ligands)} ligand(s) on {cpu} core(s)")
    # One scorer for the whole list: Vina's maps are computed once.
    rows = dock_many(prep, [(l["name"], l["mol"]) for l in ligands], site,
                     progress=lambda pct, msg: ctx.progress(10 + pct * 0.88, msg),
                     reference=reference[1] if reference else None, deadline=deadline,
                     exhaustiveness=p["exhaustiveness"], n_poses=p["n_poses"], cpu=cpu,
                     random_seed=p["random_seed"])
    for row, lig in zip(rows, ligands):
        row["smiles"], row["row"] = lig["smiles"], lig["row"]
    if all(r["error"] for r in rows):
        raise JobInputError("No ligand could be docked: " + "; ".join(r["error"] for r in rows[:3]))
    has_rmsd = any(r.get("rmsd") for r in rows)
    out.write_docking(ctx, rows, invalid, has_rmsd)
    ctx.add_file("receptor.pdbqt", prep.pdbqt, "text/plain")
    versions = _versions()
    return finite({
        "target": {"id": target.pk, "name": target.name},
        "site": site,
        "receptor": _receptor_summary(prep),
        "ligands": [{k: r.get(k) for k in ("row", "name", "smiles", "best_score", "scores", "rmsd", "error")}
                    for r in rows],
        "invalid": [{**e, "input": e["input"] if len(e["input"]) <= 200 else e["input"][:199] + "…"}
                    for e in invalid[:MAX_TABLE_ROWS]],
        "n_invalid": len(invalid),
        "reference": ({"name": reference[0], "method": RMSD_METHOD,
                       "text": f"RMSD to the crystal ligand {reference[0]}, symmetry-aware heavy atoms, "
                               f"no alignment (RDKit rdMolAlign.CalcRMS); only for ligands that are the "
                               f"same molecule (same heavy-atom graph)"}
                      if reference else None),
        "options": {"exhaustiveness": p["exhaustiveness"], "n_poses": p["n_poses"], "cpu": cpu,
                    "random_seed": p["random_seed"]},
        "method": DOCKING_METHOD.format(**versions),
        "versions": versions,
    })


# ---------------------------------------------------------------- campaign runs

def _history_writer(ctx: JobContext, campaign):
    """Each generation is written to the CampaignRun row at once, so the page
    can draw the chart while the job runs. The write is conditional on this
    attempt's claim, like every other write of a running job."""
    from .models import CampaignRun

    job = getattr(ctx, "job", None)
    history: list[dict] = []
    if job is not None:
        CampaignRun.objects.get_or_create(job_id=job.pk, defaults={"campaign": campaign})

    def write(stats: dict) -> None:
        history.append(finite(stats))
        if job is not None:
            CampaignRun.objects.filter(job_id=job.pk, job__claim_token=ctx.token).update(history=history)

    return history, write


def _objectives(p: dict, campaign, ctx):
    from design.compute.generate import docking_objective, property_objective

    from . import model_properties as mp

    model_keys = [o["property"] for o in p["objectives"] if mp.is_model_key(o["property"])]
    loaded = {}
    if model_keys:
        ctx.progress(1, "Loading the registered models")
        with ctx.phase("loading models"):
            loaded = mp.load(model_keys, _owner(ctx), ctx.workdir)
    objectives, by_model = [], {}
    for o in p["objectives"]:
        parsed = mp.parse_key(o["property"])
        if parsed is None:
            objectives.append(property_objective(o["property"], o["direction"], o["weight"]))
            continue
        by_model[o["property"]] = mo = mp.ModelObjective(loaded[parsed[0]], parsed[1], o["property"])
        objectives.append(mo.objective(o["direction"], o["weight"]))
    docking = None
    if p["docking"]["enabled"]:
        from design.compute.docking import DockingScorer, available_cpus

        if campaign.site is None:
            raise JobInputError(f"Campaign “{campaign.name}” has no binding site to dock into.")
        ctx.progress(1, "Preparing the receptor (Meeko)")
        prep = _receptor(campaign.target)
        scorer = DockingScorer(prep, campaign.site.as_site(), exhaustiveness=p["docking"]["exhaustiveness"],
                               n_poses=1, cpu=available_cpus(), random_seed=p["random_seed"])
        objectives.append(docking_objective(scorer, p["docking"]["weight"]))
        docking = _receptor_summary(prep)
    return objectives, docking, by_model


def _filters(p: dict):
    from design.compute.generate import mw_window, no_alerts

    out = []
    f = p["filters"]
    if f["no_alerts"]:
        out.append(no_alerts(*f["no_alerts"]))
    if f["mw_min"] is not None or f["mw_max"] is not None:
        out.append(mw_window(f["mw_min"] if f["mw_min"] is not None else 0.0,
                             f["mw_max"] if f["mw_max"] is not None else 1e9))
    return out


def run_campaign(ctx: JobContext) -> dict:

    from design.compute.generate import non_dominated_sort, run_ga
    from design.compute.properties import METHODS, PROPERTIES, score_molecule

    from .kind import DEFAULT_SEEDS, numeric_properties
    from .models import Campaign

    p = ctx.params
    campaign = _visible(Campaign, p["campaign_id"], ctx, "campaign")
    objectives, docking, by_model = _objectives(p, campaign, ctx)
    history, on_generation = _history_writer(ctx, campaign)
    seeds = p["seeds"] or DEFAULT_SEEDS
    try:
        result = run_ga(
            seeds, objectives, population_size=p["population_size"], generations=p["generations"],
            random_seed=p["random_seed"], mode=p["mode"], filters=_filters(p), brics_seeds=p["brics_seeds"],
            max_evaluations=p["docking"]["max_dockings"] if docking is not None else None,
            progress=lambda pct, msg: ctx.progress(min(pct, 99.0), msg), on_generation=on_generation,
        )
    except ValueError as exc:
        raise JobInputError(str(exc)) from None
    # The front over every objective, in either mode, for the scatter's highlight.
    front = set(non_dominated_sort([c.utilities for c in result.population])[0])
    keys = list(numeric_properties())
    model_keys = [k for mo in by_model.values() for k in (mo.key, f"{mo.key}:std", f"{mo.key}:in_domain")]
    population = []
    for i, cand in enumerate(result.population):
        props = score_molecule(cand.smiles, keys)
        for key, mo in by_model.items():
            props[key] = cand.values.get(key)
            props.update(mo.extras.get(cand.smiles, {}))
        if "docking_score" in cand.values:
            props["docking_score"] = cand.values["docking_score"]
        population.append({**cand.as_dict(), "properties": props, "front": i in front})
    header = ["rank", "smiles", "score", "pareto_front", "generation", "origin"] + keys + model_keys + (
        ["docking_score"] if docking is not None else [])
    out.write_campaign(ctx, population, header, history)
    methods = {k: METHODS[k] for k in keys}
    labels = {k: PROPERTIES[k].label for k in keys}
    if by_model:
        from . import model_properties as mp

        _, domain_method = mp.domain()
        for key, mo in by_model.items():
            for column in mp.columns(mo.loaded.record, mo.target, key, domain_method):
                methods[column["key"]], labels[column["key"]] = column["method"], column["label"]
    if docking is not None:
        methods["docking_score"] = DOCKING_METHOD.format(**_versions()) + (
            f", exhaustiveness {p['docking']['exhaustiveness']}")
    return finite({
        "campaign": {"id": campaign.pk, "name": campaign.name},
        "history": history,
        "population": population,
        "evaluated": result.evaluated,
        "filtered": result.filtered,
        "generations_run": result.generations_run,
        "budget": _budget_note(p, result) if docking is not None else None,
        "seconds": round(result.seconds, 2),
        "seeds_used": list(seeds),
        "default_seeds": not p["seeds"],
        "objectives": [{**o, "method": methods[o["property"]], "label": labels[o["property"]],
                        **({"domain_key": f"{o['property']}:in_domain",
                            "domain_method": methods[f"{o['property']}:in_domain"]} if o["property"] in by_model else {})}
                       for o in p["objectives"]] + (
            [{"property": "docking_score", "direction": "min", "weight": p["docking"]["weight"],
              "method": methods["docking_score"], "label": "Vina score"}] if docking else []),
        "mode": p["mode"],
        "scatter": p["scatter"],
        "receptor": docking,
        "methods": methods,
        "labels": {**labels, **({"docking_score": "Vina score"} if docking else {})},
        "ga_method": ("Graph-based genetic algorithm (RDKit molecular graphs: atom/bond/ring mutations, "
                      "crossover at acyclic single bonds)" + (", starting population extended by BRICS "
                      "recombination of the seeds (Degen 2008, RDKit BRICS)" if p["brics_seeds"] else "")
                      + (", ranked by weighted sum of objective utilities" if p["mode"] == "weighted"
                         else ", ranked by non-dominated front and crowding distance (NSGA-II, Deb 2002)")),
    })


def _budget_note(p: dict, result) -> dict | None:
    """What the docking cap did to the run, in words for the run page."""
    gen = result.budget_exhausted_in
    if gen is None:
        return None
    cap, planned = p["docking"]["max_dockings"], p["generations"]
    skipped = planned - gen
    text = (f"The docking cap of {cap} molecules was reached during generation {gen} of {planned}: "
            f"{result.evaluated} molecules were docked and scored")
    if gen == 0:
        text += " (not every starting molecule)"
    if skipped > 0:
        text += f"; generation{'s' if skipped > 1 else ''} {gen + 1}" + (
            f"–{planned}" if skipped > 1 else "") + " did not run"
    return {"cap": cap, "generation": gen, "planned_generations": planned, "text": text + "."}
