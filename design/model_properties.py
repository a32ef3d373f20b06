"""Registered models (training's ModelVersion) as design properties.

Design's own properties are static per-molecule functions; a registered model
is a per-user record whose bundle is loaded in the worker, so it is named by a
key instead: ``model:<id>:<target>``. Property prediction writes its value,
its uncertainty and its applicability-domain flag as columns; a campaign
uses its value as an objective, scored a generation at a time.

The web side (forms, cleaning, access) reads only the records; RDKit, the
bundle and torch are imported in the worker, when a job needs them.
"""

from __future__ import annotations

import hashlib
import math
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from accounts.scoping import find_visible, require_visible_ids
from workers.errors import JobInputError, JobSystemError, ParamsError

KEY_PATTERN = re.compile(r"^model:(\d+):(.+)$")
# Molecules per predict call in the worker: large enough to batch the model's
# work, small enough that progress (and so cancellation) is heard every few seconds.
PREDICT_CHUNK = 2000


def model_key(model_id: int, target: str) -> str:
    return f"model:{model_id}:{target}"


def parse_key(key) -> tuple[int, str] | None:
    """(model id, target) of a model property key, None for any other key."""
    match = KEY_PATTERN.match(key) if isinstance(key, str) else None
    return (int(match.group(1)), match.group(2)) if match else None


def is_model_key(key) -> bool:
    return parse_key(key) is not None


def _model_class():
    from training.models import ModelVersion

    return ModelVersion


def target_names(model) -> list[str]:
    return [t["name"] if isinstance(t, dict) else str(t) for t in model.targets or []]


def _task_of(model, target: str) -> str:
    for t in model.targets or []:
        if isinstance(t, dict) and t.get("name") == target:
            return t.get("task") or "regression"
    return "regression"


def unit(model, target: str) -> str:
    return "probability" if _task_of(model, target) == "classification" else ""


def label(model, target: str) -> str:
    """What every column, objective and chart names: the display name
    (method and test metric) and the target."""
    return f"{model.display_name or model} · {target}"


def training_data(model) -> str:
    """The dataset version the model was trained on, as the card or its run names it."""
    run = getattr(model, "run", None)
    if run is not None and getattr(run, "dataset", None) is not None:
        ds = run.dataset
        return f"{ds.name} v{ds.version} (sha256 {ds.content_hash[:12]})"
    card = model.card or {}
    data = card.get("dataset") or card.get("data")
    if isinstance(data, dict):
        name = " ".join(str(data[k]) if k != "version" else f"v{data[k]}" for k in ("name", "version") if data.get(k))
        digest = data.get("hash") or data.get("content_hash")
        return f"{name} (sha256 {str(digest)[:12]})" if digest else name or "not recorded"
    return str(data) if data else "not recorded"


def method(model, target: str) -> str:
    task = _task_of(model, target)
    what = "predicted probability of class 1" if task == "classification" else "predicted value"
    return (f"Registered model {model.display_name or model} (id {model.pk}), trained on {training_data(model)}; "
            f"target “{target}” ({task}, {what}); uncertainty = standard deviation over the ensemble's members; "
            f"applicability domain = largest Tanimoto similarity to the training set")


def domain() -> tuple[float, str]:
    """The bundle's applicability-domain threshold and its method (worker side: imports the bundle)."""
    from training.compute.bundle import AD_METHOD, AD_THRESHOLD

    return float(AD_THRESHOLD), AD_METHOD


def columns(model, target: str, key: str, domain_method: str) -> list[dict]:
    """The three result columns of one model property: value, std, in domain."""
    name, value_unit = label(model, target), unit(model, target)
    return [
        {"key": key, "label": name, "unit": value_unit, "method": method(model, target)},
        {"key": f"{key}:std", "label": f"{name} (std)", "unit": value_unit,
         "method": f"{name}: standard deviation over the ensemble's members (blank for a single model)"},
        {"key": f"{key}:in_domain", "label": f"{name} (in domain)", "unit": "bool",
         "method": f"{name}: applicability domain by the {domain_method}"},
    ]


# ---------------------------------------------------------------- web side

def visible_models(user):
    return _model_class().objects.visible_to(user).exclude(bundle="").order_by("name", "-version")


def choices(user) -> list[tuple[str, str]]:
    """(key, label) of every target of every model the user may see."""
    return [(model_key(m.pk, t), label(m, t)) for m in visible_models(user) for t in target_names(m)]


def labels_for(keys) -> dict[str, str]:
    """key -> label for the model keys among `keys`, from the records."""
    parsed = {k: parse_key(k) for k in keys if is_model_key(k)}
    if not parsed:
        return {}
    models = _model_class().objects.in_bulk({pk for pk, _ in parsed.values()})
    return {k: label(models[pk], t) for k, (pk, t) in parsed.items() if pk in models}


def check_access(user, keyed: list[tuple[str, object]]) -> None:
    """`keyed`: (field, key) pairs. A model the user may not see is refused as
    a missing one; keys that are not model keys are left to the validator."""
    require_visible_ids(user, [(field, _model_class(), "model", parsed[0])
                               for field, parsed in ((f, parse_key(k)) for f, k in keyed) if parsed])


def clean_key(key, field: str) -> str:
    """The key as given if it names an existing model and one of its targets."""
    parsed = parse_key(key)
    if parsed is None:
        raise ParamsError(field, f"“{key}” is not a model property: write model:<model id>:<target>.")
    pk, target = parsed
    model = _model_class().objects.filter(pk=pk).first()
    if model is None:
        raise ParamsError(field, f"No model with id {pk}.")
    names = target_names(model)
    if target not in names:
        raise ParamsError(field, f"Model {pk} ({model.display_name}) has no target “{target}”; "
                                 f"its targets: {', '.join(names) or 'none'}.")
    return key


