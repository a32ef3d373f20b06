"""The model registry: every family is registered once, with its hyperparameter
schema, the tasks it supports, and fit / predict / save / load.

    @register_family
    class FingerprintForest(Family):
        name = "fingerprint_rf"
        ...

AutoML reads `hyperparameters` to build its search space; the forms and the API
read it to offer and check the settings. A family module is imported on first
use of the registry (`get_family`, `all_families`), never by the web process at
startup, so a page never imports torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from ..table import CLASSIFICATION, REGRESSION

# The modules that register families; a family added later adds its module here.
FAMILY_MODULES = [
    "training.compute.families.fingerprint_rf",
    "training.compute.families.dmpnn",
    "training.compute.families.attentivefp",
]


@dataclass(frozen=True)
class Hyperparameter:
    name: str
    kind: str                       # "int", "float", "choice" or "bool"
    default: Any
    low: float | None = None        # int / float ranges, inclusive
    high: float | None = None
    choices: tuple = ()             # "choice"
    log: bool = False               # search on a log scale (learning rates)
    searchable: bool = True         # AutoML may vary it
    help: str = ""

    def check(self, value: Any) -> Any:
        """The value in its canonical type, or ValueError naming the parameter and the range."""
        if self.kind == "bool":
            if isinstance(value, str):
                if value.lower() in ("true", "1", "yes", "on"):
                    return True
                if value.lower() in ("false", "0", "no", "off", ""):
                    return False
                raise ValueError(f"{self.name} must be true or false.")
            return bool(value)
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"{self.name} must be one of {', '.join(map(str, self.choices))}.")
            return value
        try:
            number = int(value) if self.kind == "int" else float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{self.name} must be a {'whole ' if self.kind == 'int' else ''}number.") from None
        if self.kind == "int" and float(value) != number:
            raise ValueError(f"{self.name} must be a whole number.")
        if not np.isfinite(number) or (self.low is not None and number < self.low) or \
                (self.high is not None and number > self.high):
            raise ValueError(f"{self.name} must be between {self.low} and {self.high}.")
        return number

    def as_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "default": self.default, "low": self.low,
                "high": self.high, "choices": list(self.choices), "log": self.log,
                "searchable": self.searchable, "help": self.help}


@dataclass
class EpochReport:
    """One epoch of a torch family, as the run page draws it."""

    epoch: int                      # 1-based
    train_loss: float
    val_loss: float | None
    val_metric: float | None        # the early-stopping metric on the validation set
    seconds: float                  # this epoch's wall time
    best_epoch: int                 # the epoch whose weights are kept so far


@dataclass
class FitCallbacks:
    """What the pipeline hands a family's `fit`. `on_epoch` may raise (the job was
    cancelled: the family stops, keeping its best weights so far). A family
    without epochs (the forest) calls none of them."""

    on_epoch: Callable[[EpochReport], None] = lambda report: None
    # A folder that survives a killed worker: the loop writes its checkpoint
    # there every epoch and resumes from it when one is found.
    checkpoint_dir: Path | None = None
    on_checkpoint: Callable[[Path], None] = lambda directory: None


class Family:
    """Base class of a model family. One instance is one trained (or to-be-trained)
    model for the table's targets; an ensemble is several instances with different seeds."""

    name: ClassVar[str]
    label: ClassVar[str]            # "D-MPNN (Chemprop)", shown with every number
    method: ClassVar[str]           # one line naming the method and its reference
    tasks: ClassVar[frozenset] = frozenset({REGRESSION, CLASSIFICATION})
    uses_epochs: ClassVar[bool] = True
    hyperparameters: ClassVar[tuple[Hyperparameter, ...]] = ()

    def __init__(self, hparams: dict, tasks: list[str], seed: int = 0):
        self.hparams = self.check_hparams(hparams)
        self.task_types = list(tasks)
        self.seed = int(seed)

    @classmethod
    def check_hparams(cls, hparams: dict | None) -> dict:
        """Defaults filled in, every value checked; ValueError for an unknown or bad one."""
        hparams = dict(hparams or {})
        known = {h.name: h for h in cls.hyperparameters}
        unknown = sorted(set(hparams) - set(known))
        if unknown:
            raise ValueError(f"{cls.name} has no hyperparameter {', '.join(unknown)}.")
        return {name: h.check(hparams.get(name, h.default)) for name, h in known.items()}

    # smiles: canonical SMILES; y: (n, T) float with NaN = missing label.
    def fit(self, smiles: list[str], y: np.ndarray, val_smiles: list[str], val_y: np.ndarray,
            callbacks: FitCallbacks) -> None:
        raise NotImplementedError

    def predict(self, smiles: list[str]) -> np.ndarray:
        """(n, T): values for regression targets, P(class 1) for classification ones."""
        raise NotImplementedError

    def save(self, directory: Path) -> None:
        """Write the model into `directory`: safetensors / skops and JSON only (nothing that runs code on load)."""
        raise NotImplementedError

    @classmethod
    def load(cls, directory: Path) -> "Family":
        raise NotImplementedError

    def display_label(self) -> str:
        """The label of this model with its settings (a family whose inputs are
        hyperparameters says which it used)."""
        return self.label

    def display_method(self) -> str:
        return self.method

    def feature_importances(self) -> list[dict] | None:
        """[{"feature", "importance"}] most important first, where the family has them."""
        return None


_FAMILIES: dict[str, type[Family]] = {}
_loaded = False


def register_family(cls: type[Family]) -> type[Family]:
    if cls.name in _FAMILIES and _FAMILIES[cls.name] is not cls:
        raise ValueError(f"family {cls.name!r} registered twice")
    _FAMILIES[cls.name] = cls
    return cls


def _load_all() -> None:
    global _loaded
    if not _loaded:
        for module in FAMILY_MODULES:
            importlib.import_module(module)
        _loaded = True


def get_family(name: str) -> type[Family]:
    _load_all()
    try:
        return _FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown model family {name!r}; known: {', '.join(sorted(_FAMILIES))}") from None


def all_families() -> list[type[Family]]:
    _load_all()
    return [_FAMILIES[k] for k in sorted(_FAMILIES)]


# The names without importing any family (forms, clean_params): kept in step with
# FAMILY_MODULES by tests/test_training_pipeline.py.
FAMILY_NAMES = ("attentivefp", "dmpnn", "fingerprint_rf")
