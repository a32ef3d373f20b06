"""One training run: a split table -> N ensemble members -> test metrics and a
conformal interval -> a `TrainedModel`.

The run lives in a work folder so that a worker killed mid-run loses little:

    run.json                  what is being trained (a second call with another spec refuses the folder)
    members/<i>/model/        member i as its family saves it, once it has finished
    members/<i>/member.json   written last: its presence marks member i finished (seed, seconds)
    members/<i>/checkpoint/   the epoch loop's checkpoint while member i trains

Calling `train_model` again on the same folder loads the finished members and
resumes the one in progress from its checkpoint.

Stopping: when a callback raises (the job was cancelled), the epoch loop gives
the member its best weights back and re-raises; the pipeline then builds a model
from the members it has (that one included if it finished an epoch), marked
cancelled, attaches it to the exception as `exc.partial_model` and lets the
exception go on, so the caller's cancellation still ends the job. An exception
of the training itself (not raised by a callback) carries no model.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .bundle import AD_METHOD, SplitPredictions, TrainedModel, morgan_bits
from .families import EpochReport, Family, FitCallbacks, get_family
from .metrics import score
from .table import REGRESSION, Table

if TYPE_CHECKING:
    from .splits import Split

DEFAULT_ALPHA = 0.1
# Libraries named on the model card: those of every run, and each family's own.
LIBRARIES = ("numpy", "rdkit", "safetensors")
FAMILY_LIBRARIES = {"fingerprint_rf": ("scikit-learn", "skops"), "dmpnn": ("torch", "chemprop"),
                    "attentivefp": ("torch", "torch-geometric")}


@dataclass
class RunSpec:
    family: str
    hparams: dict = field(default_factory=dict)   # the family's; max_epochs / patience are the torch families'
    ensemble: int = 1
    seed: int = 0                                 # member i is trained with seed + i
    split: "Split | None" = None
    alpha: float = DEFAULT_ALPHA                  # the conformal interval covers 1 - alpha
    data: dict = field(default_factory=dict)      # the training data's name/version/hash, copied to the card


def _noop(*args) -> None:
    return None


@dataclass
class PipelineCallbacks:
    on_epoch: Callable[[int, EpochReport], None] = _noop     # (member index, report)
    on_member_done: Callable[[int], None] = _noop
    # Where member i's loop checkpoint goes, as <checkpoint_dir>/<i>; None: workdir/members/<i>/checkpoint.
    checkpoint_dir: Path | None = None
    on_checkpoint: Callable[[Path], None] = _noop
    on_phase: Callable[[str], None] = _noop                   # "training member 2/5", "testing"


class _Guard:
    """Remembers the exception a caller's callback raised, to tell a requested
    stop from a failure of the training itself."""

    def __init__(self):
        self.raised: BaseException | None = None

    def wrap(self, fn: Callable) -> Callable:
        def call(*args):
            try:
                return fn(*args)
            except BaseException as exc:
                self.raised = exc
                raise
        return call

    def caused(self, exc: BaseException) -> bool:
        return self.raised is not None and self.raised in (exc, exc.__cause__, exc.__context__)


def _split_sets(table: Table, split) -> dict[str, list[int]]:
    if split is None:
        raise ValueError("a run needs a split (train / val / test row positions)")
    sets = {name: [int(i) for i in getattr(split, name)] for name in ("train", "val", "test")}
    seen: set[int] = set()
    for name, index in sets.items():
        bad = [i for i in index if not 0 <= i < len(table)]
        if bad:
            raise ValueError(f"the {name} set names row position {bad[0]}, but the table has {len(table)} rows")
        if seen & set(index):
            raise ValueError(f"the {name} set shares rows with another set")
        seen |= set(index)
    if not sets["train"]:
        raise ValueError("the training set is empty")
    return sets


def _identity(table: Table, spec: RunSpec, hparams: dict, sets: dict) -> dict:
    digest = hashlib.sha256(json.dumps({"smiles": table.smiles, "sets": sets}).encode())
    digest.update(np.ascontiguousarray(table.y).tobytes())
    return {"family": spec.family, "hparams": hparams, "seed": spec.seed, "targets": table.targets,
            "tasks": table.tasks, "data_sha256": digest.hexdigest()}


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _claim_workdir(workdir: Path, identity: dict) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "run.json"
    if path.exists():
        if json.loads(path.read_text()) != json.loads(json.dumps(identity)):
            raise ValueError(f"{workdir} holds another run's members (other data, family, settings or seed)")
        return
    _write_json(path, identity)


def _rank(n: int, alpha: float) -> int:
    """ceil((n+1)(1-alpha)), rounded first so that 10 * 0.9 is 9 and not 9.000000000000002."""
    return math.ceil(round((n + 1) * (1 - alpha), 9))


def conformal_widths(y: np.ndarray, pred: np.ndarray, tasks: list[str], alpha: float) -> dict:
    """Split-conformal half-widths per regression target from validation residuals.

    The half-width is the ceil((n+1)(1-alpha))/n empirical quantile of |y - pred|
    over the n labelled validation rows, which covers a new molecule's label with
    probability >= 1 - alpha when it is exchangeable with the validation set."""
    if not 0 < alpha < 1:
        raise ValueError("alpha must be between 0 and 1")
    level = round(100 * (1 - alpha))
    widths, counts, notes = [], [], {}
    for t, task in enumerate(tasks):
        if task != REGRESSION:
            widths.append(None)
            counts.append(0)
            continue
        labelled = ~np.isnan(y[:, t])
        residuals = np.abs(y[labelled, t] - pred[labelled, t])
        n = int(residuals.size)
        counts.append(n)
        if n == 0 or _rank(n, alpha) > n:
            fewest = next(m for m in range(1, 10**6) if _rank(m, alpha) <= m)
            widths.append(None)
            notes[t] = (f"{n} labelled validation rows are too few for a {level}% interval "
                        f"(at least {fewest} are needed)")
            continue
        widths.append(float(np.sort(residuals)[_rank(n, alpha) - 1]))
    regression_n = sorted({counts[t] for t, task in enumerate(tasks) if task == REGRESSION})
    method = (f"{level}% split-conformal interval calibrated on the validation set "
              f"(n={', '.join(map(str, regression_n))})") if regression_n else \
        "no conformal interval: no regression target"
    return {"alpha": alpha, "half_widths": widths, "n": counts, "notes": {str(k): v for k, v in notes.items()},
            "method": method}


def library_versions(family: str) -> dict:
    """{distribution: version}; a family registered later names its own in `libraries`."""
    names = LIBRARIES + tuple(FAMILY_LIBRARIES.get(family, ())) + tuple(getattr(get_family(family), "libraries", ()))
    versions = {}
    for dist in dict.fromkeys(names):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def _importances(members: list[Family]) -> list[dict] | None:
    """Each member's most important features, averaged over the members by name."""
    lists = [m.feature_importances() for m in members]
    if not lists or any(items is None for items in lists):
        return None
    total: dict[str, float] = {}
    for items in lists:
        for item in items:
            total[item["feature"]] = total.get(item["feature"], 0.0) + item["importance"] / len(lists)
    method = lists[0][0]["method"] if lists[0] and "method" in lists[0][0] else ""
    ranked = sorted(total.items(), key=lambda kv: -kv[1])[:20]
    return [{"feature": name, "importance": value, "method": method} for name, value in ranked]