# ---------------------------------------------------------------- worker side

@dataclass
class LoadedModel:
    record: object          # the ModelVersion
    trained: object         # training.compute.bundle.TrainedModel
    targets: list[str]      # the bundle's target order (the columns of its predictions)

    def column(self, target: str) -> int:
        return self.targets.index(target)


def load(keys, owner, workdir: Path) -> dict[int, LoadedModel]:
    """Every model the keys name, loaded once, checked again against the job's
    owner (access may have been lost since submission) and against the bundle's
    recorded sha256."""
    from training.compute.bundle import load_model, unpack

    loaded: dict[int, LoadedModel] = {}
    for key in keys:
        pk, target = parse_key(key)
        if pk in loaded:
            continue
        model_cls = _model_class()
        record = (model_cls.objects.filter(pk=pk).first() if owner is None
                  else find_visible(model_cls.objects.select_related("run__dataset"), owner, pk))
        if record is None:
            raise JobInputError(f"The model (id {pk}) does not exist or is not yours to use.")
        try:
            with record.bundle.open("rb") as handle:
                data = handle.read()
        except (OSError, ValueError) as exc:  # ValueError: the record has no file
            raise JobSystemError(f"Model {record.display_name}: its stored bundle could not be read.",
                                 detail=f"{record.bundle.name}: {exc}") from None
        if record.bundle_sha256 and hashlib.sha256(data).hexdigest() != record.bundle_sha256:
            raise JobInputError(f"Model {record.display_name}: its stored bundle does not match its recorded "
                                f"sha256, so it is not used.")
        # A retried attempt gets the same workdir: start from an empty folder, not a half-written one.
        directory = Path(workdir) / "models" / str(pk)
        shutil.rmtree(directory, ignore_errors=True)
        try:
            unpack(data, directory)
            trained = load_model(directory)
        except ValueError as exc:
            raise JobInputError(f"Model {record.display_name} could not be loaded: {exc}") from None
        names = list(getattr(trained, "targets", None) or (trained.card or {}).get("targets") or [])
        names = [n["name"] if isinstance(n, dict) else str(n) for n in names]
        loaded[pk] = LoadedModel(record, trained, names)
        if target not in names:
            raise JobInputError(f"Model {record.display_name} has no target “{target}”.")
    return loaded


def _number(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def predict(loaded: LoadedModel, smiles: list[str], targets: list[str], progress=None,
            deadline: float | None = None) -> dict:
    """{"targets": {target: {"value", "std", "in_domain"}: one entry per molecule},
    "errors": {position: message}}, from one predict call per chunk of
    PREDICT_CHUNK molecules. A chunk the model refuses as a whole is retried
    molecule by molecule, so one bad molecule is an error of its own row only.
    Chunks left when time.monotonic() passes `deadline` are row errors too, as
    in the property scoring before them."""
    out = {t: {"value": [None] * len(smiles), "std": [None] * len(smiles), "in_domain": [None] * len(smiles)}
           for t in targets}
    errors: dict[int, str] = {}
    columns_at = {t: loaded.column(t) for t in targets}

    def fill(start: int, chunk: list[str]) -> None:
        p = loaded.trained.predict(chunk)
        for i in range(len(chunk)):
            for t, c in columns_at.items():
                out[t]["value"][start + i] = _number(p.mean[i][c])
                out[t]["std"][start + i] = _number(p.std[i][c]) if p.std is not None else None
                out[t]["in_domain"][start + i] = bool(p.in_domain[i])

    for start in range(0, len(smiles), PREDICT_CHUNK):
        chunk = smiles[start:start + PREDICT_CHUNK]
        if deadline is not None and time.monotonic() > deadline:
            for i in range(len(chunk)):
                errors[start + i] = f"not predicted by {loaded.record.display_name}: the job's time budget ran out"
            continue
        try:
            fill(start, chunk)
        except Exception:  # the model refused the batch: find the molecule(s) it refuses
            for i, one in enumerate(chunk):
                try:
                    fill(start + i, [one])
                except Exception as exc:  # this molecule only
                    errors[start + i] = f"{loaded.record.display_name}: {exc}"
        if progress is not None:
            progress(min(len(smiles), start + len(chunk)), len(smiles))
    return {"targets": out, "errors": errors}


class ModelObjective:
    """A campaign objective on one model target: `batch(mols)` predicts a
    generation in one call and keeps each molecule's std and domain flag,
    which the run's population table shows beside the value."""

    def __init__(self, loaded: LoadedModel, target: str, key: str):
        self.loaded, self.target, self.key = loaded, target, key
        self.extras: dict[str, dict] = {}

    def batch(self, mols) -> list[float]:
        from rdkit import Chem

        smiles = [Chem.MolToSmiles(m) for m in mols]
        result = predict(self.loaded, smiles, [self.target])
        column = result["targets"][self.target]
        values = []
        for i, smi in enumerate(smiles):
            value = column["value"][i] if i not in result["errors"] else None
            values.append(math.nan if value is None else value)
            self.extras[smi] = {f"{self.key}:std": column["std"][i], f"{self.key}:in_domain": column["in_domain"][i]}
        return values

    def one(self, mol) -> float:
        return self.batch([mol])[0]

    def objective(self, direction: str, weight: float):
        from design.compute.generate import Objective

        return Objective(self.key, self.one, weight, direction, batch=self.batch)
