"""The worker side of a training run (training.train): load the dataset's
validated table, make the split, train through the pipeline with callbacks
that write each epoch to the TrainingRun row at once (the page draws the
curves live), save the state the next attempt resumes from, and write the
result files (outputs.py).

Resuming: the pipeline's work folder (finished members, the loop checkpoint
of the member in progress) is saved with workers.checkpoints after every
epoch and member, and restored first by the next attempt of the same job.

Cancelling: ctx.progress raises JobCancelled inside an epoch callback; the
pipeline hands the best model so far back on the exception
(`partial_model`), and the run ends cancelled with that model and its files.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import numpy as np

from accounts.scoping import find_visible
from workers import checkpoints
from workers.context import JobContext, hardware_of_device
from workers.errors import JobCancelled, JobInputError

from . import outputs as out
from .runs import run_of


def _dataset(ctx: JobContext):
    from .models import Dataset

    pk = ctx.params["dataset_id"]
    job = getattr(ctx, "job", None)
    # Checked again at run time: the owner may have lost access since submitting.
    dataset = (Dataset.objects.filter(pk=pk).first() if job is None
               else find_visible(Dataset, job.owner, pk))
    if dataset is None:
        raise JobInputError(f"The dataset (id {pk}) does not exist or is not yours to use.")
    return dataset


def load_table(dataset, targets: list[str]):
    """The dataset's validated rows with the chosen targets only; a row with
    no label for any of them is left out (returned as a count)."""
    from .compute.datasets import table_from_csv
    from .compute.table import Table

    with dataset.table.open("rb") as fh:
        table = table_from_csv(fh.read().decode("utf-8"))
    index = [table.targets.index(t) for t in targets]
    y = table.y[:, index]
    keep = [i for i in range(len(table)) if not np.isnan(y[i]).all()]
    chosen = Table(smiles=[table.smiles[i] for i in keep], y=y[keep], targets=list(targets),
                   tasks=[table.tasks[i] for i in index], rows=[table.rows[i] for i in keep],
                   columns={k: [v[i] for i in keep] for k, v in table.columns.items()})
    return chosen, len(table) - len(keep)


def make_splits(table, params: dict) -> list:
    from .compute.splits import kfold, make_split

    s = params["split"]
    try:
        if params["folds"]:
            return kfold(table, k=params["folds"], seed=s["seed"], method=s["method"])
        return [make_split(table, method=s["method"], sizes=s["sizes"], seed=s["seed"], column=s["column"])]
    except ValueError as exc:
        raise JobInputError(f"The split cannot be made: {exc}") from None


class Phases:
    """The pipeline names its phases as it enters them ("training member 2/5",
    "testing"); each one ends where the next begins."""

    def __init__(self, ctx: JobContext):
        self.ctx = ctx
        self.stack = ExitStack()

    def switch(self, name: str) -> None:
        self.stack.close()
        self.stack = ExitStack()
        self.stack.enter_context(self.ctx.phase(name))

    def close(self) -> None:
        self.stack.close()


class EpochLog:
    """TrainingRun.epochs, written whole at every epoch and only while this
    attempt holds the job's claim. An epoch a killed attempt reported but did
    not checkpoint is trained again by the next one and replaces its entry."""

    def __init__(self, ctx: JobContext, run, keep: bool):
        self.ctx = ctx
        self.run = run
        self.entries: list[dict] = list(run.epochs) if run is not None and keep else []

    @staticmethod
    def key(entry: dict) -> tuple:
        return entry.get("fold", 0), entry["member"], entry["epoch"]

    def add(self, entry: dict) -> None:
        entry = out.finite(entry)
        key = self.key(entry)
        self.entries = [e for e in self.entries if self.key(e) != key] + [entry]
        self.entries.sort(key=self.key)
        self.save(epochs=self.entries)

    def save(self, **fields) -> None:
        from .models import TrainingRun

        if self.run is not None:
            TrainingRun.objects.filter(pk=self.run.pk, job__claim_token=self.ctx.token).update(**fields)


def _hardware(family) -> str:
    if not family.uses_epochs:
        return "cpu"
    from .compute.loop import pick_device

    return hardware_of_device(pick_device())


def run_training(ctx: JobContext) -> dict:
    from .compute.families import get_family
    from .compute.tracking import tracker_from_env

    p = ctx.params
    job = getattr(ctx, "job", None)
    phases = Phases(ctx)
    tracker = tracker_from_env()
    status = "failed"
    try:
        phases.switch("loading data")
        ctx.progress(1, "Loading the dataset")
        dataset = _dataset(ctx)
        family = get_family(p["family"])
        table, n_unlabelled = load_table(dataset, p["targets"])
        splits = make_splits(table, p)
        state = ctx.workdir / "state"
        resumed = job is not None and checkpoints.restore(job.pk, state)
        run = run_of(job) if job is not None else None
        # Starting over (nothing was saved), the epochs an earlier attempt reported are trained again.
        log = EpochLog(ctx, run, keep=resumed)
        data = {"id": dataset.pk, "name": dataset.name, "version": dataset.version, "hash": dataset.content_hash}
        log.save(epochs=log.entries,
                 split={**p["split"], "folds": p["folds"], **(splits[0].counts() if len(splits) == 1 else {}),
                        "sets": [{"fold": s.fold, **s.counts()} for s in splits]})
        ctx.set_hardware(_hardware(family))
        tracker.start(job.title if job is not None else "training run",
                      {k: p[k] for k in ("family", "hparams", "split", "folds", "ensemble", "seed")}
                      | {"dataset": data}, run_key=str(job.pk) if job is not None else None)
        if resumed:
            ctx.progress(2, f"Resuming from the state saved by attempt {job.attempts - 1}")
        models = _train(ctx, p, table, splits, family, data, state, log, phases, tracker)
        result = _publish(ctx, p, table, splits, models, family, data, log, phases, n_unlabelled, resumed)
        tracker.log_final(result.get("metrics") or {}, ctx.workdir / "model")
        if tracker.problems:  # tracking never fails a run; what went wrong is said with its result
            result["tracking_problems"] = list(tracker.problems)
        # A cancel asked for after the last epoch still keeps the model it finished.
        if result["cancelled"] or ctx.cancel_requested():
            raise JobCancelled("Cancelled", result=result)
        status = "succeeded"
        return result
    except JobCancelled:
        status = "cancelled"
        raise
    finally:
        phases.close()
        tracker.finish(status)


def _train(ctx, p, table, splits, family, data, state: Path, log: EpochLog, phases: Phases, tracker) -> list:
    """One trained model per split (one, or one per fold), the last one
    marked cancelled when a cancel stopped it (with the best weights so far)."""
    from .compute.pipeline import PipelineCallbacks, RunSpec, train_model

    job = getattr(ctx, "job", None)
    members = p["ensemble"] * len(splits)
    max_epochs = p["hparams"].get("max_epochs", 1) if family.uses_epochs else 1
    models = []

    def save_state(*_) -> None:
        if job is not None:
            # Raises LostClaim if another attempt owns the job now: its state is not this one's to overwrite.
            ctx.cancel_requested()
            checkpoints.save(job.pk, state)

    for fold, split in enumerate(splits):
        def on_epoch(member: int, report, fold=fold) -> None:
            entry = {"member": member, "epoch": report.epoch, "train_loss": report.train_loss,
                     "val_loss": report.val_loss, "val_metric": report.val_metric,
                     "seconds": round(report.seconds, 3), "best_epoch": report.best_epoch,
                     "attempt": job.attempts if job is not None else 1}
            if len(splits) > 1:
                entry["fold"] = fold
            log.add(entry)
            # One series per model trained: folds would otherwise log the same member's steps twice.
            tracker.log_epoch(fold * p["ensemble"] + member, report)
            done = fold * p["ensemble"] + member + min(report.epoch / max_epochs, 1)
            where = f"fold {fold + 1}/{len(splits)}, " if len(splits) > 1 else ""
            val = f", validation {report.val_metric:.4g}" if report.val_metric is not None else ""
            # Also where a cancel is noticed: JobCancelled from here stops the loop.
            ctx.progress(3 + 87 * done / members, f"{where}member {member + 1}/{p['ensemble']}: "
                                                  f"epoch {report.epoch} of at most {max_epochs}{val}")

        def on_member_done(member: int, fold=fold) -> None:
            save_state()
            done = fold * p["ensemble"] + member + 1
            ctx.progress(3 + 87 * done / members, f"Trained member {done} of {members}")

        spec = RunSpec(family=p["family"], hparams=p["hparams"], ensemble=p["ensemble"], seed=p["seed"],
                       split=split, data=data)
        callbacks = PipelineCallbacks(on_epoch=on_epoch, on_member_done=on_member_done,
                                      on_checkpoint=save_state, on_phase=phases.switch)
        workdir = state / f"fold-{fold + 1}" if len(splits) > 1 else state
        try:
            models.append(train_model(table, spec, callbacks, workdir))
        except JobCancelled as exc:
            partial = getattr(exc, "partial_model", None)
            if partial is None and not models:
                raise
            if partial is not None:
                models.append(partial)
            else:  # stopped between folds: what the finished folds made is kept
                models[-1].cancelled = True
            break
    return models


def _fold_metrics(models) -> dict:
    """The mean over folds of each test metric, per target and over targets; with its sd."""
    scored = [m.metrics for m in models if m.metrics]
    if not scored:
        return {}
    merged: dict = {"per_target": {}, "mean": {}, "sd": {}, "folds": len(scored)}
    for target in scored[0].get("per_target", {}):
        merged["per_target"][target] = _mean_of([s["per_target"].get(target, {}) for s in scored])
    merged["mean"] = _mean_of([s.get("mean", {}) for s in scored])
    merged["sd"] = _mean_of([s.get("mean", {}) for s in scored], np.std)
    return merged


def _mean_of(dicts: list[dict], how=np.mean) -> dict:
    keys = [k for k, v in dicts[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    values = {k: [d.get(k) for d in dicts if isinstance(d.get(k), (int, float))] for k in keys}
    return {k: float(how(v)) if v else None for k, v in values.items()}


def _method(model, family, data: dict, p: dict, splits) -> str:
    split = splits[0]
    where = (f"{split.method} {p['folds']}-fold cross-validation (seed {split.seed}; model.zip is fold 1's model)"
             if p["folds"] else f"{split.describe()} split")
    seeds = (f"seed {p['seed']}" if p["ensemble"] == 1 else f"seeds {p['seed']}–{p['seed'] + p['ensemble'] - 1}")
    return (f"{model.describe()}; {family.label} trained on {data['name']} v{data['version']} "
            f"(sha256 {data['hash'][:12]}), {where}, {seeds}")


def _publish(ctx, p, table, splits, models, family, data, log: EpochLog, phases: Phases,
             n_unlabelled: int, resumed: bool) -> dict:
    from .compute.bundle import pack
    from .compute.metrics import PRIMARY

    phases.switch("saving")
    model = models[0]
    cancelled = any(m.cancelled for m in models)
    metrics = _fold_metrics(models) if p["folds"] else (model.metrics or {})
    member = model.members[0] if model.members else None
    result = out.finite({
        "dataset": data,
        "family": p["family"], "family_label": family.label, "hparams": p["hparams"],
        "split": {**p["split"], "folds": p["folds"]}, "folds": p["folds"], "ensemble": p["ensemble"],
        "seed": p["seed"],
        "targets": [{"name": t, "task": k} for t, k in zip(table.targets, table.tasks)],
        "n_rows": len(table), "n_unlabelled": n_unlabelled,
        "split_counts": [{"fold": s.fold, **s.counts()} for s in splits],
        "metrics": metrics,
        "fold_metrics": [m.metrics for m in models] if p["folds"] else None,
        "describe": model.describe(),
        "method": _method(model, family, data, p, splits),
        "card": model.card,
        "conformal": (model.conformal or {}).get("method"),
        "test_predictions": out.test_points(model.split_predictions) if model.split_predictions else {},
        "importances": (model.card or {}).get("feature_importances"),
        # The early-stopping metric's key ("rmse", "roc_auc" or "loss"; the forest has none) and in words.
        "val_metric_name": getattr(member, "val_metric", None) or PRIMARY[table.tasks[0]],
        "val_metric_sentence": getattr(member, "val_metric_name", None) or "",
        "cancelled": cancelled,
        "folds_trained": len(models) if p["folds"] else None,
        "resumed": resumed,
        "epochs": len(log.entries),
    })
    model_dir = ctx.workdir / "model"
    model.save(model_dir)
    out.write_all(ctx, table=table, splits=splits[:len(models)],
                  per_fold=[m.split_predictions for m in models if m.split_predictions is not None],
                  epochs=log.entries, result=result, bundle=pack(model_dir))
    log.save(metrics=metrics)
    return result
