"""Checking a training.predict submission (web form, API, rerun).

The molecules are checked as design's property prediction checks them (size,
format, the CSV's SMILES column, a count of records, no RDKit in the web
process); RDKit reads them in the worker, which reports each bad row with
its reason and predicts the others. The model is a registered ModelVersion the
submitter may see: `check_access` answers another user's model as a missing one.
"""

from __future__ import annotations

from accounts.scoping import require_visible_ids
from workers.errors import ParamsError
from workers.kinds import Cleaned, JobKind

from ..models import ModelVersion

# What the molecules may be given as; the rest of the submission is the model.
MOLECULE_KEYS = ("molecules", "smiles", "format", "smiles_column", "filename")


def _model(params: dict) -> ModelVersion:
    value = params.get("model_id")
    if isinstance(value, bool):
        raise ParamsError("model_id", "Give the model id.")
    try:
        pk = int(value)
    except (TypeError, ValueError):
        raise ParamsError("model_id", "Give the model id.") from None
    model = ModelVersion.objects.filter(pk=pk).first()
    if model is None:
        raise ParamsError("model_id", f"No model with id {pk}.")
    return model


def check_access(params: dict, user) -> None:
    require_visible_ids(user, [("model_id", ModelVersion, "model", params.get("model_id"))])


def clean_predict_params(params: dict) -> Cleaned:
    from design.kind import clean_properties_params

    from ..compute.scoring import as_comma_csv

    model = _model(params)
    given = {k: params[k] for k in MOLECULE_KEYS if params.get(k) is not None}
    named_csv = str(given.get("filename") or "").lower().endswith((".csv", ".tsv"))
    if isinstance(given.get("molecules"), str) and (given.get("format") == "csv" or
                                                     (not given.get("format") and named_csv)):
        # A spreadsheet's semicolon CSV is read as the datasets read it.
        given["molecules"] = as_comma_csv(given["molecules"])
    molecules = clean_properties_params(given)
    return Cleaned(params={"model_id": model.pk, **molecules.params},
                   facts={**molecules.facts, "model": model.display_name})


def summarize(params: dict, facts: dict) -> str:
    n = facts.get("n_molecules", 0)
    return f"{n} molecule{'s' if n != 1 else ''} with {facts.get('model', 'a model')}"


KIND = JobKind(
    name="training.predict",
    label="Predict with a trained model",
    queue="cpu",
    runner="training.predict.jobs:run_predict",
    clean_params=clean_predict_params,
    check_access=check_access,
    result_template="training/predict/result.html",
    soft_time_limit=3600, time_limit=3900,
    description="Predictions of a registered model for a CSV, SDF or SMILES list, with the ensemble's "
                "uncertainty, the conformal interval and the applicability domain.",
    submit_url_name="training:predict_new",
    summarize_params=summarize,
)
