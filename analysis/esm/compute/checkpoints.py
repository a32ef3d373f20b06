"""Finding, downloading and safely loading ESM-2 checkpoints.

Official files are found where fair-esm keeps them (torch hub's
``checkpoints`` directory), so weights a user already downloaded with
fair-esm are reused, and the ones we download are reused by fair-esm.

Every file goes through ``torch.load(weights_only=True)``. A checkpoint is a
pickle, and a full unpickle of a file someone uploaded or swapped in would run
arbitrary code; the only class the official ESM-2 files need beyond tensors
and containers is ``argparse.Namespace`` (the training config), so that is the
only one allowed.
"""

from __future__ import annotations

import argparse
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

# The model list and the search directories are the catalog's, which the
# inventory a worker reports uses too; re-exported here, where they always were.
from .catalog import ESM2_MODELS, ModelSpec, hub_checkpoints_dir, search_dirs  # noqa: F401
from .catalog import model_file as _model_file, regression_file as _regression_file

MODEL_URL = "https://dl.fbaipublicfiles.com/fair-esm/models/{name}.pt"
REGRESSION_URL = "https://dl.fbaipublicfiles.com/fair-esm/regression/{name}-contact-regression.pt"

CONTACT_KEYS = ("contact_head.regression.weight", "contact_head.regression.bias")

_SAFE_GLOBALS = [argparse.Namespace]
_SAFE_GLOBAL_NAMES = {"argparse.Namespace"}
# Checkpoint names are file names in a directory we control; nothing that
# could step outside it.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Official files nest the encoder under these prefixes; fair-esm strips them
# (first match only) before loading, and so do we, so that our state dict
# keys equal fair-esm's ESM2 module names.
_PREFIX_RE = re.compile(r"^(encoder\.sentence_encoder\.|encoder\.)")


class CheckpointError(Exception):
    """A checkpoint file exists but cannot be used."""


class WeightsMissing(CheckpointError):
    """The weights are not on disk and could not be downloaded."""


@dataclass
class Checkpoint:
    name: str
    num_layers: int
    embed_dim: int
    attention_heads: int
    token_dropout: bool
    # Keys as fair-esm's ESM2.state_dict() names them (prefixes stripped),
    # contact regression included when it was found. CPU tensors.
    state_dict: dict[str, torch.Tensor] = field(repr=False)
    has_contact_regression: bool
    path: Path
    regression_path: Path | None
    # Where the regression file was looked for, for the error raised when
    # contacts are asked of a checkpoint that has none.
    regression_hint: str = ""

    @property
    def identity(self) -> tuple:
        """What distinguishes two checkpoints on disk: path, size and mtime."""
        parts = []
        for p in (self.path, self.regression_path):
            if p is None:
                parts.append(None)
            else:
                st = p.stat()
                parts.append((str(p.resolve()), st.st_size, st.st_mtime_ns))
        return (self.name, *parts)


def load_checkpoint(
    name_or_path: str | Path,
    *,
    weights_dir: Path | None = None,
    allow_download: bool = True,
) -> Checkpoint:
    """Load an ESM-2 checkpoint by model name or from a local ``.pt`` path.

    A name is looked for as ``<name>.pt`` (and ``<name>-contact-regression.pt``)
    in ``weights_dir``, then in torch hub's checkpoints directory; names in
    ESM2_MODELS that are in neither place are downloaded there from fair-esm's
    URLs when ``allow_download`` is true. A path (anything ending in ``.pt`` or
    containing a directory separator) is used as is, with the regression file
    expected beside it, as fair-esm's ``load_model_and_alphabet_local`` does.

    The contact regression is optional: without it embeddings work and only
    contact maps are refused.
    """
    text = str(name_or_path)
    if text.endswith(".pt") or "/" in text or "\\" in text:
        model_path = Path(text).expanduser()
        name = model_path.stem
        regression_path = model_path.with_name(f"{name}-contact-regression.pt")
        if not model_path.is_file():
            raise WeightsMissing(f"No checkpoint file at {model_path}.")
        if not regression_path.is_file():
            regression_path = None
        hint = f"put {name}-contact-regression.pt in {model_path.parent}"
    else:
        name = text
        if not _NAME_RE.match(name):
            raise ValueError(f"{name!r} is neither a model name nor a path to a .pt file")
        model_path, regression_path, hint = _locate(name, weights_dir, allow_download)

    model_data = _safe_load(model_path)
    regression_data = _safe_load(regression_path) if regression_path else None
    return _build(name, model_data, regression_data, model_path, regression_path, hint)


