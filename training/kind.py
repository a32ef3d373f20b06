"""Checking what is submitted for a training run (web form, API, rerun alike).

A run stores the id of its dataset, not a copy: `check_access` (run first on
every submission) answers a dataset the user may not see as a missing one,
and `clean_train_params` checks everything else against the dataset and the
family's own hyperparameter schema. The family modules import torch only
inside their methods, so asking the registry for a schema is cheap here.
"""

from __future__ import annotations

import math

from django.conf import settings

from accounts.scoping import require_visible_ids
from workers.errors import ParamsError
from workers.kinds import Cleaned, JobKind

from .compute.families import FAMILY_NAMES, get_family
from .compute.splits import KFOLD_METHODS, SPLIT_METHODS
from .models import Dataset
from .runs import run_of

MAX_ENSEMBLE = 10
MAX_FOLDS = 10


def check_access(params: dict, user) -> None:
    require_visible_ids(user, [("dataset_id", Dataset, "dataset", params.get("dataset_id"))])


def _int(value, key: str, lo: int, hi: int, what: str) -> int:
    if isinstance(value, bool):
        raise ParamsError(key, f"{what} must be a whole number.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParamsError(key, f"{what} must be a whole number.") from None
    if not math.isfinite(number) or number != int(number):
        raise ParamsError(key, f"{what} must be a whole number.")
    if not lo <= int(number) <= hi:
        raise ParamsError(key, f"{what} must be from {lo} to {hi}, not {int(number)}.")
    return int(number)


def _dataset(params: dict) -> Dataset:
    value = params.get("dataset_id")
    try:
        pk = int(value)
    except (TypeError, ValueError):
        raise ParamsError("dataset_id", "Choose a dataset (its id).") from None
    dataset = Dataset.objects.filter(pk=pk).first()
    if dataset is None:
        raise ParamsError("dataset_id", f"No dataset with id {pk}.")
    return dataset


def _targets(value, dataset: Dataset) -> list[str]:
    known = [t["name"] for t in dataset.targets]
    if value in (None, "", []):
        return known
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ParamsError("targets", "Give the target columns as a list of names.")
    unknown = [v for v in value if v not in known]
    if unknown:
        raise ParamsError("targets", f"“{unknown[0]}” is not a target of {dataset}; its targets are "
                                     f"{', '.join(known)}.")
    # The dataset's order, so the same choice is always the same run.
    return [name for name in known if name in value]


def _hparams(value, family) -> dict:
    if value in (None, ""):
        value = {}
    if not isinstance(value, dict):
        raise ParamsError("hparams", "Give the hyperparameters as an object of name: value.")
    names = [h.name for h in family.hyperparameters]
    for name in value:
        if name not in names:
            raise ParamsError(f"hparams.{name}", f"{family.label} has no hyperparameter “{name}”; "
                                                 f"it has {', '.join(names)}.")
    try:
        return family.check_hparams(value)
    except ValueError as exc:
        name = next((n for n in value if str(exc).startswith(f"{n} ")), None)
        raise ParamsError(f"hparams.{name}" if name else "hparams", str(exc)) from None


def _sizes(value, uses_epochs: bool) -> list[float]:
    from .compute.splits import DEFAULT_SIZES, check_sizes

    if value in (None, "", []):
        value = list(DEFAULT_SIZES)
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
    try:
        sizes = [round(s, 6) for s in check_sizes(value)]
    except ValueError as exc:
        raise ParamsError("split.sizes", str(exc)) from None
    if uses_epochs and sizes[1] == 0:
        # Early stopping and the best epoch are chosen on the validation set.
        raise ParamsError("split.sizes", "This family needs a validation set: give it a size above 0.")
    return sizes


def _split(value, dataset: Dataset, targets: list[str], family) -> dict:

    if value in (None, ""):
        value = {}
    if not isinstance(value, dict):
        raise ParamsError("split", "Give the split as an object: method, sizes, seed, column.")
    method = value.get("method") or "random"
    if method not in SPLIT_METHODS:
        raise ParamsError("split.method", f"Unknown split “{method}”; choose one of {', '.join(SPLIT_METHODS)}.")
    column = value.get("column") or None
    if method == "column":
        columns = list(dataset.columns or [])
        if column not in columns:
            raise ParamsError("split.column", (f"“{column}” is not a column kept with {dataset}; " if column
                                               else "Name the column that assigns the sets; ")
                              + (f"kept columns: {', '.join(columns)}." if columns else
                                 "this dataset kept no other column."))
    elif column is not None:
        raise ParamsError("split.column", "A column is given only for the split by column.")
    if method == "stratified":
        tasks = {t["name"]: t["task"] for t in dataset.targets}
        if tasks[targets[0]] != "classification":
            raise ParamsError("split.method", "A stratified split needs a classification target first; "
                                              f"“{targets[0]}” is a regression target.")
    return {"method": method, "sizes": _sizes(value.get("sizes"), family.uses_epochs),
            "seed": _int(value.get("seed", 0), "split.seed", 0, 2**31 - 1, "The split seed"),
            "column": column}


def clean_train_params(params: dict) -> Cleaned:
    dataset = _dataset(params)
    targets = _targets(params.get("targets"), dataset)
    name = params.get("family") or "fingerprint_rf"
    if name not in FAMILY_NAMES:
        raise ParamsError("family", f"Unknown model family “{name}”; choose one of {', '.join(FAMILY_NAMES)}.")
    family = get_family(name)
    tasks = {t["name"]: t["task"] for t in dataset.targets}
    unsupported = [t for t in targets if tasks[t] not in family.tasks]
    if unsupported:
        raise ParamsError("family", f"{family.label} cannot learn the {tasks[unsupported[0]]} target "
                                    f"“{unsupported[0]}”.")
    split = _split(params.get("split"), dataset, targets, family)
    folds = _int(params.get("folds", 0) or 0, "folds", 0, MAX_FOLDS, "The number of folds")
    if folds in (1, 2):
        # One fold tests, the next validates, the others train.
        raise ParamsError("folds", "Cross-validation needs at least 3 folds (0: one split, no cross-validation).")
    if folds and split["method"] not in KFOLD_METHODS:
        raise ParamsError("split.method", f"Cross-validation folds are {' or '.join(KFOLD_METHODS)}.")
    clean = {
        "dataset_id": dataset.pk,
        "targets": targets,
        "family": name,
        "hparams": _hparams(params.get("hparams"), family),
        "split": split,
        "folds": folds,
        "ensemble": _int(params.get("ensemble", 1), "ensemble", 1, MAX_ENSEMBLE, "The ensemble size"),
        "seed": _int(params.get("seed", 0), "seed", 0, 2**31 - 1, "The seed"),
    }
    facts = {"dataset": {"name": dataset.name, "version": dataset.version, "hash": dataset.content_hash,
                         "n_rows": dataset.n_rows},
             "family_label": family.label}
    return Cleaned(clean, facts)


def summarize(params: dict, facts: dict) -> str:
    dataset = facts.get("dataset") or {}
    members = f" ×{params['ensemble']}" if params.get("ensemble", 1) > 1 else ""
    split = params.get("split", {}).get("method", "")
    folds = f", {params['folds']}-fold" if params.get("folds") else ""
    return (f"{facts.get('family_label', params.get('family'))}{members} on {dataset.get('name', 'dataset')} "
            f"v{dataset.get('version', '?')}, {split} split{folds}")


KIND = JobKind(
    name="training.train",
    label="Train a property model",
    # A GPU when one serves the queue; a CPU worker of the gpu queue trains
    # on its CPU and says so (the runner calls ctx.set_hardware).
    queue="gpu",
    runner="training.jobs:run_training",
    clean_params=clean_train_params,
    check_access=check_access,
    on_submit=run_of,
    result_template="training/train/result.html",
    soft_time_limit=settings.BIOFM_TRAIN_SOFT_TIME_LIMIT,
    time_limit=settings.BIOFM_TRAIN_TIME_LIMIT,
    description="Train a molecular property model (random forest on fingerprints, Chemprop's D-MPNN or "
                "AttentiveFP; ensembles) on a dataset, with live loss curves, test metrics and a "
                "downloadable model.",
    submit_url_name="training:run_new",
    summarize_params=summarize,
)
