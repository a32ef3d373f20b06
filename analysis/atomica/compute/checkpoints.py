"""Loading ATOMICA checkpoints: ``config.json`` + a state-dict ``.pt`` file.

Two layouts exist and both load:

- ``PredictionModel``: the embedding network's keys only (what
  ``PredictionModel.get_config()`` + ``state_dict()`` write).
- ``DenoisePretrainModel``: what ATOMICA's pretraining writes and what the
  released checkpoint on the Hugging Face Hub uses. It has the same keys plus
  the denoising and masking heads, which embedding does not use and which
  are dropped (ATOMICA itself loads these files with ``strict=False``). Any
  *other* missing or unexpected key is an error, so a renamed or truncated
  file cannot load silently.

State dicts are read with ``torch.load(weights_only=True)``: a ``.pt`` file is
a pickle, and a full unpickle of a swapped-in file would run arbitrary code.
Plain state dicts need no extra classes, so none are allowed.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .model import AtomicaConfig, AtomicaModel

HF_REPO_ID = "ada-f/ATOMICA"
HF_CONFIG_FILENAME = "ATOMICA_checkpoints/pretrain/pretrain_model_config.json"
HF_WEIGHTS_FILENAME = "ATOMICA_checkpoints/pretrain/pretrain_model_weights.pt"
# Directory holding the two files (under the same relative paths as on the
# Hub, or directly); checked before any download.
CHECKPOINT_DIR_ENV = "ATOMICA_CHECKPOINT_DIR"

MODEL_TYPES = ("PredictionModel", "DenoisePretrainModel")

# Heads of DenoisePretrainModel (and its optional parts) that embedding ignores.
_HEAD_KEY_RE = re.compile(
    r"^(encoder\.encoder\.(global_denoise_|local_denoise_|torsion_edge_embedder\.|tor_bond_conv\.|"
    r"tor_final_layer\.|final_tp_tor\.)|masked_ffn\.|top_translation_scale_ffn\.|"
    r"top_rotation_scale_ffn\.|top_scale_noise_ffn\.|modality_embedding\.)"
)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unsafe to load, or does not fit the network."""


@dataclass(frozen=True)
class CheckpointInfo:
    config: AtomicaConfig
    model_type: str
    ignored_keys: tuple[str, ...]  # head keys dropped from a pretraining checkpoint


def read_config(path: str | Path) -> tuple[AtomicaConfig, str]:
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"ATOMICA config not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"ATOMICA config {path} is not valid JSON: {exc}") from None
    model_type = raw.get("model_type")
    if model_type not in MODEL_TYPES:
        raise CheckpointError(
            f"ATOMICA config {path}: model_type {model_type!r} is not supported (expected one of {MODEL_TYPES})")
    if "nonlinearity" in raw and raw["nonlinearity"] != "relu":
        raise CheckpointError(f"ATOMICA config {path}: nonlinearity {raw['nonlinearity']!r} is not supported")
    return AtomicaConfig.from_dict(raw), model_type


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict with ``weights_only=True``; never a full unpickle."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ATOMICA weights not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = re.search(r"GLOBAL (\S+)", str(exc))
        what = f"the Python object {refused.group(1)}" if refused else "Python objects"
        raise CheckpointError(
            f"{path} is not a plain state dict: it needs {what}, which safe loading "
            "(torch.load(weights_only=True)) refuses to unpickle. Save the weights with "
            "torch.save(model.state_dict(), path) instead of pickling the whole model.") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    # Files saved from a DistributedDataParallel wrapper prefix every key.
    if state and all(key.startswith("module.") for key in state):
        state = {key[len("module."):]: value for key, value in state.items()}
    return dict(state)


def load_model(config_path: str | Path, weights_path: str | Path) -> AtomicaModel:
    """An :class:`AtomicaModel` in eval mode, from either checkpoint layout."""
    model, _ = load_model_with_info(config_path, weights_path)
    return model


