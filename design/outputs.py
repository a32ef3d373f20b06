"""The result files of the design kinds: CSV through the one CSV writer
(biofm_site.csvfile, which neutralises formulas in user-supplied names) and
SDF through RDKit."""

from __future__ import annotations

import io

from biofm_site.csvfile import csv_text


def display_value(value):
    """Lists of alerts become readable strings; numbers and bools stay."""
    if isinstance(value, list):
        return [f"{v['catalog']}: {v['description']}" if isinstance(v, dict) else str(v) for v in value]
    return value


def _cell(value) -> str:
    value = display_value(value)
    if isinstance(value, list):
        return "; ".join(value)
    return "" if value is None else str(value)


def _sdf(mols) -> str:
    from rdkit import Chem

    text = io.StringIO()
    writer = Chem.SDWriter(text)
    for mol in mols:
        writer.write(mol)
    writer.close()
    return text.getvalue()


def write_properties(ctx, records, rows: list[dict], keys: list[str]) -> None:
    """properties.csv (every row, errors included), properties.sdf (the
    scored molecules with their values as tags), invalid_rows.csv."""
    from rdkit import Chem

    ctx.add_file("properties.csv", csv_text(
        ["row", "name", "input", "smiles", "error"] + keys,
        [[r["row"], r["name"], r["input"], r["smiles"] or "", r["error"] or ""]
         + [_cell((r["properties"] or {}).get(k)) for k in keys] for r in rows]), "text/csv")

    def scored():
        for rec, row in zip(records, rows):
            if rec.mol is None or row["properties"] is None:
                continue
            mol = Chem.Mol(rec.mol)
            mol.SetProp("_Name", rec.name or f"row {rec.row}")
            mol.SetProp("row", str(rec.row))
            mol.SetProp("smiles", row["smiles"])
            for key in keys:
                mol.SetProp(key, _cell(row["properties"].get(key)))
            yield mol

    ctx.add_file("properties.sdf", _sdf(scored()), "chemical/x-mdl-sdfile")
    errors = [[r["row"], r["name"], r["input"], r["error"]] for r in rows if r["error"]]
    if errors:
        ctx.add_file("invalid_rows.csv", csv_text(["row", "name", "input", "error"], errors), "text/csv")


def write_docking(ctx, rows: list[dict], invalid: list[dict], has_rmsd: bool) -> None:
    """poses.sdf (every pose of every ligand) and docking.csv (one row per
    ligand, the invalid ones with their reason)."""
    ctx.add_file("poses.sdf", "".join(r["poses_sdf"] or "" for r in rows), "chemical/x-mdl-sdfile")
    ctx.add_file("docking.csv", csv_text(
        ["row", "name", "smiles", "best_score_kcal_mol", "pose_scores_kcal_mol"]
        + (["pose_rmsd_to_reference_angstrom"] if has_rmsd else []) + ["error"],
        [[r["row"], r["name"], r["smiles"], r["best_score"] if r["best_score"] is not None else "",
          " ".join(f"{s:.2f}" for s in r.get("scores") or [])]
         + ([" ".join(f"{x:.2f}" for x in r.get("rmsd") or [])] if has_rmsd else []) + [r["error"] or ""]
         for r in rows]
        + [[e["row"], e["name"], e["input"], "", ""] + ([""] if has_rmsd else []) + [e["error"]]
           for e in invalid]), "text/csv")


def write_campaign(ctx, population: list[dict], header: list[str], history: list[dict]) -> None:
    """population.csv and .sdf (the final population, ranked), history.csv
    (one row per generation)."""
    from rdkit import Chem

    ctx.add_file("population.csv", csv_text(header, [
        [i + 1, m["smiles"], m["score"], m["front"], m["generation"], m["origin"]]
        + [m["properties"].get(k) for k in header[6:]] for i, m in enumerate(population)]), "text/csv")

    def ranked():
        for i, m in enumerate(population):
            mol = Chem.MolFromSmiles(m["smiles"])
            mol.SetProp("_Name", f"rank {i + 1}")
            for key, value in [("smiles", m["smiles"]), ("score", m["score"]), ("pareto_front", m["front"])] + list(
                    m["properties"].items()):
                mol.SetProp(key, str(value))
            yield mol

    ctx.add_file("population.sdf", _sdf(ranked()), "chemical/x-mdl-sdfile")
    ctx.add_file("history.csv", csv_text(
        ["generation", "best_score", "median_score", "evaluated", "front_size", "best_smiles"],
        [[h["generation"], h["best_score"], h["median_score"], h["evaluated"], h["front_size"],
          h["best_smiles"]] for h in history]), "text/csv")
