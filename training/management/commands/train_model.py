"""Train a property model on a CSV or SDF file, outside the portal, with the
code the training.train job runs:

    python manage.py train_model DATA.csv --smiles-column COL --target-column COL [--target-column COL ...] \
        --family NAME [--task regression|classification] [--split random|scaffold] [--sizes 0.8 0.1 0.1] \
        [--seed N] [--ensemble N] [--epochs N] [--hparam NAME=VALUE ...] --out DIR

DIR gets the model (the bundle layout: model.json + members/ + train_fps.safetensors),
which `predict` loads and `import_model` puts in the registry, and
DIR/metrics.json with the test metrics when the test size is not 0. The
rows left out and why are printed. Experiment tracking is on when its
environment variables are (training/compute/tracking.py).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from training.compute.families import FAMILY_NAMES
from training.compute.table import TASKS


def _hparam(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise ValueError(text)
    return name.strip(), value.strip()


class Command(BaseCommand):
    help = "Train a model (fingerprint_rf, dmpnn, attentivefp, ...) on a CSV/SDF and write it to --out DIR."

    def add_arguments(self, parser):
        parser.add_argument("data", type=Path, help="CSV (any delimiter) or SDF")
        parser.add_argument("--smiles-column", required=True,
                            help="the SMILES column (for an SDF: '(molecule)' takes the record's molecule)")
        parser.add_argument("--target-column", action="append", required=True, dest="targets",
                            help="a target column; repeat for a multi-target model")
        parser.add_argument("--family", required=True, choices=FAMILY_NAMES)
        parser.add_argument("--task", choices=TASKS, default=None,
                            help="for every target; inferred per target when omitted (0/1 columns are classification)")
        parser.add_argument("--split", choices=("random", "scaffold"), default="random")
        parser.add_argument("--sizes", type=float, nargs=3, default=[0.8, 0.1, 0.1], metavar=("TRAIN", "VAL", "TEST"))
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--ensemble", type=int, default=1)
        parser.add_argument("--epochs", type=int, default=None, help="maximum epochs (the torch families)")
        parser.add_argument("--hparam", type=_hparam, action="append", default=[], metavar="NAME=VALUE",
                            help="any hyperparameter of the family, e.g. --hparam n_estimators=200")
        parser.add_argument("--out", type=Path, required=True, help="the model folder to write (must not exist)")
        parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")

    def handle(self, *args, **opts):
        from training.compute.datasets import DatasetError, parse_dataset
        from training.compute.families import get_family
        from training.compute.pipeline import PipelineCallbacks, RunSpec, train_model
        from training.compute.splits import make_split
        from training.compute.tracking import tracker_from_env

        out: Path = opts["out"]
        if out.exists() and not opts["overwrite"]:
            raise CommandError(f"{out} exists; choose a new folder or pass --overwrite.")
        family = get_family(opts["family"])
        hparams = dict(opts["hparam"])
        if opts["epochs"] is not None:
            if not family.uses_epochs:
                raise CommandError(f"--epochs: {opts['family']} does not train in epochs.")
            hparams["max_epochs"] = opts["epochs"]
        try:
            hparams = family.check_hparams(hparams)
        except ValueError as exc:
            raise CommandError(f"--hparam: {exc}") from None

        try:
            data = opts["data"].read_bytes()
        except OSError as exc:
            raise CommandError(f"{opts['data']}: {exc.strerror}") from None
        try:
            table = parse_dataset(data, opts["data"].name, opts["smiles_column"],
                                  {t: opts["task"] for t in opts["targets"]})
        except DatasetError as exc:
            raise CommandError(f"{opts['data']}: {exc}") from None
        for error in table.errors:
            self.stderr.write(f"left out: row {error.row} ({error.column}): {error.message}")
        try:
            split = make_split(table, method=opts["split"], sizes=tuple(opts["sizes"]), seed=opts["seed"])
        except ValueError as exc:
            raise CommandError(f"--split/--sizes: {exc}") from None
        digest = hashlib.sha256(data).hexdigest()
        spec = RunSpec(family=opts["family"], hparams=hparams, ensemble=opts["ensemble"], seed=opts["seed"],
                       split=split, data={"name": opts["data"].name, "hash": digest, "rows": len(table)})
        self.stderr.write(f"{len(table)} molecules ({len(table.errors)} rows left out); {split.describe()}")

        summary = {"method": split.method, "sizes": list(split.sizes), "seed": split.seed, **split.counts()}
        tracker = tracker_from_env()
        tracker.start(f"{opts['data'].stem} {opts['family']}", {
            "family": opts["family"], "hparams": hparams, "ensemble": opts["ensemble"], "seed": opts["seed"],
            "split": summary,
            "dataset": {"file": opts["data"].name, "sha256": digest, "targets": table.targets, "tasks": table.tasks}})

        def on_epoch(member, report):
            tracker.log_epoch(member, report)
            self.stderr.write(f"member {member + 1} epoch {report.epoch}: train loss {report.train_loss:.4g}"
                              + (f", val loss {report.val_loss:.4g}" if report.val_loss is not None else "")
                              + (f", val metric {report.val_metric:.4g}" if report.val_metric is not None else "")
                              + f" ({report.seconds:.1f} s)")

        started = time.monotonic()
        status = "failed"
        try:
            with tempfile.TemporaryDirectory(prefix="train_model-") as workdir:
                model = train_model(table, spec, PipelineCallbacks(
                    on_epoch=on_epoch, on_phase=lambda phase: self.stderr.write(phase)), Path(workdir))
            if out.exists():
                shutil.rmtree(out)
            model.save(out)
            metrics = model.card.get("metrics") or {}
            if split.test:
                (out / "metrics.json").write_text(json.dumps({
                    "describe": model.describe(), "family": opts["family"], "hparams": hparams,
                    "split": summary, "ensemble": opts["ensemble"], "seed": opts["seed"],
                    "targets": [{"name": t, "task": k} for t, k in zip(table.targets, table.tasks)],
                    "dataset": spec.data, "metrics": metrics,
                }, indent=2, sort_keys=True, ensure_ascii=False, default=_json_default))
            tracker.log_final(metrics, out)
            status = "succeeded"
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        finally:
            tracker.finish(status)
        for problem in tracker.problems:
            self.stderr.write(f"tracking: {problem}")
        self.stdout.write(f"{model.describe()} — {time.monotonic() - started:.1f} s; model written to {out}")


def _json_default(value):
    # numpy scalars in the metrics; NaN is not JSON, so it becomes null.
    number = float(value)
    return number if number == number else None
