"""The one epoch loop of the torch families (D-MPNN, AttentiveFP).

    result = fit_torch(model, make_batches, loss_fn, val_fn, max_epochs=50, patience=10,
                       lr=NoamSchedule(2, 1e-4, 1e-3, 1e-4), seed=0, callbacks=callbacks,
                       steps_per_epoch=len(batches), higher_is_better=False, config={...})

Adam; early stopping on the validation criterion; the best epoch's weights are kept and are
in the model when the loop returns. Every epoch: `callbacks.on_epoch(report)`, then a
checkpoint in `callbacks.checkpoint_dir` (safetensors + JSON, written atomically), then
`callbacks.on_checkpoint(checkpoint_dir)`.

Divergence: a training loss that is not finite ends the fit with FloatingPointError (the model
keeps its best weights, as below), rather than early-stopping on NaN metrics.

Interruption: any exception escaping an epoch (on_epoch raising because the job was
cancelled, a soft time limit) restores the best weights so far into the model and then
propagates unchanged, so the caller can save the best model and mark it cancelled. The
interrupted epoch is not checkpointed: a rerun resumes after the last checkpointed epoch and
repeats the interrupted one (deterministically, so with the same report).

Resume: when `checkpoint_dir` holds a checkpoint whose `config` equals this fit's, training
continues at the next epoch with the weights, Adam state, learning-rate step, history, best
weights and RNG states of that epoch. Batch order is a function of (seed, epoch) (the families'
`make_batches` draw it so), dropout draws from torch's RNG, which the checkpoint restores: so
on CPU a resumed fit ends with the same weights, bit for bit, as an uninterrupted one.

Checkpoint layout (nothing in it runs code on load):

    checkpoint_dir/
      latest.json                 {"format": 1, "epoch": N, "path": "epoch-000N"}
      epoch-000N/
        tensors.safetensors       model.<param>  the weights after epoch N
                                  best.<param>   the best epoch's weights
                                  optim.<i>.<key> Adam's per-parameter tensors (exp_avg, exp_avg_sq, step)
                                  rng.torch      torch.get_rng_state() (uint8); rng.cuda.<i> where CUDA ran
        state.json                epoch, best epoch and value, history (EpochReports), the optimizer's
                                  param groups and scalar state, the schedule step, numpy's and
                                  Python's RNG states, config
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .families import EpochReport, FitCallbacks

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
LATEST = "latest.json"
TENSORS = "tensors.safetensors"
STATE = "state.json"


@dataclass(frozen=True)
class NoamSchedule:
    """Chemprop's learning-rate schedule: linear warm-up from init_lr to max_lr over
    `warmup_epochs`, then exponential decay to final_lr at the last epoch. A pure function of
    the optimizer step, so a resumed fit needs only the step count."""

    warmup_epochs: int
    init_lr: float
    max_lr: float
    final_lr: float

    def lr(self, step: int, steps_per_epoch: int, max_epochs: int) -> float:
        warmup = self.warmup_epochs * steps_per_epoch
        total = max_epochs * steps_per_epoch
        if step < warmup:
            return self.init_lr + (self.max_lr - self.init_lr) * step / warmup
        decay = max(total - warmup, 1)
        return self.max_lr * (self.final_lr / self.max_lr) ** (min(step - warmup, decay) / decay)


@dataclass
class FitResult:
    """What a fit did. Pass one as `record` to read it after an exception too."""

    history: list[EpochReport] = field(default_factory=list)
    best_epoch: int = 0
    best_value: float | None = None
    stopped: str = ""               # "early stopping", "max epochs", or "interrupted"
    resumed_from: int = 0           # the checkpointed epoch it resumed after, 0 for a fresh start


def pick_device() -> str:
    """BIOFM_TORCH_DEVICE where set (cpu, cuda, cuda:1), else CUDA when torch sees it, else CPU."""
    import torch

    wanted = os.environ.get("BIOFM_TORCH_DEVICE", "").strip()
    if wanted:
        return wanted
    return "cuda" if torch.cuda.is_available() else "cpu"


def fit_torch(
    model,
    make_batches: Callable[[int], Iterable[Any]],
    loss_fn: Callable[[Any, Any], Any],
    val_fn: Callable[[Any], tuple[float | None, float | None]],
    *,
    max_epochs: int,
    patience: int,
    lr: float | NoamSchedule,
    seed: int,
    callbacks: FitCallbacks,
    steps_per_epoch: int = 1,
    higher_is_better: bool = False,
    weight_decay: float = 0.0,
    config: dict | None = None,
    record: FitResult | None = None,
) -> FitResult:
    """Train `model` in place and return what happened; the model ends holding the best epoch's weights.

    make_batches(epoch) -> the training batches of that epoch (1-based), in an order drawn from
        (seed, epoch) alone; loss_fn(model, batch) -> the scalar loss tensor of a batch (masked);
    val_fn(model) -> (val_loss, val_metric), called in eval mode without gradients; the criterion
        is val_metric (higher_is_better says its direction), or val_loss where the metric is
        None, or the last epoch where both are None (no validation set).
    Early stopping: after `patience` epochs without improvement of the criterion.
    config: what a checkpoint must match to be resumed (hyperparameters, data); a checkpoint
        made with another config is ignored and overwritten.
    """
    import torch

    result = record if record is not None else FitResult()
    config = json.loads(json.dumps(config or {}, sort_keys=True, default=str))
    optimizer = torch.optim.Adam(model.parameters(), lr=_lr(lr, 0, steps_per_epoch, max_epochs),
                                 weight_decay=weight_decay)
    step = 0
    best_state = _copy_state(model)
    start = 1
    directory = Path(callbacks.checkpoint_dir) if callbacks.checkpoint_dir else None
    loaded = _read_checkpoint(directory, config) if directory else None
    if loaded is not None:
        tensors, state = loaded
        model.load_state_dict(_prefixed(tensors, "model."))
        best_state = _prefixed(tensors, "best.")
        optimizer.load_state_dict(_optimizer_state(tensors, state["optimizer"]))
        _set_rng(tensors, state["rng"])
        step = state["step"]
        result.history = [EpochReport(**r) for r in state["history"]]
        result.best_epoch, result.best_value = state["best_epoch"], state["best_value"]
        result.resumed_from = state["epoch"]
        start = state["epoch"] + 1
    else:
        _seed_all(seed)

    with _deterministic():
        try:
            for epoch in range(start, max_epochs + 1):
                if result.best_epoch and epoch - result.best_epoch > patience:
                    result.stopped = "early stopping"
                    break
                began = time.perf_counter()
                model.train()
                losses = []
                for batch in make_batches(epoch):
                    for group in optimizer.param_groups:
                        group["lr"] = _lr(lr, step, steps_per_epoch, max_epochs)
                    optimizer.zero_grad(set_to_none=True)
                    loss = loss_fn(model, batch)
                    loss.backward()
                    optimizer.step()
                    step += 1
                    losses.append(float(loss.detach()))
                train_loss = float(np.mean(losses)) if losses else math.nan
                if losses and not math.isfinite(train_loss):
                    raise FloatingPointError(f"The training loss became {train_loss} in epoch {epoch}: training "
                                             "diverged. Try a lower learning rate.")
                model.eval()
                with torch.no_grad():
                    val_loss, val_metric = val_fn(model)
                value, better = _criterion(val_loss, val_metric, higher_is_better)
                if result.best_epoch == 0 or value is None or better(value, result.best_value):
                    result.best_epoch, result.best_value = epoch, value
                    best_state = _copy_state(model)
                report = EpochReport(epoch=epoch, train_loss=train_loss,
                                     val_loss=val_loss, val_metric=val_metric,
                                     seconds=time.perf_counter() - began, best_epoch=result.best_epoch)
                result.history.append(report)
                callbacks.on_epoch(report)
                if directory is not None:
                    _write_checkpoint(directory, epoch, model, best_state, optimizer, step, result, config)
                    callbacks.on_checkpoint(directory)
            else:
                result.stopped = "max epochs"
        except BaseException:
            result.stopped = "interrupted"
            model.load_state_dict(best_state)
            raise
    model.load_state_dict(best_state)
    model.eval()
    return result


def _lr(lr: float | NoamSchedule, step: int, steps_per_epoch: int, max_epochs: int) -> float:
    return lr.lr(step, steps_per_epoch, max_epochs) if isinstance(lr, NoamSchedule) else float(lr)


def _criterion(val_loss, val_metric, higher_is_better):
    if val_metric is not None:
        return float(val_metric), (lambda a, b: a > b) if higher_is_better else (lambda a, b: a < b)
    if val_loss is not None:
        return float(val_loss), lambda a, b: a < b
    return None, lambda a, b: True


def _seed_all(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def _deterministic():
    """Deterministic kernels for the fit, then the process's previous setting. warn_only: a CUDA
    op without a deterministic version warns instead of failing the job (the promise is CPU)."""
    import torch

    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def _copy_state(model) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _prefixed(tensors: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


# -- checkpoints -------------------------------------------------------------------------------

def _write_checkpoint(directory: Path, epoch: int, model, best_state: dict, optimizer, step: int,
                      result: FitResult, config: dict) -> None:
    """Write epoch N's checkpoint beside the previous one, then switch latest.json to it in one
    rename: a worker killed at any moment leaves one complete checkpoint."""
    import torch
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    name = f"epoch-{epoch:04d}"
    tmp = directory / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    tensors = {f"model.{k}": v for k, v in _copy_state(model).items()}
    tensors.update({f"best.{k}": v.clone() for k, v in best_state.items()})
    opt = optimizer.state_dict()
    scalars = {}
    for index, entries in opt["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{key}"] = value.detach().to("cpu", copy=True).contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    tensors["rng.torch"] = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
    for i, s in enumerate(cuda_states):
        tensors[f"rng.cuda.{i}"] = s
    np_state = np.random.get_state()
    state = {
        "format": CHECKPOINT_FORMAT, "epoch": epoch, "step": step, "config": config,
        "best_epoch": result.best_epoch, "best_value": result.best_value,
        "history": [asdict(r) for r in result.history],
        "optimizer": {"param_groups": opt["param_groups"], "scalars": scalars},
        "rng": {"numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
                "python": _jsonable(random.getstate()), "cuda": len(cuda_states)},
    }
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / TENSORS))
    (tmp / STATE).write_text(json.dumps(state))
    target = directory / name
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    pointer = directory / f".{LATEST}.tmp-{os.getpid()}"
    pointer.write_text(json.dumps({"format": CHECKPOINT_FORMAT, "epoch": epoch, "path": name}))
    os.replace(pointer, directory / LATEST)
    for old in directory.iterdir():
        if old.name != name and old.name != LATEST and (old.name.startswith("epoch-") or ".tmp-" in old.name):
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)


def _read_checkpoint(directory: Path, config: dict) -> tuple[dict, dict] | None:
    """The latest checkpoint's (tensors, state), or None when there is none usable (then the fit starts over)."""
    from safetensors.torch import load_file

    try:
        latest = json.loads((directory / LATEST).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable checkpoint pointer in %s: %s", directory, exc)
        return None
    folder = directory / str(latest.get("path", ""))
    try:
        state = json.loads((folder / STATE).read_text())
        if state.get("format") != CHECKPOINT_FORMAT or state.get("config") != config:
            log.warning("ignoring the checkpoint in %s: made by another configuration", folder)
            return None
        return load_file(str(folder / TENSORS)), state
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable checkpoint in %s: %s", folder, exc)
        return None


def _optimizer_state(tensors: dict, saved: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for index, entries in saved["scalars"].items():
        state.setdefault(int(index), {}).update(entries)
    return {"state": state, "param_groups": saved["param_groups"]}


def _set_rng(tensors: dict, saved: dict) -> None:
    import torch

    torch.set_rng_state(tensors["rng.torch"])
    if saved.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[f"rng.cuda.{i}"] for i in range(saved["cuda"])])
    kind, keys, pos, has_gauss, gauss = saved["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = saved["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value
