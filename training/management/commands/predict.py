"""Predict molecules with a model folder written by `train_model` (or unpacked
from a registered model's bundle), with the code the training.predict job runs:

    python manage.py predict DIR INPUT.csv --smiles-column COL --out PRED.csv

PRED.csv has every input row, then one prediction column per target named after
the target (P(class 1) for a classification target), `<target>_std` beside it
where the model has an uncertainty (an ensemble), and an `error` column: a row
RDKit cannot read gets empty predictions and RDKit's reason there, and the
others are still predicted. INPUT may also be an SDF or a SMILES-per-line file.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from biofm_site.csvfile import csv_text


class Command(BaseCommand):
    help = "Predict a CSV/SDF of molecules with a trained model folder; writes PRED.csv."

    def add_arguments(self, parser):
        parser.add_argument("model_dir", type=Path, metavar="DIR")
        parser.add_argument("input", type=Path, metavar="INPUT.csv")
        parser.add_argument("--smiles-column", default=None,
                            help="the CSV's SMILES column (found by its name, e.g. 'smiles', when omitted)")
        parser.add_argument("--out", type=Path, required=True, metavar="PRED.csv")

    def handle(self, *args, **opts):
        from training.compute.bundle import load_model
        from training.compute.scoring import format_from_filename, score

        try:
            model = load_model(opts["model_dir"])
        except (OSError, ValueError, KeyError) as exc:
            raise CommandError(f"{opts['model_dir']}: not a model folder ({exc})") from None
        try:
            text = opts["input"].read_bytes().decode("utf-8-sig")
        except OSError as exc:
            raise CommandError(f"{opts['input']}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise CommandError(f"{opts['input']}: not UTF-8 text") from None
        try:
            scored = score(model, text, format_from_filename(opts["input"].name), opts["smiles_column"])
        except ValueError as exc:
            raise CommandError(f"{opts['input']}: {exc}") from None
        opts["out"].write_text(csv_text(scored.header(), scored.table()))
        for row in scored.rows:
            if row.error:
                self.stderr.write(row.error)
        self.stdout.write(f"{scored.n_predicted} predicted, {scored.n_errors} rows with an error; "
                          f"{model.describe()}; written to {opts['out']}")
