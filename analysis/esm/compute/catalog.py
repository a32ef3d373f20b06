"""The published ESM-2 checkpoints and where a machine keeps them, without torch.

A GPU worker's parent process lists the checkpoints it has when it starts
(analysis/esm/inventory.py), and the web process reads the model names and
sizes for its form; neither should load torch (about 2 s and 200 MB) to read
a directory, so this module imports nothing heavy, and the package's
``__init__`` loads the torch modules only when one of their names is asked for.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelSpec:
    name: str
    num_layers: int
    embed_dim: int
    attention_heads: int
    parameters: str  # as published, e.g. "35M"
    # About how large the model file is, for "downloads on first use (N MB)":
    # the files hold float32 weights, 4 bytes a parameter.
    download_mb: int


ESM2_MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("esm2_t6_8M_UR50D", 6, 320, 20, "8M", 31),
        ModelSpec("esm2_t12_35M_UR50D", 12, 480, 20, "35M", 136),
        ModelSpec("esm2_t30_150M_UR50D", 30, 640, 20, "150M", 595),
        ModelSpec("esm2_t33_650M_UR50D", 33, 1280, 20, "650M", 2610),
        ModelSpec("esm2_t36_3B_UR50D", 36, 2560, 40, "3B", 11400),
    )
}


def model_file(name: str) -> str:
    return f"{name}.pt"


def regression_file(name: str) -> str:
    return f"{name}-contact-regression.pt"


def hub_checkpoints_dir() -> Path:
    """Where torch hub, and so fair-esm, caches downloaded weights.

    When torch is loaded it is asked (it knows a ``torch.hub.set_dir``);
    otherwise its documented rule gives the same place: ``$TORCH_HOME/hub``,
    ``$TORCH_HOME`` defaulting to ``$XDG_CACHE_HOME/torch``, that to
    ``~/.cache/torch``.
    """
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "hub"):
        return Path(torch.hub.get_dir()) / "checkpoints"
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(cache, "torch")
    return Path(os.path.expanduser(torch_home)) / "hub" / "checkpoints"


def search_dirs(weights_dir: Path | str | None) -> list[Path]:
    """The directories a model name is looked for in, in order: the
    operator's weights directory, then torch hub's cache (where downloads go)."""
    dirs = [Path(weights_dir)] if weights_dir else []
    dirs.append(hub_checkpoints_dir())
    return dirs


def installed_models(weights_dir: Path | str | None) -> dict[str, dict]:
    """The published checkpoints present on this machine: name -> where the
    file is, its size in bytes, and whether its contact regression is there
    too. Only reads directory entries; a file is checked when it is loaded."""
    dirs = search_dirs(weights_dir)
    found: dict[str, dict] = {}
    for name in ESM2_MODELS:
        for directory in dirs:
            path = directory / model_file(name)
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if not path.is_file():
                continue
            found[name] = {"path": str(path), "bytes": size,
                           "contacts": any((d / regression_file(name)).is_file() for d in dirs)}
            break
    return found
