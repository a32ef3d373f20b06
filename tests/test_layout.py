"""The one layout rule: every feature's compute/ runs without Django, so it is
testable alone and a worker imports it only when a job needs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FEATURES = ["analysis/protparam", "analysis/esm", "analysis/atomica", "design", "training"]
# Kinds of a feature that live in a package of their own inside it (training's
# predict kind): the same files but apps.py and compute/, which are the feature's.
SUB_FEATURES = ["training/predict"]
FEATURE_FILES = ["kind.py", "forms.py", "views.py", "api.py", "jobs.py", "outputs.py", "apps.py", "compute/__init__.py"]


def compute_modules() -> list[str]:
    modules = []
    for path in sorted(ROOT.glob("*/**/compute/*.py")):
        if ".venv" in path.parts or "node_modules" in path.parts:
            continue
        rel = path.relative_to(ROOT).with_suffix("")
        modules.append(".".join(rel.parts).removesuffix(".__init__"))
    return modules


def _has(feature: str, name: str) -> bool:
    """A module, or a package of that name (training's views/)."""
    path = ROOT / feature / name
    return path.exists() or (path.suffix == ".py" and (path.with_suffix("") / "__init__.py").exists())


def test_every_feature_has_the_same_files():
    for feature in FEATURES:
        missing = [f for f in FEATURE_FILES if not _has(feature, f)]
        assert not missing, f"{feature} lacks {missing}"
        assert (ROOT / feature / "templates").is_dir(), f"{feature} has no templates/"
    for sub in SUB_FEATURES:
        missing = [f for f in FEATURE_FILES if f not in ("apps.py", "compute/__init__.py") and not _has(sub, f)]
        assert not missing, f"{sub} lacks {missing}"


def test_compute_packages_import_without_django():
    modules = compute_modules()
    assert len(modules) >= 15, modules  # the walk found the packages
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('django', 'workers', 'accounts', 'celery', 'ninja'))\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    # A clean interpreter without DJANGO_SETTINGS_MODULE, as a script would run it.
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"compute code pulled in the portal: {done.stdout}{done.stderr[-2000:]}"
