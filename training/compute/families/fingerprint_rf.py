"""The fingerprint baseline: Morgan count fingerprints and RDKit 2D descriptors
with a random forest, one forest per target (scikit-learn).

It is the model every chemist checks first, so it has to be honest rather than
tuned: the features are RDKit's, the forest is scikit-learn's, and each target's
forest sees only the rows labelled for that target. Forests are stored with
`skops.io` and loaded with an explicit list of trusted types, never a pickle.
"""

from __future__ import annotations

import functools
import json
import math
import os
from pathlib import Path

import numpy as np

from ..table import CLASSIFICATION, REGRESSION
from . import Family, Hyperparameter, register_family

# Worker processes the forest may use; one by default, so two jobs on one
# machine do not fight over its cores.
N_JOBS_ENV = "BIOFM_TRAINING_N_JOBS"
# The one rule for descriptor values the forest cannot take: a descriptor RDKit
# fails to compute, or whose value is NaN, infinite or beyond float32's range
# (scikit-learn's trees work in float32), is 0.
DESCRIPTOR_RULE = ("An RDKit 2D descriptor that fails, is NaN or infinite, or exceeds float32's range "
                   "(|x| > 1e30) is set to 0.")
_DESCRIPTOR_LIMIT = 1e30
# The types a stored forest may contain beyond skops' defaults (numpy arrays,
# scikit-learn estimators): the fitted trees. Anything else in a file is refused.
TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]
MAX_FEATURES = {"sqrt": "sqrt", "log2": "log2", "third": 1 / 3, "all": 1.0}


def n_jobs() -> int:
    value = os.environ.get(N_JOBS_ENV, "1")
    try:
        return max(1, int(value))
    except ValueError:
        raise ValueError(f"{N_JOBS_ENV} must be a whole number, not {value!r}") from None


def descriptor_names() -> list[str]:
    from rdkit.Chem import Descriptors

    return [name for name, _ in Descriptors._descList]


@functools.lru_cache(maxsize=50_000)
def _descriptors(smiles: str) -> np.ndarray:
    """One molecule's descriptors. Cached: they are most of the featurising time, and an
    ensemble's members and the pipeline's predictions featurise the same molecules again
    (50,000 molecules are about 40 MB)."""
    from rdkit import Chem
    from rdkit.Chem import Descriptors

    mol = Chem.MolFromSmiles(smiles)
    out = np.zeros(len(Descriptors._descList), dtype=np.float32)
    for j, (_, fn) in enumerate(Descriptors._descList):
        try:
            value = float(fn(mol))
        except Exception:  # RDKit raises assorted errors on odd molecules; the rule is 0
            value = 0.0
        if not math.isfinite(value) or abs(value) > _DESCRIPTOR_LIMIT:
            value = 0.0
        out[j] = value
    out.flags.writeable = False
    return out


def featurise(smiles: list[str], radius: int, size: int, descriptors: bool) -> np.ndarray:
    """(n, size [+ len(_descList)]) float32: Morgan counts, then the descriptors."""
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=size)
    n_descriptors = len(descriptor_names()) if descriptors else 0
    out = np.zeros((len(smiles), size + n_descriptors), dtype=np.float32)
    for i, text in enumerate(smiles):
        mol = Chem.MolFromSmiles(text)
        if mol is None:
            raise ValueError(f"molecule {i + 1}: RDKit cannot parse {text!r}")
        out[i, :size] = generator.GetCountFingerprintAsNumPy(mol)
        if descriptors:
            out[i, size:] = _descriptors(text)
    return out


