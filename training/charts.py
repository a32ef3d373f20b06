"""What the run pages draw, as Plotly figures built here (plain dicts, JSON for
`json_script`), so a test reads the same numbers the browser plots: the loss
and validation-metric curves per ensemble member, the time left, the parity
plot, the ROC curve, the forest's feature importances and the comparison of
several runs. No Django: the views pass in what they read from the records."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from .compute.metrics import CLASSIFICATION_METRICS, LABELS, PRIMARY, REGRESSION_METRICS

# The metric labels name their method ("accuracy (threshold 0.5)"); the validation loss is a torch family's.
METRIC_LABELS = {**LABELS, "loss": "loss"}

# One colour per ensemble member (or per run on the comparison chart).
PALETTE = ("#2456c7", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#c2255c", "#5c940d",
           "#364fc7", "#a61e4d")
# Plotly 3 reads an axis title only as {text: ...}.
_MARGIN = {"t": 30, "r": 20}

# A family whose epochs we cannot see yet is assumed to run this many at most.
DEFAULT_MAX_EPOCHS = 50
# Parity and ROC plots show at most this many points per target (a spread sample beyond).
MAX_POINTS = 5000


def metric_label(name: str) -> str:
    return METRIC_LABELS.get(name, name)


def primary_metric(tasks: list[str]) -> str:
    """The metric a run is judged on: the primary one of its targets' task (all
    regression: RMSE; all classification: ROC-AUC); targets of both tasks have no
    common metric, so the torch families stop on the validation loss."""
    kinds = set(tasks) or {"regression"}
    if len(kinds) > 1:
        return "loss"
    return PRIMARY[kinds.pop()]


def test_metric(tasks: list[str]) -> str:
    """The test metric a run is listed by, as its model's name quotes it: the first target's primary metric."""
    return PRIMARY[tasks[0]] if tasks else PRIMARY["regression"]


def validation_metric(epochs: list[dict], result: dict, tasks: list[str]) -> str:
    """The early-stopping metric the curves show: as the run recorded it (an
    epoch's "metric", the card's "val_metric" key), else as the family chooses
    it from the tasks."""
    result = result or {}
    recorded = [e.get("metric") for e in epochs[:1]] + [(result.get("card") or {}).get("val_metric"),
                                                        result.get("val_metric_name")]
    for candidate in recorded:
        if candidate in METRIC_LABELS:
            return candidate
    return primary_metric(tasks)


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _by_model(epochs: list[dict]) -> list[tuple[int, str, list[dict]]]:
    """The epochs per trained model, in training order: (index, name, entries).
    A model is an ensemble member, or with k-fold cross-validation a member of one fold."""
    models: dict[tuple[int, int], list[dict]] = {}
    for entry in epochs:
        models.setdefault((int(entry.get("fold") or 0), int(entry.get("member", 0))), []).append(entry)
    folded = any("fold" in e for e in epochs)
    out = []
    for i, ((fold, member), entries) in enumerate(sorted(models.items())):
        entries.sort(key=lambda e: e.get("epoch", 0))
        out.append((i, f"fold {fold + 1} member {member + 1}" if folded else f"member {member + 1}", entries))
    return out


def _series(entries: list[dict], key: str) -> tuple[list, list]:
    points = [(e["epoch"], e.get(key)) for e in entries if _finite(e.get(key))]
    return [p[0] for p in points], [p[1] for p in points]


def _finite(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def loss_figure(epochs: list[dict], loss_label: str) -> dict:
    """Training loss (solid) and validation loss (dashed) per epoch, one colour per member."""
    data = []
    for i, name, entries in _by_model(epochs):
        for key, dash, what in (("train_loss", "solid", "train"), ("val_loss", "dash", "validation")):
            x, y = _series(entries, key)
            if x:
                data.append({"x": x, "y": y, "name": f"{name} {what} loss", "mode": "lines+markers",
                             "type": "scatter", "line": {"color": _colour(i), "dash": dash},
                             "legendgroup": f"m{i}"})
    return {"data": data, "layout": {"xaxis": {"title": {"text": "Epoch"}, "rangemode": "tozero"},
                                     "yaxis": {"title": {"text": loss_label}}, "margin": _MARGIN}}


def metric_figure(epochs: list[dict], metric: str) -> dict:
    """The validation metric per epoch, one trace per member, its best epoch starred."""
    data = []
    for i, name, entries in _by_model(epochs):
        x, y = _series(entries, "val_metric")
        if not x:
            continue
        data.append({"x": x, "y": y, "name": name, "mode": "lines+markers", "type": "scatter",
                     "line": {"color": _colour(i)}, "legendgroup": f"m{i}"})
        best = entries[-1].get("best_epoch")
        at = [(e, v) for e, v in zip(x, y) if e == best]
        if at:
            data.append({"x": [at[0][0]], "y": [at[0][1]], "name": f"{name} best epoch",
                         "mode": "markers", "type": "scatter", "showlegend": False, "legendgroup": f"m{i}",
                         "marker": {"symbol": "star", "size": 14, "color": _colour(i)}})
    return {"data": data, "layout": {"xaxis": {"title": {"text": "Epoch"}, "rangemode": "tozero"},
                                     "yaxis": {"title": {"text": f"Validation {metric_label(metric)}"}},
                                     "margin": _MARGIN}}


def compare_figure(runs: list[tuple[str, list[dict]]], metric: str) -> dict:
    """Several runs' validation metric on one chart: a colour per run, a dash style per member."""
    dashes = ("solid", "dot", "dash", "dashdot", "longdash")
    data = []
    for i, (label, epochs) in enumerate(runs):
        for j, name, entries in _by_model(epochs):
            x, y = _series(entries, "val_metric")
            if x:
                data.append({"x": x, "y": y, "name": f"{label} · {name}", "mode": "lines+markers",
                             "type": "scatter", "legendgroup": f"r{i}",
                             "line": {"color": _colour(i), "dash": dashes[j % len(dashes)]}})
    return {"data": data, "layout": {"xaxis": {"title": {"text": "Epoch"}, "rangemode": "tozero"},
                                     "yaxis": {"title": {"text": f"Validation {metric_label(metric)}"}},
                                     "margin": _MARGIN}}