def _fit_summary(model: Family, seconds: float) -> dict:
    """The member's training time, and what the epoch loop recorded about a torch member
    (best epoch, why it stopped). A member resumed after a killed worker also counts the
    epochs it took from the checkpoint, so the card's training time is the whole training."""
    record = getattr(model, "fit_record", None)
    if record is None:
        return {"seconds": seconds}
    earlier = sum(r.seconds for r in record.history if r.epoch <= record.resumed_from)
    return {"seconds": seconds + earlier, "best_epoch": record.best_epoch, "stopped": record.stopped,
            "epochs": len(record.history), "resumed_from": record.resumed_from}


def _train_members(table: Table, spec: RunSpec, cls: type[Family], hparams: dict, sets: dict,
                   callbacks: PipelineCallbacks, guard: _Guard, workdir: Path, done: list, progress: dict) -> None:
    train, val = table.subset(sets["train"]), table.subset(sets["val"])
    for i in range(spec.ensemble):
        member_dir = workdir / "members" / str(i)
        marker = member_dir / "member.json"
        if marker.exists():
            done.append((cls.load(member_dir / "model"), json.loads(marker.read_text())))
            continue
        guard.wrap(callbacks.on_phase)(f"training member {i + 1}/{spec.ensemble}")
        checkpoint = (Path(callbacks.checkpoint_dir) / str(i)) if callbacks.checkpoint_dir else \
            member_dir / "checkpoint"
        checkpoint.mkdir(parents=True, exist_ok=True)
        model = cls(hparams, table.tasks, seed=spec.seed + i)
        progress.update(model=model, epochs=0, started=time.monotonic())

        def on_epoch(report: EpochReport, i=i) -> None:
            progress["epochs"] += 1
            callbacks.on_epoch(i, report)

        fit_callbacks = FitCallbacks(on_epoch=guard.wrap(on_epoch), checkpoint_dir=checkpoint,
                                     on_checkpoint=guard.wrap(callbacks.on_checkpoint))
        model.fit(train.smiles, train.y, val.smiles, val.y, fit_callbacks)
        info = {"seed": spec.seed + i, **_fit_summary(model, time.monotonic() - progress["started"])}
        if (member_dir / "model").exists():
            shutil.rmtree(member_dir / "model")   # a half-written one from a killed attempt
        model.save(member_dir / "model")
        _write_json(marker, info)
        shutil.rmtree(checkpoint, ignore_errors=True)
        progress.clear()
        done.append((model, info))
        guard.wrap(callbacks.on_member_done)(i)