@register_family
class FingerprintForest(Family):
    name = "fingerprint_rf"
    label = "Random forest on Morgan counts + RDKit 2D"
    method = ("Random forest (scikit-learn) on Morgan count fingerprints and RDKit 2D descriptors, "
              "one forest per target")
    uses_epochs = False
    hyperparameters = (
        Hyperparameter("radius", "int", 2, 1, 4, help="Morgan fingerprint radius (2 = ECFP4-like)."),
        Hyperparameter("fp_size", "int", 2048, 256, 8192, searchable=False, help="Fingerprint length (bits)."),
        Hyperparameter("descriptors", "bool", True, help="Add RDKit's 2D descriptors to the fingerprint."),
        Hyperparameter("n_estimators", "int", 500, 10, 2000, help="Trees per forest."),
        Hyperparameter("max_depth", "int", 0, 0, 200, help="Deepest tree; 0 = grow until the leaves are pure."),
        Hyperparameter("min_samples_leaf", "int", 1, 1, 50, help="Fewest training rows in a leaf."),
        Hyperparameter("max_features", "choice", "third", choices=tuple(MAX_FEATURES),
                       help="Features tried per split: sqrt, log2, a third or all of them."),
    )

    def __init__(self, hparams: dict, tasks: list[str], seed: int = 0):
        super().__init__(hparams, tasks, seed)
        self.forests: list = []
        self.features: list[str] = []

    def display_label(self) -> str:
        return self.label if self.hparams["descriptors"] else "Random forest on Morgan counts"

    def display_method(self) -> str:
        if self.hparams["descriptors"]:
            return self.method
        return "Random forest (scikit-learn) on Morgan count fingerprints, one forest per target"

    def _features(self, smiles: list[str]) -> np.ndarray:
        h = self.hparams
        return featurise(smiles, h["radius"], h["fp_size"], h["descriptors"])

    def _feature_names(self) -> list[str]:
        h = self.hparams
        names = [f"Morgan count bit {i} (radius ≤ {h['radius']})" for i in range(h["fp_size"])]
        return names + (descriptor_names() if h["descriptors"] else [])

    def _forest(self, task: str):
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        h = self.hparams
        cls = RandomForestRegressor if task == REGRESSION else RandomForestClassifier
        return cls(n_estimators=h["n_estimators"], max_depth=h["max_depth"] or None,
                   min_samples_leaf=h["min_samples_leaf"], max_features=MAX_FEATURES[h["max_features"]],
                   random_state=self.seed, n_jobs=n_jobs())

    def fit(self, smiles, y, val_smiles, val_y, callbacks) -> None:
        # The validation set is not used: a forest has no epochs to stop early; the
        # pipeline still uses it for the conformal interval.
        y = np.asarray(y, dtype=np.float64).reshape(len(smiles), len(self.task_types))
        x = self._features(smiles)
        self.features = self._feature_names()
        self.forests = []
        for t, task in enumerate(self.task_types):
            labelled = ~np.isnan(y[:, t])
            if not labelled.any():
                raise ValueError(f"target {t + 1} has no labelled training rows")
            target = y[labelled, t]
            if task == CLASSIFICATION:
                target = target.astype(int)
                if len(set(target.tolist())) < 2:
                    raise ValueError(f"target {t + 1} has one class only in the training rows")
            self.forests.append(self._forest(task).fit(x[labelled], target))

    def predict(self, smiles) -> np.ndarray:
        if not self.forests:
            raise RuntimeError("the forest is not trained")
        x = self._features(smiles)
        out = np.empty((len(smiles), len(self.forests)), dtype=np.float64)
        for t, (forest, task) in enumerate(zip(self.forests, self.task_types)):
            if task == REGRESSION:
                out[:, t] = forest.predict(x)
            else:
                out[:, t] = forest.predict_proba(x)[:, list(forest.classes_).index(1)]
        return out

    def save(self, directory: Path) -> None:
        import skops.io

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for t, forest in enumerate(self.forests):
            skops.io.dump(forest, directory / f"forest_{t}.skops")
        config = {"family": self.name, "hparams": self.hparams, "tasks": self.task_types, "seed": self.seed,
                  "features": self.features, "descriptor_rule": DESCRIPTOR_RULE}
        (directory / "config.json").write_text(json.dumps(config, indent=1))

    @classmethod
    def load(cls, directory: Path) -> "FingerprintForest":
        import skops.io

        directory = Path(directory)
        config = json.loads((directory / "config.json").read_text())
        model = cls(config["hparams"], config["tasks"], config["seed"])
        model.features = config["features"]
        if model.features != model._feature_names():
            # Another RDKit version with another descriptor list would feed the trees
            # the wrong columns; refuse rather than predict nonsense.
            raise ValueError("this forest was trained on other RDKit descriptors than this RDKit computes")
        for t in range(len(model.task_types)):
            path = directory / f"forest_{t}.skops"
            untrusted = [name for name in skops.io.get_untrusted_types(file=path) if name not in TRUSTED_TYPES]
            if untrusted:
                raise ValueError(f"{path.name} contains types that are not trusted: {', '.join(untrusted)}")
            model.forests.append(skops.io.load(path, trusted=TRUSTED_TYPES))
        return model

    def feature_importances(self, top: int = 30) -> list[dict] | None:
        """Impurity-based importances (mean decrease in impurity), averaged over the targets' forests."""
        if not self.forests:
            return None
        importance = np.mean([forest.feature_importances_ for forest in self.forests], axis=0)
        order = np.argsort(-importance, kind="stable")[:top]
        return [{"feature": self.features[i], "importance": float(importance[i]),
                 "method": "mean decrease in impurity, averaged over the targets' forests"}
                for i in order if importance[i] > 0]
