"""The files a training.predict job writes, through the one CSV writer."""

from __future__ import annotations

from biofm_site.csvfile import csv_text


def write_predictions(ctx, scored) -> None:
    """predictions.csv: every input row with its predictions, uncertainty,
    interval and applicability domain (or its error); the columns the
    `predict` command writes come first, under the same names."""
    ctx.add_file("predictions.csv", csv_text(scored.header(extras=True), scored.table(extras=True)), "text/csv")
