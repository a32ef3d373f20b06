"""The worker side of training.predict: load the registered model's bundle,
score the molecules with training.compute.scoring (as the `predict` command
does), and report every number with the model that made it."""

from __future__ import annotations

import math

from accounts.scoping import find_visible
from workers.context import JobContext
from workers.errors import JobInputError

from ..models import ModelVersion
from . import outputs as out

# The job page shows at most this many rows; predictions.csv has them all.
MAX_TABLE_ROWS = 500


def _finite(value):
    # JSON (and PostgreSQL jsonb) has no NaN or infinity.
    return value if not isinstance(value, float) or math.isfinite(value) else None


def training_data(card: dict) -> str:
    """The model's training data in one line: the dataset version a portal run
    used (registration records it as "dataset"; the run's bundle as "data"), or
    the file the train_model command read."""
    data = card.get("dataset") or card.get("data") or {}
    if not data.get("name"):
        return "not recorded"
    text = data["name"] + (f" v{data['version']}" if data.get("version") else "")
    digest = data.get("content_hash") or data.get("hash")
    return f"{text} (sha256 {digest[:12]})" if digest else text


def load_registered(model_row: ModelVersion, workdir):
    from training.compute.bundle import load_model, unpack

    with model_row.bundle.open("rb") as fh:
        data = fh.read()
    try:
        return load_model(unpack(data, workdir / "model"))
    except ValueError as exc:
        raise JobInputError(f"The model's bundle cannot be read: {exc}") from None


def run_predict(ctx: JobContext) -> dict:
    from training.compute.scoring import score

    from design.kind import molecule_limits

    p = ctx.params
    owner = getattr(getattr(ctx, "job", None), "owner", None)
    # Checked again at run time: the owner may have lost access since submitting.
    model_row = (ModelVersion.objects.filter(pk=p["model_id"]).first() if owner is None
                 else find_visible(ModelVersion, owner, p["model_id"]))
    if model_row is None:
        raise JobInputError(f"The model (id {p['model_id']}) does not exist or is not yours to use.")
    with ctx.phase("loading the model"):
        ctx.progress(0, f"Loading {model_row.display_name}")
        model = load_registered(model_row, ctx.workdir)
    with ctx.phase("predicting"):
        try:
            scored = score(model, p["molecules"], p["format"], p.get("smiles_column"),
                           limits=molecule_limits("properties"),
                           progress=lambda done, total: ctx.progress(
                               5 + 90 * done / max(total, 1), f"Predicted {done} of {total} molecules"))
        except ValueError as exc:
            raise JobInputError(str(exc)) from None
    if not scored.n_predicted:
        first = "; ".join(r.error for r in scored.rows[:3] if r.error)
        raise JobInputError(f"No valid molecule. {first}".strip())
    out.write_predictions(ctx, scored)
    ctx.progress(100, f"Predicted {scored.n_predicted} molecules, {scored.n_errors} invalid rows")
    return result_summary(model_row, model, scored)


def result_summary(model_row: ModelVersion, model, scored) -> dict:
    # The registry's card completes the bundle's (the dataset version, the run).
    card = {**(model.card or {}), **(model_row.card or {})}
    predicted = [r for r in scored.rows if r.error is None]
    targets = [{"name": t, "task": task, "interval": _finite(scored.interval_width(i))}
               for i, (t, task) in enumerate(zip(scored.targets, scored.tasks))]
    # One cell per target, so the page needs no index arithmetic.
    rows = [{"row": r.row, "name": r.name, "smiles": r.smiles,
             "predictions": [{"value": _finite(v), "std": _finite(r.std[i]) if r.std is not None else None,
                              "interval": targets[i]["interval"]} for i, v in enumerate(r.values)],
             "max_similarity": _finite(r.max_similarity), "in_domain": r.in_domain}
            for r in predicted[:MAX_TABLE_ROWS]]
    errors = [{"row": r.row, "name": r.name, "input": r.input if len(r.input) <= 200 else r.input[:199] + "…",
               "error": r.error} for r in scored.rows if r.error is not None][:MAX_TABLE_ROWS]
    return {
        "model": {"id": model_row.pk, "display_name": model_row.display_name, "describe": model.describe(),
                  "method": card.get("method") or card.get("label") or model.family,
                  "training_data": training_data(card), "cancelled": bool(card.get("cancelled"))},
        "targets": targets, "has_std": scored.has_std,
        "uncertainty": card.get("uncertainty") if scored.has_std else None,
        "interval_method": scored.interval_method, "domain_method": scored.domain_method,
        "threshold": scored.threshold,
        "n_molecules": len(scored.rows), "n_predicted": scored.n_predicted, "n_errors": scored.n_errors,
        "n_out_of_domain": sum(1 for r in predicted if not r.in_domain),
        "rows": rows, "truncated": len(predicted) > MAX_TABLE_ROWS, "errors": errors,
    }
