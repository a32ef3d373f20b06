"""Checking the parameters of an ESM-2 embedding job (web form, API, rerun).

Unlike the ProtParam job, a record with a residue ESM-2 has no token for is an
error the API reports up front (naming the record), unless the caller asks to
skip such records; the web form always skips them and says which."""

from __future__ import annotations

from django.conf import settings

from workers.errors import ParamsError
from workers.kinds import JobKind

from analysis.examples import EXAMPLES, load_example
from analysis.fasta import InputTooLarge, NotFasta, parse_fasta
from analysis.protparam.kind import sequences_to_fasta

# The published ESM-2 checkpoints: name -> number of layers.
ESM2_LAYERS = {
    "esm2_t6_8M_UR50D": 6,
    "esm2_t12_35M_UR50D": 12,
    "esm2_t30_150M_UR50D": 30,
    "esm2_t33_650M_UR50D": 33,
    "esm2_t36_3B_UR50D": 36,
}
DEFAULT_MODEL = "esm2_t33_650M_UR50D"
INCLUDE_CHOICES = ("mean", "per_tok", "bos", "contacts")
LONG_POLICIES = ("truncate", "window")


def _records_from(params: dict) -> tuple[str, str, str]:
    """(fasta text, source label, field name for errors)."""
    given = [k for k in ("fasta", "sequences", "example") if params.get(k)]
    if not given:
        raise ParamsError("sequences", "No input: give fasta (text), sequences (a list) or example.")
    if len(given) > 1:
        raise ParamsError(given[1], "Give only one of fasta, sequences or example.")
    key = given[0]
    if key == "example":
        if params["example"] not in EXAMPLES:
            raise ParamsError("example", f"Unknown example “{params['example']}”.")
        return load_example(params["example"]), f"example:{params['example']}", "example"
    if key == "sequences":
        return sequences_to_fasta(params["sequences"]), params.get("source") or "api", "sequences"
    if not isinstance(params["fasta"], str):
        raise ParamsError("fasta", "FASTA must be text.")
    return params["fasta"], params.get("source") or "fasta", "fasta"


def parse_repr_layers(value, num_layers: int) -> list[int]:
    if isinstance(value, str):
        parts = [p for p in value.replace(" ", "").split(",") if p]
    elif isinstance(value, list):
        parts = value
    else:
        raise ParamsError("repr_layers", "Give a list of layer numbers, e.g. [-1] or [0, 6, -1].")
    if not parts:
        raise ParamsError("repr_layers", "Give at least one layer.")
    layers = []
    for part in parts:
        try:
            layer = int(part)
        except (TypeError, ValueError):
            raise ParamsError("repr_layers", f"“{part}” is not a layer number.") from None
        if not -(num_layers + 1) <= layer <= num_layers:
            raise ParamsError("repr_layers", f"Layer {layer} does not exist: this model has layers "
                                             f"0 to {num_layers} (or -1 to -{num_layers + 1}).")
        layers.append(layer)
    return layers


def clean_esm_params(params: dict) -> dict:
    model = params.get("model", DEFAULT_MODEL)
    if model not in ESM2_LAYERS:
        raise ParamsError("model", f"Unknown model “{model}”; choose one of {', '.join(ESM2_LAYERS)}.")
    num_layers = ESM2_LAYERS[model]
    repr_layers = parse_repr_layers(params.get("repr_layers", [-1]), num_layers)
    include = params.get("include", ["mean"])
    if isinstance(include, str):
        include = [i for i in include.replace(" ", "").split(",") if i]
    if not isinstance(include, list) or not include:
        raise ParamsError("include", f"Choose at least one of {', '.join(INCLUDE_CHOICES)}.")
    unknown = [i for i in include if i not in INCLUDE_CHOICES]
    if unknown:
        raise ParamsError("include", f"Unknown output “{unknown[0]}”; choose from {', '.join(INCLUDE_CHOICES)}.")
    long_sequences = params.get("long_sequences", "truncate")
    if long_sequences not in LONG_POLICIES:
        raise ParamsError("long_sequences", "Choose “truncate” (as fair-esm) or “window”.")
    skip_invalid = bool(params.get("skip_invalid", False))

    text, source, field = _records_from(params)
    try:
        records, errors = parse_fasta(
            text, max_bytes=settings.BIOFM_UPLOAD_MAX_BYTES * 4,
            max_records=settings.BIOFM_ESM_MAX_SEQUENCES,
            min_length=1, max_length=settings.BIOFM_ESM_MAX_LENGTH)
    except (InputTooLarge, NotFasta) as exc:
        raise ParamsError(field, str(exc)) from None
    errors = [e.__dict__ for e in errors]
    errors += [{"index": i, "id": r.id, "field": "sequence", "message": msg}
               for i, r, msg in _residue_problems(records, {e["index"] for e in errors})]
    errors.sort(key=lambda e: e["index"])
    bad_ids = {e["id"] for e in errors}
    good = [r for r in records if r.id not in bad_ids]
    if errors and not skip_invalid:
        first = errors[0]
        more = f" ({len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ParamsError(_record_field(field, first["index"]), first["message"] + more)
    if not good:
        raise ParamsError(field, "No valid protein sequence in the input.")
    return {
        "model": model, "repr_layers": repr_layers, "include": sorted(set(include), key=INCLUDE_CHOICES.index),
        "long_sequences": long_sequences, "skip_invalid": skip_invalid,
        "fasta": "".join(f">{r.id} {r.description}".rstrip() + f"\n{r.sequence}\n" for r in good),
        "source": source, "n_records": len(good), "rejected": errors,
        "max_length": max(len(r.sequence) for r in good),
    }


# The letters ESM-2's vocabulary has a token for (fair-esm's ESM-1b alphabet);
# anything else would silently become <unk>.
ESM_LETTERS = frozenset("LAGVSERTIDPKQNFYMHWCXBUZO")


def _original_indices(n_good: int, bad: set[int]):
    """The 1-based input positions of the good records, which fill the gaps
    between the rejected ones."""
    index = 0
    for _ in range(n_good):
        index += 1
        while index in bad:
            index += 1
        yield index


def _residue_problems(records, bad_indices: set[int]):
    for index, record in zip(_original_indices(len(records), bad_indices), records):
        for pos, letter in enumerate(record.sequence, start=1):
            if letter not in ESM_LETTERS:
                yield index, record, (f"Record {index} ({record.id}): residue “{letter}” at position "
                                      f"{pos} has no ESM-2 token.")
                break


def _record_field(field: str, index: int) -> str:
    return f"sequences[{index - 1}].sequence" if field == "sequences" else field


def summarize(params: dict) -> str:
    n = params.get("n_records", 0)
    return f"{n} sequence{'s' if n != 1 else ''}, {params.get('model', '')}"


KIND = JobKind(
    name="analysis.esm_embeddings",
    label="ESM-2 protein embeddings",
    queue="gpu",
    runner="analysis.esm.jobs:run_esm_embeddings",
    clean_params=clean_esm_params,
    result_template="analysis/esm/result.html",
    soft_time_limit=10 * 3600, time_limit=10 * 3600 + 600,
    description="Per-sequence and per-residue ESM-2 embeddings and contact maps "
                "(fair-esm checkpoints), for one to tens of thousands of sequences.",
    submit_url_name="analysis:esm_new",
    summarize_params=summarize,
)