@dataclass
class Progress:
    """Where a run stands, from its epochs so far."""

    model: str | None           # the model training now (or last trained): "member 2", "fold 3 member 1"
    epoch: int | None           # its latest epoch
    epochs_done: int            # over all models
    mean_epoch_seconds: float | None
    epochs_left_at_most: int | None
    seconds_left_at_most: float | None

    @property
    def time_left(self) -> str:
        """The estimate said as what it is: an upper bound, since early stopping may end sooner."""
        if self.seconds_left_at_most is None:
            return ""
        return (f"at most {_duration(self.seconds_left_at_most)} left (mean epoch "
                f"{self.mean_epoch_seconds:.1f} s × {self.epochs_left_at_most} epochs left at most; "
                "early stopping may end it sooner)")


def progress(epochs: list[dict], ensemble: int, max_epochs: int, running: bool, folds: int = 0) -> Progress:
    """The models (the ensemble's members, for each fold with cross-validation)
    train one after the other, each for at most `max_epochs`: the time left is
    bounded by the mean epoch time × the epochs that could still come."""
    trained = _by_model(epochs)
    if not trained:
        return Progress(None, None, 0, None, None, None)
    _, name, entries = trained[-1]
    last = entries[-1]
    seconds = [e["seconds"] for e in epochs if _finite(e.get("seconds"))]
    mean = sum(seconds) / len(seconds) if seconds else None
    left = None
    if running:
        # Models train in order (fold by fold, member by member): those before the latest are done.
        position = int(last.get("fold") or 0) * ensemble + int(last.get("member", 0))
        left = max(0, max_epochs - last["epoch"]) + max(0, ensemble * max(folds, 1) - position - 1) * max_epochs
    return Progress(model=name, epoch=last["epoch"], epochs_done=len(epochs), mean_epoch_seconds=mean,
                    epochs_left_at_most=left,
                    seconds_left_at_most=mean * left if (mean is not None and left is not None) else None)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes / 60:.1f} h"


