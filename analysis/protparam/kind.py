"""Checking submitted parameters of a protein analysis job (web form and API).

The job stores the FASTA text of the valid records, so a rerun needs nothing
else. Records that fail validation do not stop the job: they are the job's
input facts, reported next to the results of the good ones. Only input with
no good record at all is refused here.
"""

from __future__ import annotations

from django.conf import settings

from workers.errors import ParamsError
from workers.kinds import Cleaned, JobKind

from analysis.examples import EXAMPLES, load_example
from analysis.fasta import InputTooLarge, NotFasta, parse_fasta, to_fasta

MAX_SEQUENCES = 10_000
WINDOWS = (5, 7, 9, 11, 13, 15, 17, 19, 21)


def sequences_to_fasta(items) -> str:
    if not isinstance(items, list) or not items:
        raise ParamsError("sequences", "Give a non-empty list of {\"id\", \"sequence\"} objects.")
    lines = []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("sequence"), str):
            raise ParamsError(f"sequences[{n}].sequence", "Each item needs a \"sequence\" string.")
        # One item is one record: a ">" or a NUL in it would make others.
        if ">" in item["sequence"] or "\x00" in item["sequence"]:
            raise ParamsError(f"sequences[{n}].sequence", f"Item {n}: a sequence cannot contain “>” or NUL; "
                                                          "give each record as its own item.")
        raw_id = item.get("id")
        if raw_id is not None and (isinstance(raw_id, bool) or not isinstance(raw_id, (str, int))):
            raise ParamsError(f"sequences[{n}].id", f"Item {n}: the id must be text.")
        seq_id = str(raw_id if raw_id is not None else "").strip() or f"seq{n + 1}"
        if any(c.isspace() or not c.isprintable() for c in seq_id):
            raise ParamsError(f"sequences[{n}].id", f"Item {n}: ids cannot contain spaces or control characters.")
        lines.append(f">{seq_id}\n{item['sequence']}")
    return "\n".join(lines) + "\n"


def clean_protparam_params(params: dict) -> dict:
    sources = [key for key in ("fasta", "sequences", "example") if params.get(key)]
    if len(sources) != 1:
        raise ParamsError("fasta", "Give exactly one of: fasta (text), sequences (list) or example.")
    source = params.get("source") or sources[0]
    if sources[0] == "example":
        key = params["example"]
        if not isinstance(key, str) or key not in EXAMPLES:
            raise ParamsError("example", f"Unknown example “{key}”; choose one of {', '.join(EXAMPLES)}.")
        text, source = load_example(key), f"example:{key}"
    elif sources[0] == "sequences":
        text = sequences_to_fasta(params["sequences"])
    else:
        text = params["fasta"]
        if not isinstance(text, str):
            raise ParamsError("fasta", "FASTA must be text.")
    try:
        window = int(params.get("window", 9))
    except (TypeError, ValueError):
        raise ParamsError("window", "The hydropathy window must be a whole number.") from None
    if window not in WINDOWS:
        raise ParamsError("window", f"The hydropathy window must be an odd number from 5 to 21, not {window}.")
    field = "sequences" if sources[0] == "sequences" else "fasta"
    try:
        records, errors = parse_fasta(text, max_bytes=settings.BIOFM_UPLOAD_MAX_BYTES,
                                      max_records=MAX_SEQUENCES)
    except (InputTooLarge, NotFasta) as exc:
        raise ParamsError(field, str(exc)) from None
    if not records:
        detail = "; ".join(e.message for e in errors[:5])
        raise ParamsError(field, f"No valid protein record. {detail}".strip())
    # The job analyses the good records; the others are facts it reports.
    return Cleaned(params={"fasta": to_fasta(records), "source": str(source)[:100], "window": window},
                   facts={"n_records": len(records), "n_rejected": len(errors),
                          "rejected": [e.__dict__ for e in errors]})


def summarize(params: dict, facts: dict) -> str:
    n = facts.get("n_records", 0)
    source = params.get("source", "")
    label = f"{n} protein{'s' if n != 1 else ''}"
    return f"{label} ({source})" if source.startswith("example:") else label


KIND = JobKind(
    name="analysis.protparam",
    label="Protein sequence analysis",
    queue="cpu",
    runner="analysis.protparam.jobs:run_protparam",
    clean_params=clean_protparam_params,
    result_template="analysis/protparam/result.html",
    soft_time_limit=1800, time_limit=1900,
    description="Biopython ProtParam figures, amino-acid composition and "
                "Kyte-Doolittle hydropathy for protein sequences (FASTA).",
    submit_url_name="analysis:new",
    summarize_params=summarize,
)
