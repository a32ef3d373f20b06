"""A trained model on disk and its predictions with uncertainty and applicability domain.

Layout of a saved model (nothing in it runs code when loaded):

    model.json              family, targets/tasks, members, conformal half-widths, the card
    members/<i>/...         member i as its family saves it (safetensors / skops + JSON)
    train_fps.safetensors   the training set's Morgan bits (packed uint8), for the applicability domain

`pack` zips such a folder for storage and download; `unpack` refuses anything
that could write outside the folder (absolute paths, `..`, links) or fill a disk.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from .families import Family, get_family
from .metrics import LABELS, PRIMARY

FORMAT = 1
AD_RADIUS = 2
AD_BITS = 2048
# A molecule is in the model's applicability domain when its largest Tanimoto
# similarity (Morgan radius 2, 2048 bits) to a training molecule is at least this:
# below about 0.3 on these fingerprints two molecules are usually unrelated, so a
# prediction there is an extrapolation and is flagged as such.
AD_THRESHOLD = 0.3
AD_METHOD = (f"largest Tanimoto similarity to the training set (Morgan radius {AD_RADIUS}, {AD_BITS} bits); "
             f"in domain at ≥ {AD_THRESHOLD}")
# unpack's limits: a bundle is a few forests or state dicts, far below these.
MAX_UNPACKED_BYTES = 2 * 1024**3
MAX_FILES = 10_000


def morgan_bits(smiles: list[str], radius: int = AD_RADIUS, size: int = AD_BITS) -> np.ndarray:
    """(n, size) bool Morgan bit fingerprints of canonical SMILES."""
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=size)
    out = np.zeros((len(smiles), size), dtype=bool)
    for i, text in enumerate(smiles):
        mol = Chem.MolFromSmiles(text)
        if mol is None:
            raise ValueError(f"molecule {i + 1}: RDKit cannot parse {text!r}")
        out[i] = generator.GetFingerprintAsNumPy(mol).astype(bool)
    return out


def max_tanimoto(query: np.ndarray, reference: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """(n,) largest Tanimoto similarity of each query fingerprint to any reference one."""
    if len(reference) == 0:
        return np.zeros(len(query))
    ref = reference.astype(np.float32)
    ref_counts = ref.sum(axis=1)
    out = np.empty(len(query))
    for start in range(0, len(query), chunk):
        q = query[start:start + chunk].astype(np.float32)
        common = q @ ref.T
        union = q.sum(axis=1)[:, None] + ref_counts[None, :] - common
        # Two empty fingerprints (no heavy atoms) are identical, not undefined.
        sim = np.where(union > 0, common / np.maximum(union, 1), 1.0)
        out[start:start + chunk] = sim.max(axis=1)
    return out


@dataclass
class Predictions:
    mean: np.ndarray                  # (n, T): values for regression targets, P(class 1) for classification
    std: np.ndarray | None            # (n, T) sd over the ensemble's members; None for one member
    interval: list[float | None] | None  # per target the conformal half-width (regression), else None
    max_similarity: np.ndarray        # (n,)
    in_domain: np.ndarray             # (n,) bool
    targets: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    interval_method: str | None = None
    domain_method: str = AD_METHOD


@dataclass
class TrainedModel:
    family: str
    members: list[Family]
    targets: list[str]
    tasks: list[str]
    train_fps: np.ndarray             # (n_train, AD_BITS) bool
    conformal: dict = field(default_factory=dict)   # {"alpha", "method", "half_widths": [..], "n": [..]}
    card: dict = field(default_factory=dict)
    cancelled: bool = False
    # The training run's own per-row predictions (pipeline only; not saved with the model).
    split_predictions: "SplitPredictions | None" = None

    @property
    def metrics(self) -> dict | None:
        """The test metrics (`metrics.score`'s {"per_target", "mean"}), None without a test set."""
        return self.card.get("metrics")

    def predict(self, smiles: list[str]) -> Predictions:
        """Predictions for canonical SMILES; the caller has already turned bad rows into row errors."""
        if not smiles:
            # Families' predict need at least one molecule (scikit-learn refuses 0 rows).
            values = np.zeros((len(self.members), 0, len(self.targets)))
        else:
            values = np.stack([member.predict(smiles) for member in self.members])
        std = values.std(axis=0) if len(self.members) > 1 else None
        widths = self.conformal.get("half_widths")
        similarity = max_tanimoto(morgan_bits(smiles), self.train_fps)
        return Predictions(mean=values.mean(axis=0), std=std,
                           interval=list(widths) if widths and any(w is not None for w in widths) else None,
                           max_similarity=similarity, in_domain=similarity >= AD_THRESHOLD,
                           targets=list(self.targets), tasks=list(self.tasks),
                           interval_method=self.conformal.get("method"))

    def describe(self) -> str:
        """The method and its test metric, e.g. "D-MPNN ×5, scaffold test RMSE 0.71"."""
        text = self.card.get("label") or self.family
        if len(self.members) > 1:
            text += f" ×{len(self.members)}"
        split = self.card.get("split", {}).get("method", "")
        metric = PRIMARY[self.tasks[0]]
        mean = (self.card.get("metrics") or {}).get("mean", {})
        value = mean.get(metric)
        if value is None:
            return f"{text}, no test metric ({split} split)" if split else f"{text}, no test metric"
        # A target without the metric on its test rows (one class only) is left out of the mean.
        covered = mean.get("n_targets", {}).get(metric, len(self.targets))
        over = "" if len(self.targets) == 1 else (
            f" (mean of {covered} targets)" if covered == len(self.targets) else
            f" (mean of {covered} of {len(self.targets)} targets)")
        where = f"{split} test" if split else "test"
        return f"{text}, {where} {LABELS[metric]} {value:.2f}{over}"

    def save(self, directory: Path) -> Path:
        from safetensors.numpy import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for i, member in enumerate(self.members):
            member.save(directory / "members" / str(i))
        save_file({"bits": np.packbits(self.train_fps, axis=1)}, str(directory / "train_fps.safetensors"),
                  metadata={"radius": str(AD_RADIUS), "size": str(AD_BITS)})
        config = {"format": FORMAT, "family": self.family, "members": len(self.members),
                  "targets": self.targets, "tasks": self.tasks, "conformal": self.conformal,
                  "cancelled": self.cancelled, "card": self.card}
        (directory / "model.json").write_text(json.dumps(config, indent=1, default=_json_number))
        return directory


def _json_number(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


def load_model(directory: Path) -> TrainedModel:
    from safetensors.numpy import load_file

    directory = Path(directory)
    try:
        config = json.loads((directory / "model.json").read_text())
    except FileNotFoundError:
        raise ValueError(f"{directory} holds no model (model.json is missing)") from None
    if config.get("format") != FORMAT:
        raise ValueError(f"model format {config.get('format')!r} is not {FORMAT}")
    try:
        cls = get_family(config["family"])
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    members = [cls.load(directory / "members" / str(i)) for i in range(int(config["members"]))]
    packed = load_file(str(directory / "train_fps.safetensors"))["bits"]
    fps = np.unpackbits(packed, axis=1, count=AD_BITS).astype(bool)
    return TrainedModel(family=config["family"], members=members, targets=config["targets"],
                        tasks=config["tasks"], train_fps=fps, conformal=config["conformal"],
                        card=config["card"], cancelled=config.get("cancelled", False))


def pack(directory: Path) -> bytes:
    """The folder as a zip (paths relative to it)."""
    directory = Path(directory)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_symlink():
                raise ValueError(f"{path.relative_to(directory)} is a link; a bundle holds plain files only")
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())
    return buffer.getvalue()


def _safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if not name or "\\" in name or path.is_absolute() or ".." in path.parts or ":" in path.parts[0]:
        raise ValueError(f"the archive entry {name!r} would be written outside the model folder")
    return path


def unpack(data: bytes, directory: Path) -> Path:
    """Unzip a packed model into `directory`, refusing unsafe or oversized archives."""
    directory = Path(directory)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ValueError("the model file is not a zip archive") from None
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_FILES:
            raise ValueError(f"the archive has {len(entries)} entries; at most {MAX_FILES} are allowed")
        total = 0
        for entry in entries:
            _safe_name(entry.filename)
            if stat.S_ISLNK(entry.external_attr >> 16):
                raise ValueError(f"the archive entry {entry.filename!r} is a link")
            total += entry.file_size
        if total > MAX_UNPACKED_BYTES:
            raise ValueError(f"the archive unpacks to {total} bytes; at most {MAX_UNPACKED_BYTES} are allowed")
        if "model.json" not in {entry.filename for entry in entries}:
            raise ValueError("the archive holds no model (model.json is missing)")
        directory.mkdir(parents=True, exist_ok=True)
        written = 0
        for entry in entries:
            target = directory.joinpath(*_safe_name(entry.filename).parts)
            if entry.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(entry) as source, open(target, "wb") as out:
                # file_size is the archive's claim; count what really comes out.
                while chunk := source.read(1 << 20):
                    written += len(chunk)
                    if written > MAX_UNPACKED_BYTES:
                        raise ValueError("the archive unpacks to more than it declares")
                    out.write(chunk)
    return directory


@dataclass
class SplitPredictions:
    """The training run's prediction for every row of its table, with the set it was in."""

    rows: list[int]
    smiles: list[str]
    split: list[str]                  # "train", "val" or "test" (or "" for a row in no set)
    y: np.ndarray
    mean: np.ndarray
    std: np.ndarray | None
    targets: list[str]
    tasks: list[str]

    def records(self) -> list[dict]:
        """One dict per row and target: the long format of predictions.csv."""
        out = []
        for i, row in enumerate(self.rows):
            for t, target in enumerate(self.targets):
                label = self.y[i, t]
                out.append({"row": row, "smiles": self.smiles[i], "split": self.split[i], "target": target,
                            "task": self.tasks[t], "y": None if np.isnan(label) else float(label),
                            "prediction": float(self.mean[i, t]),
                            "std": None if self.std is None else float(self.std[i, t])})
        return out
