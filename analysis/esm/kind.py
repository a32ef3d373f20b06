"""Checking the parameters of an ESM-2 embedding job (web form, API, rerun).

Unlike the ProtParam job, a record with a residue ESM-2 has no token for is an
error the API reports up front (naming the record), unless the caller asks to
skip such records; the web form always skips them and says which."""

from __future__ import annotations

from django.conf import settings

from workers.errors import ParamsError
from workers.kinds import Cleaned, JobKind

from analysis.examples import EXAMPLES, load_example
from analysis.fasta import InputTooLarge, NotFasta, parse_fasta, to_fasta
from analysis.protparam.kind import sequences_to_fasta

from .compute.catalog import ESM2_MODELS
from .inventory import QUEUE, availability

# The published ESM-2 checkpoints: name -> number of layers.
ESM2_LAYERS = {name: spec.num_layers for name, spec in ESM2_MODELS.items()}
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
        if not isinstance(params["example"], str) or params["example"] not in EXAMPLES:
            raise ParamsError("example", f"Unknown example “{params['example']}”.")
        return load_example(params["example"]), f"example:{params['example']}", "example"
    source = str(params.get("source") or "")[:100]
    if key == "sequences":
        return sequences_to_fasta(params["sequences"]), source or "api", "sequences"
    if not isinstance(params["fasta"], str):
        raise ParamsError("fasta", "FASTA must be text.")
    return params["fasta"], source or "fasta", "fasta"


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
        # Whole numbers only: int() would quietly read 1.5 as layer 1 and true as 1.
        if isinstance(part, bool) or not isinstance(part, (int, str)):
            raise ParamsError("repr_layers", f"“{part}” is not a layer number.")
        try:
            layer = int(part)
        except ValueError:
            raise ParamsError("repr_layers", f"“{part}” is not a layer number.") from None
        if not -(num_layers + 1) <= layer <= num_layers:
            raise ParamsError("repr_layers", f"Layer {layer} does not exist: this model has layers "
                                             f"0 to {num_layers} (or -1 to -{num_layers + 1}).")
        if layer not in layers:
            layers.append(layer)
    return layers


def _include(value) -> list[str]:
    if isinstance(value, str):
        value = [i for i in value.replace(" ", "").split(",") if i]
    if not isinstance(value, list) or not value:
        raise ParamsError("include", f"Choose at least one of {', '.join(INCLUDE_CHOICES)}.")
    unknown = [i for i in value if not isinstance(i, str) or i not in INCLUDE_CHOICES]
    if unknown:
        raise ParamsError("include", f"Unknown output “{unknown[0]}”; choose from {', '.join(INCLUDE_CHOICES)}.")
    return sorted(set(value), key=INCLUDE_CHOICES.index)


