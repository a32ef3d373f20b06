"""The result files of a training run, CSV through the one CSV writer
(biofm_site.csvfile): the split that reproduces the run, every row's
prediction with its set, the epochs and the metrics; the model itself is the
bundle's zip (training.compute.bundle.pack)."""

from __future__ import annotations

import json
import math

import numpy as np

from biofm_site.csvfile import csv_text

SETS = ("train", "val", "test")
EPOCH_FIELDS = ("member", "epoch", "train_loss", "val_loss", "val_metric", "seconds", "best_epoch")
# The run page draws a parity plot or ROC curve from at most this many test rows per target.
MAX_PLOT_POINTS = 5000


def finite(value):
    """JSON (and PostgreSQL jsonb) has no NaN or infinity, nor numpy scalars:
    a label that is missing or a metric that could not be computed is null."""
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return finite(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _cell(value):
    value = finite(value)
    return "" if value is None else value


def split_csv(table, splits) -> str:
    """row (in the uploaded file), smiles, set [, fold]: the run's split, to reproduce it."""
    folded = len(splits) > 1
    rows = []
    for fold, split in enumerate(splits):
        for name in SETS:
            for i in getattr(split, name):
                rows.append([table.rows[i], table.smiles[i], name] + ([fold + 1] if folded else []))
    rows.sort(key=lambda r: (r[3] if folded else 0, r[0]))
    return csv_text(["row", "smiles", "set"] + (["fold"] if folded else []), rows)


def predictions_csv(per_fold) -> str:
    """One line per row and target: row, smiles, split [, fold], target, y,
    prediction, std (of the ensemble's members). `per_fold`: the pipeline's
    SplitPredictions of each fold's model (one for a run without folds)."""
    folded = len(per_fold) > 1
    header = ["row", "smiles", "split"] + (["fold"] if folded else []) + ["target", "y", "prediction", "std"]
    rows = []
    for fold, predictions in enumerate(per_fold):
        for r in predictions.records():
            if not r["split"]:
                continue
            rows.append([r["row"], r["smiles"], r["split"]] + ([fold + 1] if folded else [])
                        + [r["target"], _cell(r["y"]), _cell(r["prediction"]), _cell(r["std"])])
    return csv_text(header, rows)


def test_points(predictions) -> dict:
    """{target: {"y", "pred"}} over the labelled test rows, for the parity plot / ROC curve."""
    points: dict[str, dict] = {t: {"y": [], "pred": []} for t in predictions.targets}
    for r in predictions.records():
        p = points[r["target"]]
        if r["split"] == "test" and r["y"] is not None and len(p["y"]) < MAX_PLOT_POINTS:
            p["y"].append(r["y"])
            p["pred"].append(finite(r["prediction"]))
    return points


def epochs_csv(epochs: list[dict]) -> str:
    fields = list(EPOCH_FIELDS) + (["fold"] if any("fold" in e for e in epochs) else [])
    return csv_text(fields, [[_cell(e.get(f)) for f in fields] for e in epochs])


def metrics_json(result: dict) -> str:
    keys = ("method", "dataset", "family", "hparams", "split", "folds", "ensemble", "seed", "targets",
            "metrics", "fold_metrics", "cancelled", "describe", "conformal")
    return json.dumps(finite({k: result.get(k) for k in keys if k in result}), indent=2, sort_keys=True)


def write_all(ctx, *, table, splits, per_fold, epochs, result, bundle: bytes) -> None:
    ctx.add_file("model.zip", bundle, "application/zip")
    ctx.add_file("predictions.csv", predictions_csv(per_fold), "text/csv")
    ctx.add_file("split.csv", split_csv(table, splits), "text/csv")
    ctx.add_file("metrics.json", metrics_json(result), "application/json")
    ctx.add_file("epochs.csv", epochs_csv(epochs), "text/csv")
