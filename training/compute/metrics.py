"""Test metrics, per target and their mean over targets.

Labels are a float matrix with NaN where a row has no label (Tox21), so every
metric sees only the labelled rows of its target. A metric that cannot be
computed on the rows it is given (one class only in the test set, a constant
target, too few rows) is None, and `reasons` says why: a report shows the gap
instead of a made-up number, and nothing crashes on a small test set.
"""

from __future__ import annotations

import math

import numpy as np

from .table import CLASSIFICATION, REGRESSION

REGRESSION_METRICS = ("rmse", "mae", "r2", "spearman")
CLASSIFICATION_METRICS = ("roc_auc", "pr_auc", "accuracy", "mcc")
# The early-stopping / model-selection metric of each task, and the one a model's name quotes.
PRIMARY = {REGRESSION: "rmse", CLASSIFICATION: "roc_auc"}
# How each metric is named next to its number (every number shown names its method).
LABELS = {
    "rmse": "RMSE", "mae": "MAE", "r2": "R²", "spearman": "Spearman ρ",
    "roc_auc": "ROC-AUC", "pr_auc": "PR-AUC (average precision)", "accuracy": "accuracy (threshold 0.5)",
    "mcc": "MCC (threshold 0.5)",
}
_HIGHER = {"r2", "spearman", "roc_auc", "pr_auc", "accuracy", "mcc"}
_LOWER = {"rmse", "mae", "loss"}   # "loss": a torch family early-stopping on its validation loss
# A predicted probability at or above this is class 1 for accuracy and MCC.
THRESHOLD = 0.5


def higher_is_better(metric: str) -> bool:
    if metric in _HIGHER:
        return True
    if metric in _LOWER:
        return False
    raise KeyError(f"unknown metric {metric!r}")


def _labelled(y, pred) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64).ravel()
    pred = np.asarray(pred, dtype=np.float64).ravel()
    if y.shape != pred.shape:
        raise ValueError(f"{y.size} labels but {pred.size} predictions")
    keep = ~np.isnan(y)
    if np.isnan(pred[keep]).any():
        raise ValueError("a labelled row has no prediction (NaN)")
    return y[keep], pred[keep]


def _result(values: dict, reasons: dict, n: int) -> dict:
    out = {name: (None if value is None else float(value)) for name, value in values.items()}
    out["n"] = n
    if reasons:
        out["reasons"] = reasons
    return out


def regression_metrics(y, pred) -> dict:
    """rmse, mae, r2, spearman over the labelled rows, plus n (and reasons for any None)."""
    from scipy.stats import spearmanr
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y, pred = _labelled(y, pred)
    values = dict.fromkeys(REGRESSION_METRICS)
    reasons = {}
    if y.size == 0:
        return _result(values, dict.fromkeys(REGRESSION_METRICS, "no labelled rows"), 0)
    values["rmse"] = math.sqrt(mean_squared_error(y, pred))
    values["mae"] = mean_absolute_error(y, pred)
    if y.size < 2 or np.ptp(y) == 0:
        reasons["r2"] = reasons["spearman"] = f"the {y.size} labelled values are all equal"
    else:
        values["r2"] = r2_score(y, pred)
        if np.ptp(pred) == 0:
            reasons["spearman"] = "the predictions are all equal"
        else:
            values["spearman"] = spearmanr(y, pred).statistic
    return _result(values, reasons, int(y.size))


def classification_metrics(y, prob) -> dict:
    """roc_auc, pr_auc, accuracy, mcc over the labelled rows (labels 0/1, prob = P(class 1))."""
    from sklearn.metrics import accuracy_score, average_precision_score, matthews_corrcoef, roc_auc_score

    y, prob = _labelled(y, prob)
    values = dict.fromkeys(CLASSIFICATION_METRICS)
    if y.size == 0:
        return _result(values, dict.fromkeys(CLASSIFICATION_METRICS, "no labelled rows"), 0)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("classification labels must be 0 or 1")
    labels = y.astype(int)
    called = (prob >= THRESHOLD).astype(int)
    values["accuracy"] = accuracy_score(labels, called)
    reasons = {}
    if len(set(labels.tolist())) < 2:
        # ROC-AUC and PR-AUC are undefined, and MCC is 0 whatever the model does.
        only = f"only class {labels[0]} among the {labels.size} labelled rows"
        reasons["roc_auc"] = reasons["pr_auc"] = reasons["mcc"] = only
    else:
        values["mcc"] = matthews_corrcoef(labels, called)
        values["roc_auc"] = roc_auc_score(labels, prob)
        values["pr_auc"] = average_precision_score(labels, prob)
    return _result(values, reasons, int(labels.size))


def score(table_y, pred, tasks, targets) -> dict:
    """{"per_target": {name: metrics}, "mean": {metric: mean over the targets where it exists}}.

    The mean of a metric averages the targets that have it (a Tox21 assay with one
    class in the test set drops out of the ROC-AUC mean); `mean["n_targets"]` says
    how many targets each mean covers."""
    table_y = np.asarray(table_y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if table_y.ndim == 1:
        table_y, pred = table_y[:, None], pred.reshape(-1, 1)
    if table_y.shape != pred.shape or table_y.shape[1] != len(targets) or len(tasks) != len(targets):
        raise ValueError(f"labels {table_y.shape}, predictions {pred.shape}, {len(targets)} targets")
    per_target = {}
    for t, (name, task) in enumerate(zip(targets, tasks)):
        if task == REGRESSION:
            per_target[name] = regression_metrics(table_y[:, t], pred[:, t])
        elif task == CLASSIFICATION:
            per_target[name] = classification_metrics(table_y[:, t], pred[:, t])
        else:
            raise ValueError(f"unknown task {task!r} for {name}")
    mean: dict = {}
    counts: dict = {}
    for metric in REGRESSION_METRICS + CLASSIFICATION_METRICS:
        values = [m[metric] for m in per_target.values() if m.get(metric) is not None]
        if values:
            mean[metric] = float(np.mean(values))
            counts[metric] = len(values)
    mean["n_targets"] = counts
    return {"per_target": per_target, "mean": mean}