def clean_esm_params(params: dict) -> Cleaned:
    """Canonical parameters hold the valid records only, as FASTA text; the
    records left out (with skip_invalid) are facts, so cleaning the canonical
    parameters again gives them back unchanged."""
    # What the GPU workers reported (inventory.py): with no report yet, any
    # model is accepted and the job waits for a worker.
    models = availability(QUEUE)
    model = params.get("model")
    if model is None:
        model = models.default_model()
    if not isinstance(model, str) or model not in ESM2_LAYERS:
        raise ParamsError("model", f"Unknown model “{model}”; choose one of {', '.join(ESM2_LAYERS)}.")
    if not models.usable(model):
        raise ParamsError("model", models.refusal(model))
    num_layers = ESM2_LAYERS[model]
    repr_layers = parse_repr_layers(params.get("repr_layers", [-1]), num_layers)
    include = _include(params.get("include", ["mean"]))
    long_sequences = params.get("long_sequences", "truncate")
    if not isinstance(long_sequences, str) or long_sequences not in LONG_POLICIES:
        raise ParamsError("long_sequences", "Choose “truncate” (as fair-esm) or “window”.")
    skip_invalid = params.get("skip_invalid", False)
    if not isinstance(skip_invalid, bool):  # bool("false") is True
        raise ParamsError("skip_invalid", "Give true or false.")

    text, source, field = _records_from(params)
    try:
        records, errors = parse_fasta(
            text, max_bytes=settings.BIOFM_UPLOAD_MAX_BYTES * 4,
            max_records=settings.BIOFM_ESM_MAX_SEQUENCES,
            min_length=1, max_length=settings.BIOFM_ESM_MAX_LENGTH)
    except (InputTooLarge, NotFasta) as exc:
        raise ParamsError(field, str(exc)) from None
    errors = [e.__dict__ for e in errors] + esm_problems(records)
    errors.sort(key=lambda e: e["index"])
    bad = {e["index"] for e in errors}
    good = [r for r in records if r.index not in bad]
    if errors and not skip_invalid:
        first = errors[0]
        more = f" ({len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ParamsError(_record_field(field, first), first["message"] + more)
    if not good:
        raise ParamsError(field, "No valid protein sequence in the input: "
                                 + "; ".join(e["message"] for e in errors[:3]))
    return Cleaned(
        params={"model": model, "repr_layers": repr_layers, "include": include,
                "long_sequences": long_sequences, "skip_invalid": skip_invalid,
                "fasta": to_fasta(good), "source": source},
        facts={"n_records": len(good), "max_length": max(len(r.sequence) for r in good),
               "n_rejected": len(bad), "rejected": errors},  # records left out; their problems
    )


# The letters ESM-2's vocabulary has a token for (fair-esm's ESM-1b alphabet);
# anything else would silently become <unk>.
ESM_LETTERS = frozenset("LAGVSERTIDPKQNFYMHWCXBUZO")


# Result files name each record: extract.py's "<id>.pt" must fit a file name.
MAX_ID_BYTES = 200


def esm_problems(records) -> list[dict]:
    """What parse_fasta lets through but ESM-2 or its result files cannot take:
    letters without a token, ids too long for a file name, ids that become
    the same file name in extract_pt.zip."""
    from .outputs import safe_filename

    problems, files = [], {}
    for record in records:
        name = f"Record {record.index} ({record.id})"
        message = None
        letter = next((c for c in record.sequence if c not in ESM_LETTERS), None)
        if letter is not None:
            pos = record.sequence.index(letter) + 1
            message = f"{name}: residue “{letter}” at position {pos} has no ESM-2 token."
        elif len(record.id.encode()) > MAX_ID_BYTES:
            message = (f"Record {record.index}: the id is {len(record.id.encode()):,} bytes long; "
                       f"ids are at most {MAX_ID_BYTES} bytes (they name the result files).")
        else:
            filename = safe_filename(record.id)
            if filename in files:
                first = files[filename]
                message = (f"{name}: its result file {filename}.pt would be the same as record "
                           f"{first.index}'s ({first.id}); rename one of them.")
            else:
                files[filename] = record
        if message:
            problems.append({"index": record.index, "id": record.id,
                             "field": "id" if letter is None else "sequence", "message": message})
    return problems


def _record_field(field: str, error: dict) -> str:
    return f"sequences[{error['index'] - 1}].{error['field']}" if field == "sequences" else field


def summarize(params: dict, facts: dict) -> str:
    n = facts.get("n_records", 0)
    return f"{n} sequence{'s' if n != 1 else ''}, {params.get('model', '')}"


KIND = JobKind(
    name="analysis.esm_embeddings",
    label="ESM-2 protein embeddings",
    queue=QUEUE,
    runner="analysis.esm.jobs:run_esm_embeddings",
    clean_params=clean_esm_params,
    result_template="analysis/esm/result.html",
    soft_time_limit=10 * 3600, time_limit=10 * 3600 + 600,
    description="Per-sequence and per-residue ESM-2 embeddings and contact maps "
                "(fair-esm checkpoints), for one to tens of thousands of sequences.",
    submit_url_name="analysis:esm_new",
    summarize_params=summarize,
)