def _locate(name: str, weights_dir: Path | None, allow_download: bool):
    dirs = search_dirs(weights_dir)
    hub_dir = dirs[-1]
    model_file, regression_file = _model_file(name), _regression_file(name)

    def find(filename: str) -> Path | None:
        return next((d / filename for d in dirs if (d / filename).is_file()), None)

    model_path, regression_path = find(model_file), find(regression_file)
    known = name in ESM2_MODELS
    problems = []
    if known and allow_download:
        if model_path is None:
            model_path, problem = _download(MODEL_URL.format(name=name), hub_dir / model_file)
            problems += [problem] if problem else []
        if regression_path is None and model_path is not None:
            # Small, and only needed for contacts: a failure here is not fatal.
            regression_path, _ = _download(REGRESSION_URL.format(name=name), hub_dir / regression_file)

    where = " or ".join(str(d) for d in dirs)
    hint = f"put {regression_file} in {where}"
    if model_path is None:
        missing = [model_file] + ([regression_file] if regression_path is None else [])
        if not known:
            why = f"{name!r} is not an official ESM-2 model ({', '.join(ESM2_MODELS)}), so it is never downloaded"
        elif not allow_download:
            why = "downloading is switched off"
        else:
            why = "the download failed: " + "; ".join(problems)
        raise WeightsMissing(
            f"Weights for {name} not found: {', '.join(missing)} missing from {where} ({why}). "
            f"Download {MODEL_URL.format(name=name)}"
            + (f" and {REGRESSION_URL.format(name=name)}" if regression_path is None else "")
            + f" and put the file{'s' if len(missing) > 1 else ''} in {where}."
        )
    return model_path, regression_path, hint


def _download(url: str, dest: Path) -> tuple[Path | None, str | None]:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Writes to a temporary file and renames it, so an interrupted
        # download never leaves a truncated checkpoint behind.
        torch.hub.download_url_to_file(url, str(dest), progress=False)
    except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError
        return None, f"{url}: {exc}"
    return dest, None


def _safe_load(path: Path) -> dict:
    try:
        with torch.serialization.safe_globals(_SAFE_GLOBALS):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        try:
            unsafe = [g for g in torch.serialization.get_unsafe_globals_in_checkpoint(path)
                      if g not in _SAFE_GLOBAL_NAMES]
        except Exception:  # not a zip checkpoint; the unpickler's message is all we have
            unsafe = []
        detail = f"it refers to {', '.join(unsafe)}" if unsafe else str(exc).splitlines()[-1]
        raise CheckpointError(
            f"Refusing to load {path}: {detail}, which an ESM-2 checkpoint never needs. "
            "Only tensors, containers and argparse.Namespace are allowed."
        ) from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"Cannot read {path} as a PyTorch checkpoint: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise CheckpointError(f"{path} is not a fair-esm checkpoint (no 'model' state dict).")
    return data


def _build(name, model_data, regression_data, model_path, regression_path, hint) -> Checkpoint:
    cfg = model_data.get("cfg")
    model_cfg = cfg.get("model") if isinstance(cfg, dict) else None
    if not isinstance(model_cfg, argparse.Namespace):
        raise CheckpointError(
            f"{model_path} is not an ESM-2 checkpoint (no cfg['model'] training config; "
            "ESM-1 and ESM-1b files are not supported)."
        )
    try:
        num_layers = int(model_cfg.encoder_layers)
        embed_dim = int(model_cfg.encoder_embed_dim)
        heads = int(model_cfg.encoder_attention_heads)
        token_dropout = bool(model_cfg.token_dropout)
    except AttributeError as exc:
        raise CheckpointError(f"{model_path}: the ESM-2 config lacks {exc.name}") from exc

    state = {_PREFIX_RE.sub("", k): v for k, v in model_data["model"].items()}
    has_regression = False
    if regression_data is not None:
        state.update({_PREFIX_RE.sub("", k): v for k, v in regression_data["model"].items()})
        has_regression = all(k in state for k in CONTACT_KEYS)
    return Checkpoint(
        name=name,
        num_layers=num_layers,
        embed_dim=embed_dim,
        attention_heads=heads,
        token_dropout=token_dropout,
        state_dict=state,
        has_contact_regression=has_regression,
        path=Path(model_path),
        regression_path=Path(regression_path) if has_regression else None,
        regression_hint=hint,
    )


def fair_esm_model(ckpt: Checkpoint):
    """fair-esm's own ESM2 and Alphabet with this checkpoint's weights.

    The reference our model is tested and benchmarked against. Built by
    fair-esm's ``load_model_and_alphabet_core`` from the tensors we already
    loaded safely, so fair-esm never unpickles anything itself.
    """
    from esm.pretrained import load_model_and_alphabet_core

    model_state = {k: v for k, v in ckpt.state_dict.items() if k not in CONTACT_KEYS}
    model_data = {
        "cfg": {"model": argparse.Namespace(
            encoder_layers=ckpt.num_layers,
            encoder_embed_dim=ckpt.embed_dim,
            encoder_attention_heads=ckpt.attention_heads,
            token_dropout=ckpt.token_dropout,
        )},
        "model": model_state,
    }
    regression_data = None
    if ckpt.has_contact_regression:
        regression_data = {"model": {k: ckpt.state_dict[k] for k in CONTACT_KEYS}}
    # fair-esm picks the ESM-2 code path by the name's prefix; a local file
    # may be called anything.
    name = ckpt.name if ckpt.name.startswith("esm2") else f"esm2_{ckpt.name}"
    model, alphabet = load_model_and_alphabet_core(name, model_data, regression_data)
    return model.eval(), alphabet
