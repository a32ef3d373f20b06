"""What the torch families share: target scaling, the masked multi-task loss, the
validation criterion, batching, prediction and the safetensors + JSON save format.
A family adds its network, its featurisation and its learning-rate setting.

Targets: regression columns are standardised with the training set's mean and sd (stored
with the model, undone at prediction), so one MSE weighs every target alike; classification
columns are trained with BCE on logits. NaN labels are masked out of the loss and metrics.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..table import CLASSIFICATION, REGRESSION
from . import Family, FitCallbacks, Hyperparameter

SAVE_FORMAT = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
PREDICT_BATCH = 256


def epoch_hyperparameters(max_epochs: int, patience: int, batch_size: int) -> tuple[Hyperparameter, ...]:
    return (
        Hyperparameter("max_epochs", "int", max_epochs, 1, 500, searchable=False,
                       help="Training stops after this many epochs at the latest."),
        Hyperparameter("patience", "int", patience, 1, 500, searchable=False,
                       help="Early stopping: epochs without a better validation metric before training stops."),
        Hyperparameter("batch_size", "int", batch_size, 8, 1024, searchable=False, help="Molecules per batch."),
    )


class TorchFamily(Family):
    """A family trained by `loop.fit_torch`. Subclasses implement `_build`, `_featurize`,
    `_collate`, `_forward` and `_lr`, and set `featurizer_name`."""

    featurizer_name: ClassVar[str]

    def __init__(self, hparams: dict, tasks: list[str], seed: int = 0):
        super().__init__(hparams, tasks, seed)
        self.model = None
        self.mean: list[float | None] = []
        self.sd: list[float | None] = []
        self.fit_record = None
        self.val_metric = ""           # metrics key of the early-stopping metric: "rmse", "roc_auc" or "loss"
        self.val_metric_name = ""      # the same, as a sentence for the run page
        self.device = "cpu"

    # -- what a family provides ----------------------------------------------------------------
    def _build(self, n_tasks: int):
        raise NotImplementedError

    def _featurize(self, smiles: list[str]) -> list:
        raise NotImplementedError

    def _collate(self, items: list):
        raise NotImplementedError

    def _forward(self, model, batch):
        """Raw outputs (n, T): standardised values for regression targets, logits for classification."""
        raise NotImplementedError

    def _lr(self):
        raise NotImplementedError

    def _weight_decay(self) -> float:
        return 0.0

    # -- fit -----------------------------------------------------------------------------------
    def fit(self, smiles: list[str], y: np.ndarray, val_smiles: list[str], val_y: np.ndarray,
            callbacks: FitCallbacks) -> None:
        import torch

        from ..loop import FitResult, fit_torch, pick_device

        n_tasks = len(self.task_types)
        y = np.asarray(y, dtype=np.float64).reshape(len(smiles), n_tasks)
        val_y = np.asarray(val_y, dtype=np.float64).reshape(len(val_smiles), n_tasks)
        if not len(smiles):
            raise ValueError("The training set is empty.")
        self._check_labels(y, "training")
        self._check_labels(val_y, "validation")
        self._fit_scaler(y)
        self.device = pick_device()
        torch.manual_seed(self.seed)
        model = self._build(n_tasks).to(self.device)
        train_items = self._featurize(smiles)
        val_batches = [self._collate(chunk) for chunk in _chunks(self._featurize(val_smiles), PREDICT_BATCH)]
        z = torch.tensor(self._scale(y), dtype=torch.float32)
        val_z = torch.tensor(self._scale(val_y), dtype=torch.float32, device=self.device)
        batch_size = self.hparams["batch_size"]
        n_batches = len(_chunks(list(range(len(smiles))), batch_size))

        def make_batches(epoch: int):
            order = np.random.default_rng([self.seed, epoch]).permutation(len(smiles))
            for index in _chunks(list(order), batch_size):
                yield self._collate([train_items[i] for i in index]), z[index]

        def loss_fn(model, batch):
            graphs, target = batch
            return self._loss(self._forward(model, graphs), target.to(self.device))

        metric, higher = self._val_metric_kind(val_y)

        def val_fn(model):
            if not val_batches:
                return None, None
            out = torch.cat([self._forward(model, b) for b in val_batches])
            loss = float(self._loss(out, val_z))
            return loss, metric(val_y, self._output(out)) if metric else None

        config = {"family": self.name, "hparams": self.hparams, "tasks": self.task_types, "seed": self.seed,
                  "data": _digest(smiles, y), "val": _digest(val_smiles, val_y)}
        self.fit_record = FitResult()
        self.model = model
        fit_torch(model, make_batches, loss_fn, val_fn, max_epochs=self.hparams["max_epochs"],
                  patience=self.hparams["patience"], lr=self._lr(), seed=self.seed, callbacks=callbacks,
                  steps_per_epoch=n_batches, higher_is_better=higher, weight_decay=self._weight_decay(),
                  config=config, record=self.fit_record)

    def _check_labels(self, y: np.ndarray, which: str) -> None:
        for t, task in enumerate(self.task_types):
            if task == CLASSIFICATION:
                col = y[:, t][~np.isnan(y[:, t])]
                if not np.isin(col, (0.0, 1.0)).all():
                    raise ValueError(f"{which} labels of classification target {t + 1} must be 0 or 1.")

    def _fit_scaler(self, y: np.ndarray) -> None:
        self.mean, self.sd = [], []
        for t, task in enumerate(self.task_types):
            col = y[:, t][~np.isnan(y[:, t])]
            if task == REGRESSION:
                # a target with no spread (or no label) in training is left unscaled rather than divided by 0
                sd = float(col.std()) if len(col) > 1 else 0.0
                self.mean.append(float(col.mean()) if len(col) else 0.0)
                self.sd.append(sd if sd > 0 else 1.0)
            else:
                self.mean.append(None)
                self.sd.append(None)

    def _scale(self, y: np.ndarray) -> np.ndarray:
        z = y.copy()
        for t, task in enumerate(self.task_types):
            if task == REGRESSION:
                z[:, t] = (y[:, t] - self.mean[t]) / self.sd[t]
        return z

    def _output(self, out) -> np.ndarray:
        """Raw network outputs -> values in the targets' units / P(class 1)."""
        import torch

        out = out.detach()
        values = np.empty(tuple(out.shape), dtype=np.float64)
        for t, task in enumerate(self.task_types):
            if task == REGRESSION:
                values[:, t] = out[:, t].double().cpu().numpy() * self.sd[t] + self.mean[t]
            else:
                values[:, t] = torch.sigmoid(out[:, t].double()).cpu().numpy()
        return values

    def _loss(self, out, target):
        """Masked loss: MSE on standardised regression targets, BCE on logits for classification,
        averaged over the labels present."""
        import torch
        import torch.nn.functional as F

        mask = ~torch.isnan(target)
        filled = torch.nan_to_num(target)
        classification = torch.tensor([t == CLASSIFICATION for t in self.task_types], device=out.device)
        per = torch.where(classification, F.binary_cross_entropy_with_logits(out, filled, reduction="none"),
                          (out - filled) ** 2)
        return (per * mask).sum() / mask.sum().clamp(min=1)

    def _val_metric_kind(self, val_y: np.ndarray):
        """The early-stopping metric: `metrics.PRIMARY` of the task (validation RMSE for regression,
        ROC-AUC for classification), mean over the targets it can be computed for; mixed task types,
        or classification without both classes in the validation set, stop on the validation loss.
        Returns (metric function of (y, pred) or None, higher is better)."""
        from ..metrics import PRIMARY, higher_is_better, score

        tasks = set(self.task_types)
        key = PRIMARY[next(iter(tasks))] if len(tasks) == 1 else None
        if tasks == {CLASSIFICATION} and not any(len(np.unique(c[~np.isnan(c)])) == 2 for c in val_y.T):
            key = None
        if key is None:
            self.val_metric = "loss"
            self.val_metric_name = "validation loss (masked MSE on standardised targets / BCE)"
            return None, False
        self.val_metric = key
        self.val_metric_name = f"validation {'RMSE' if key == 'rmse' else 'ROC-AUC'} (mean over targets)"
        names = [f"target {t + 1}" for t in range(len(self.task_types))]
        return (lambda y, pred: score(y, pred, self.task_types, names)["mean"].get(key)), higher_is_better(key)

    # -- predict -------------------------------------------------------------------------------
    def predict(self, smiles: list[str]) -> np.ndarray:
        import torch

        if self.model is None:
            raise RuntimeError("the model has not been trained or loaded")
        if not len(smiles):
            return np.empty((0, len(self.task_types)))
        self.model.eval()
        with torch.no_grad():
            outs = [self._forward(self.model, self._collate(chunk))
                    for chunk in _chunks(self._featurize(smiles), PREDICT_BATCH)]
        return self._output(torch.cat(outs))

    # -- save / load ---------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(directory / WEIGHTS))
        record = self.fit_record
        config = {
            "format": SAVE_FORMAT, "family": self.name, "hparams": self.hparams, "tasks": self.task_types,
            "seed": self.seed, "scaler": {"mean": self.mean, "sd": self.sd}, "featurizer": self.featurizer_name,
            "training": {
                "val_metric": self.val_metric, "val_metric_name": self.val_metric_name,
                "best_epoch": record.best_epoch if record else None,
                "stopped": record.stopped if record else None,
                "history": [vars(r) for r in record.history] if record else [],
            },
            "versions": self.library_versions(),
        }
        (directory / CONFIG).write_text(json.dumps(config, indent=1))

    @classmethod
    def load(cls, directory: Path) -> "TorchFamily":
        from safetensors.torch import load_file

        from ..loop import FitResult, pick_device
        from . import EpochReport

        directory = Path(directory)
        config = json.loads((directory / CONFIG).read_text())
        if config.get("family") != cls.name or config.get("format") != SAVE_FORMAT:
            raise ValueError(f"{directory} does not hold a {cls.name} model (format {SAVE_FORMAT}).")
        self = cls(config["hparams"], config["tasks"], config["seed"])
        self.mean, self.sd = config["scaler"]["mean"], config["scaler"]["sd"]
        training = config.get("training", {})
        self.val_metric = training.get("val_metric", "")
        self.val_metric_name = training.get("val_metric_name", "")
        self.fit_record = FitResult(history=[EpochReport(**r) for r in training.get("history", [])],
                                    best_epoch=training.get("best_epoch") or 0, stopped=training.get("stopped") or "")
        self.device = pick_device()
        self.model = self._build(len(self.task_types))
        self.model.load_state_dict(load_file(str(directory / WEIGHTS)))
        self.model.to(self.device).eval()
        return self

    @classmethod
    def library_versions(cls) -> dict:
        import rdkit
        import torch

        return {"torch": torch.__version__, "rdkit": rdkit.__version__}


def _chunks(items: list, size: int) -> list[list]:
    """Consecutive chunks of `size`; a last chunk of one joins the one before, because batch
    norm cannot train on a single molecule (chemprop drops it instead, we keep the molecule)."""
    chunks = [items[i:i + size] for i in range(0, len(items), size)]
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        chunks[-2] = chunks[-2] + chunks.pop()
    return chunks


def _digest(smiles: list[str], y: np.ndarray) -> str:
    h = hashlib.sha256("\n".join(smiles).encode())
    h.update(np.ascontiguousarray(y, dtype=np.float64).tobytes())
    return h.hexdigest()


def featurize_error(row: int, smiles: Any) -> ValueError:
    return ValueError(f"row {row}: RDKit cannot parse the SMILES {smiles!r}.")