def _thin(pairs: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(pairs) <= MAX_POINTS:
        return pairs
    step = len(pairs) / MAX_POINTS
    return [pairs[int(i * step)] for i in range(MAX_POINTS)]


def parity_figure(target: str, y: list, pred: list, caption: str) -> dict:
    """Measured against predicted on the test set, with the y = x line."""
    pairs = _thin([(a, b) for a, b in zip(y, pred) if _finite(a) and _finite(b)])
    if not pairs:
        return {"data": [], "layout": {}}
    low = min(min(p) for p in pairs)
    high = max(max(p) for p in pairs)
    return {"data": [
        {"x": [p[0] for p in pairs], "y": [p[1] for p in pairs], "mode": "markers", "type": "scatter",
         "name": "test molecules", "marker": {"color": PALETTE[0], "size": 6, "opacity": 0.7}},
        {"x": [low, high], "y": [low, high], "mode": "lines", "type": "scatter", "name": "y = x",
         "line": {"color": "#9aa5b1", "dash": "dash"}},
    ], "layout": {"title": {"text": caption}, "xaxis": {"title": {"text": f"measured {target}"}},
                  "yaxis": {"title": {"text": f"predicted {target}"}}, "margin": {"t": 40, "r": 20}}}


def roc_points(y: list, prob: list) -> tuple[list[float], list[float]]:
    """(false positive rates, true positive rates) at every distinct threshold,
    from (0, 0) to (1, 1); empty when the test set lacks one of the classes."""
    pairs = sorted(((p, int(a)) for a, p in zip(y, prob) if _finite(a) and _finite(p)), reverse=True)
    positives = sum(a for _, a in pairs)
    negatives = len(pairs) - positives
    if not positives or not negatives:
        return [], []
    fpr, tpr = [0.0], [0.0]
    tp = fp = 0
    for i, (p, a) in enumerate(pairs):
        tp += a
        fp += 1 - a
        # Tied scores move together: one point per distinct threshold.
        if i + 1 == len(pairs) or pairs[i + 1][0] != p:
            fpr.append(fp / negatives)
            tpr.append(tp / positives)
    return fpr, tpr


def roc_figure(target: str, y: list, prob: list, caption: str) -> dict:
    fpr, tpr = roc_points(y, prob)
    if not fpr:
        return {"data": [], "layout": {}}
    return {"data": [
        {"x": fpr, "y": tpr, "mode": "lines", "type": "scatter", "name": target, "line": {"color": PALETTE[0]}},
        {"x": [0, 1], "y": [0, 1], "mode": "lines", "type": "scatter", "name": "chance",
         "line": {"color": "#9aa5b1", "dash": "dash"}},
    ], "layout": {"title": {"text": caption}, "xaxis": {"title": {"text": "false positive rate"}, "range": [0, 1]},
                  "yaxis": {"title": {"text": "true positive rate"}, "range": [0, 1.02]},
                  "margin": {"t": 40, "r": 20}}}


def importances_figure(importances: list[dict], top: int = 20) -> dict:
    """The forest's most important features, largest at the top."""
    rows = [r for r in importances if _finite(r.get("importance"))][:top][::-1]
    return {"data": [{"x": [r["importance"] for r in rows], "y": [r["feature"] for r in rows],
                      "type": "bar", "orientation": "h", "marker": {"color": PALETTE[0]},
                      "name": "impurity importance"}],
            "layout": {"xaxis": {"title": {"text": "mean decrease in impurity (scikit-learn feature_importances_)"}},
                       "yaxis": {"automargin": True}, "margin": {"t": 20, "r": 20, "l": 20},
                       "height": 120 + 22 * len(rows)}}


def metric_table(metrics: dict, targets: list[dict]) -> dict:
    """The test metrics as rows: per target its task's four metrics, then the mean
    over targets of each metric the targets have. `metrics` is `metrics.score`'s
    {"per_target": {name: {...}}, "mean": {...}}."""
    per_target = (metrics or {}).get("per_target") or (metrics or {}).get("test") or {}
    tasks = {t["name"]: t.get("task", "regression") for t in targets}
    for name in per_target:
        tasks.setdefault(name, "classification" if "roc_auc" in (per_target[name] or {}) else "regression")
    columns = [m for m in REGRESSION_METRICS if "regression" in tasks.values()] + \
              [m for m in CLASSIFICATION_METRICS if "classification" in tasks.values()]
    rows = []
    for name, task in tasks.items():
        values = per_target.get(name) or {}
        rows.append({"target": name, "task": task, "values": [_cell(values, m) for m in columns],
                     "n": values.get("n")})
    mean = (metrics or {}).get("mean") or {}
    # k-fold cross-validation: the values are means over the folds, with the sd of the mean over targets.
    sd = (metrics or {}).get("sd") or {}
    return {"columns": [{"key": m, "label": metric_label(m)} for m in columns], "rows": rows,
            "mean": [_cell(mean, m) for m in columns] if mean and len(rows) > 1 else None,
            "folds": (metrics or {}).get("folds"), "sd": [_cell(sd, m) for m in columns] if sd else None}


def _cell(values: dict, metric: str) -> dict:
    """A metric's value, or None with the reason it could not be computed (one class in the test set)."""
    value = values.get(metric)
    if _finite(value):
        return {"value": value, "reason": ""}
    return {"value": None, "reason": (values.get("reasons") or {}).get(metric, "")}
