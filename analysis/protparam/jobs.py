"""The worker side of a protein analysis job."""

from __future__ import annotations

from workers.context import JobContext

from . import outputs as out

from .compute.charts import MAX_HYDROPATHY_TRACES, composition_figure, hydropathy_figure
from analysis.fasta import read_records
from .compute.protparam import METHODS, analyse, hydropathy_profile

# The job page draws at most this many records; the CSV has them all.
MAX_TABLE_ROWS = 500
MAX_PROFILES = MAX_HYDROPATHY_TRACES


def run_protparam(ctx: JobContext) -> dict:
    params = ctx.params
    # The kind's clean_params kept only valid records; the others are facts.
    records = read_records(params["fasta"])
    error_rows = ctx.facts.get("rejected", [])
    rows, profiles = [], []
    for i, record in enumerate(records):
        row = analyse(record)
        rows.append(row)
        if len(profiles) < MAX_PROFILES:
            profiles.append({"id": record.id,
                             "profile": hydropathy_profile(record.sequence, params["window"]),
                             "window": params["window"]})
        if i % 10 == 0 or i == len(records) - 1:
            ctx.progress(100.0 * (i + 1) / len(records), f"Analysed {i + 1} of {len(records)} records")
    out.write_results(ctx, rows, error_rows)
    shown = rows[:MAX_TABLE_ROWS]
    return {
        "n_records": len(rows),
        "n_rejected": len(error_rows),
        "errors": error_rows[:MAX_TABLE_ROWS],
        "rows": [{k: v for k, v in r.items() if k != "composition"} for r in shown],
        "truncated": len(rows) > MAX_TABLE_ROWS,
        "methods": METHODS,
        "charts": {
            "composition": composition_figure(shown),
            "hydropathy": hydropathy_figure(profiles),
        },
        "profiles_truncated": len(records) > MAX_PROFILES,
    }