def _assemble(table: Table, spec: RunSpec, cls: type[Family], hparams: dict, sets: dict,
              members: list[tuple[Family, dict]], cancelled: bool) -> TrainedModel:
    models = [m for m, _ in members]
    values = np.stack([m.predict(table.smiles) for m in models])
    mean = values.mean(axis=0)
    std = values.std(axis=0) if len(models) > 1 else None
    labels = [""] * len(table)
    for name in ("train", "val", "test"):
        for i in sets[name]:
            labels[i] = name
    val = sets["val"]
    conformal = conformal_widths(table.y[val], mean[val], table.tasks, spec.alpha)
    if not val and REGRESSION in table.tasks:
        conformal["method"] = "no conformal interval: the split has no validation set"
    if sets["test"]:
        test = sets["test"]
        metrics = score(table.y[test], mean[test], table.tasks, table.targets)
        metrics_note = f"test set of {len(test)} rows"
    else:
        metrics, metrics_note = None, "no test metrics: the split has no test set (test size 0)"
    split = spec.split
    card = {
        "family": cls.name, "label": models[0].display_label(), "method": models[0].display_method(),
        "hparams": hparams,
        "ensemble": len(models), "ensemble_requested": spec.ensemble, "seeds": [info["seed"] for _, info in members],
        "members": [info for _, info in members],
        "val_metric": getattr(models[0], "val_metric", None) or None,          # a metrics key, or "loss"
        "val_metric_name": getattr(models[0], "val_metric_name", None) or None,
        "split": {"method": getattr(split, "method", ""), "sizes": list(getattr(split, "sizes", ()) or ()),
                  "seed": getattr(split, "seed", None), "column": getattr(split, "column", None),
                  "fold": getattr(split, "fold", None), "folds": getattr(split, "folds", None),
                  "n_train": len(sets["train"]), "n_val": len(val), "n_test": len(sets["test"])},
        "metrics": metrics, "metrics_note": metrics_note, "targets": list(table.targets),
        "tasks": list(table.tasks), "libraries": library_versions(cls.name),
        "training_seconds": round(sum(info["seconds"] for _, info in members), 3),
        "conformal": conformal["method"], "applicability_domain": AD_METHOD,
        "uncertainty": (f"sd of the {len(models)} members' predictions" if len(models) > 1 else None),
        "feature_importances": _importances(models), "data": dict(spec.data), "cancelled": cancelled,
    }
    train_fps = morgan_bits([table.smiles[i] for i in sets["train"]])
    return TrainedModel(family=cls.name, members=models, targets=list(table.targets), tasks=list(table.tasks),
                        train_fps=train_fps, conformal=conformal, card=card, cancelled=cancelled,
                        split_predictions=SplitPredictions(rows=list(table.rows), smiles=list(table.smiles),
                                                           split=labels, y=table.y, mean=mean, std=std,
                                                           targets=list(table.targets), tasks=list(table.tasks)))


def train_model(table: Table, spec: RunSpec, callbacks: PipelineCallbacks | None, workdir: Path) -> TrainedModel:
    callbacks = callbacks or PipelineCallbacks()
    cls = get_family(spec.family)
    if not 1 <= int(spec.ensemble) <= 100:
        raise ValueError("ensemble must be between 1 and 100 members")
    unsupported = sorted(set(table.tasks) - set(cls.tasks))
    if unsupported:
        raise ValueError(f"{cls.label} does not support {', '.join(unsupported)} targets")
    hparams = cls.check_hparams(spec.hparams)
    sets = _split_sets(table, spec.split)
    workdir = Path(workdir)
    _claim_workdir(workdir, _identity(table, spec, hparams, sets))
    guard = _Guard()
    done: list[tuple[Family, dict]] = []
    progress: dict[str, Any] = {}
    try:
        _train_members(table, spec, cls, hparams, sets, callbacks, guard, workdir, done, progress)
    except BaseException as exc:
        if not guard.caused(exc):
            raise
        # A stop the caller asked for: the member in progress has its best weights
        # back (the loop restores them) if it got through an epoch.
        if progress.get("epochs"):
            model = progress["model"]
            done.append((model, {"seed": model.seed, **_fit_summary(model, time.monotonic() - progress["started"])}))
        if done:
            # The caller's own exception goes on unchanged (its cancellation still ends
            # the job) and carries the model so far.
            exc.partial_model = _assemble(table, spec, cls, hparams, sets, done, True)
        raise
    callbacks.on_phase("testing")
    return _assemble(table, spec, cls, hparams, sets, done, False)