def load_model_with_info(config_path: str | Path, weights_path: str | Path) -> tuple[AtomicaModel, CheckpointInfo]:
    config, model_type = read_config(config_path)
    state = load_state_dict(weights_path)
    ignored: list[str] = []
    if model_type == "DenoisePretrainModel":
        ignored = [key for key in state if _HEAD_KEY_RE.match(key)]
        state = {key: value for key, value in state.items() if not _HEAD_KEY_RE.match(key)}

    model = AtomicaModel(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(key for key in set(expected) & set(state) if expected[key].shape != state[key].shape)
    if missing or unexpected or wrong_shape:
        problems = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)):
            if keys:
                shown = ", ".join(keys[:5]) + (f", ... ({len(keys)} in all)" if len(keys) > 5 else "")
                problems.append(f"{label}: {shown}")
        raise CheckpointError(
            f"{weights_path} does not fit the ATOMICA network described by {config_path} "
            f"({model_type}): " + "; ".join(problems))
    model.load_state_dict(state, strict=True)
    model.eval()
    return model, CheckpointInfo(config=config, model_type=model_type, ignored_keys=tuple(sorted(ignored)))


def _find_local(directory: Path) -> tuple[Path, Path] | None:
    for config_path, weights_path in (
        (directory / HF_CONFIG_FILENAME, directory / HF_WEIGHTS_FILENAME),
        (directory / Path(HF_CONFIG_FILENAME).name, directory / Path(HF_WEIGHTS_FILENAME).name),
    ):
        if config_path.is_file() and weights_path.is_file():
            return config_path, weights_path
    return None


def pretrained_checkpoint_paths(checkpoint_dir: str | Path | None = None, *, download: bool = True,
                                cache_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Paths of the released ATOMICA config and weights.

    Looked for in ``checkpoint_dir`` (or ``$ATOMICA_CHECKPOINT_DIR``) first;
    otherwise fetched from the Hugging Face Hub (``ada-f/ATOMICA``) with
    ``hf_hub_download``, which reuses its cache on later calls. ``download=False``
    or no network and no local copy -> :class:`CheckpointError` saying which
    files to put where.
    """
    directory = checkpoint_dir or os.environ.get(CHECKPOINT_DIR_ENV)
    if directory:
        found = _find_local(Path(directory))
        if found:
            return found
    where = (f"into {directory} (either under those paths or as the bare file names)" if directory else
             f"into a directory and pass it as checkpoint_dir or set ${CHECKPOINT_DIR_ENV}")
    how_to = (f"Download {HF_CONFIG_FILENAME} and {HF_WEIGHTS_FILENAME} from "
              f"https://huggingface.co/{HF_REPO_ID} {where}.")
    if not download:
        raise CheckpointError(f"ATOMICA checkpoint not found locally and downloading is off. {how_to}")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise CheckpointError(f"huggingface_hub is not installed, so the checkpoint cannot be fetched. {how_to}") \
            from None
    try:
        config_path = hf_hub_download(HF_REPO_ID, HF_CONFIG_FILENAME, cache_dir=cache_dir)
        weights_path = hf_hub_download(HF_REPO_ID, HF_WEIGHTS_FILENAME, cache_dir=cache_dir)
    except Exception as exc:  # offline, proxy, auth, disk: all end the same way for the caller
        raise CheckpointError(f"Could not fetch the ATOMICA checkpoint from the Hugging Face Hub "
                              f"({type(exc).__name__}: {exc}). {how_to}") from exc
    return Path(config_path), Path(weights_path)


def load_pretrained(checkpoint_dir: str | Path | None = None, *, download: bool = True,
                    cache_dir: str | Path | None = None) -> AtomicaModel:
    """The released pretrained ATOMICA model (see :func:`pretrained_checkpoint_paths`)."""
    config_path, weights_path = pretrained_checkpoint_paths(checkpoint_dir, download=download, cache_dir=cache_dir)
    return load_model(config_path, weights_path)
