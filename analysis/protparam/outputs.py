"""The result files of a protein analysis job: protparam.csv (through the
one CSV writer), protparam.json, and rejected_records.csv for the records
left out."""

from __future__ import annotations

import json

from biofm_site.csvfile import csv_text

from .compute.protparam import METHODS, to_csv


def write_results(ctx, rows: list[dict], rejected: list[dict]) -> None:
    ctx.add_file("protparam.csv", to_csv(rows), "text/csv")
    ctx.add_file("protparam.json", json.dumps({"methods": METHODS, "records": rows}, indent=1),
                 "application/json")
    if rejected:
        ctx.add_file("rejected_records.csv", csv_text(
            ["record", "id", "field", "message"],
            ([e[k] for k in ("index", "id", "field", "message")] for e in rejected)), "text/csv")
