"""Optional experiment tracking: MLflow and Weights & Biases, off by default.

The environment turns each one on, as their own tools read it:

    MLFLOW_TRACKING_URI              -> MLflow (a server, or a local store: file:///path/mlruns)
    MLFLOW_EXPERIMENT_NAME           -> the experiment (default "biofm")
    WANDB_API_KEY or WANDB_MODE=offline -> Weights & Biases (WANDB_PROJECT, default "biofm";
                                        WANDB_MODE=disabled turns it off again)

A run logs its parameters at `start`, every epoch of every ensemble member with
`log_epoch`, the test metrics and the model folder (as artifacts) with
`log_final`, and its end state with `finish`. Both packages are optional at
runtime and imported only when their variable is set, so the web process and
a worker without them never import either.

Tracking is a side channel: a tracker that fails (a server down, a package
missing) never fails the training run. The backend is switched off for the rest
of the run and the reason is kept in `Tracker.problems`, which the runner puts
in the job's result so the failure is not silent.
"""

from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger(__name__)

DEFAULT_PROJECT = "biofm"

# MLflow names allow letters, digits, "_-. /"; W&B is laxer. One rule for both
# keeps the two stores' keys identical; "/" separates the parts of a key, so a
# target named "logS (mol/L)" must not bring its own.
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. ]")

# How the runner's final job states map onto each store's.
_MLFLOW_STATUS = {"succeeded": "FINISHED", "failed": "FAILED", "cancelled": "KILLED"}


def metric_key(*parts: Any) -> str:
    return "/".join(_UNSAFE.sub("_", str(p)) for p in parts)


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"hparams": {"depth": 3}} -> {"hparams.depth": 3}: MLflow params are flat."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def final_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The pipeline's score ({"per_target": {t: {m: v}}, "mean": {m: v}}) as flat
    metric keys "test/<target>/<metric>" and "test/mean/<metric>". A metric that
    could not be computed (None: one class in the test set) is left out."""
    out: dict[str, float] = {}
    groups = dict(metrics.get("per_target") or {})
    if metrics.get("mean"):
        groups["mean"] = metrics["mean"]
    for group, values in groups.items():
        for name, value in (values or {}).items():
            if _number(value) is not None:
                out[metric_key("test", group, name)] = float(value)
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def epoch_metrics(member: int, report: Any) -> dict[str, float]:
    """One EpochReport as "member_<i>/<field>" keys (None fields left out)."""
    values = {"epoch": report.epoch, "train_loss": report.train_loss, "val_loss": report.val_loss,
              "val_metric": report.val_metric, "seconds": report.seconds, "best_epoch": report.best_epoch}
    return {metric_key(f"member_{member}", k): float(v) for k, v in values.items() if _number(v) is not None}


class _MLflow:
    name = "MLflow"

    def __init__(self, uri: str, experiment: str):
        if uri.startswith("file:") or "://" not in uri:
            # MLflow 3 keeps its file store only on request; a local store is
            # what the variable asked for here, so ask (an operator may still
            # set MLFLOW_ALLOW_FILE_STORE=false).
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        self.experiment = experiment
        self.run_id: str | None = None

    def start(self, run_name: str, params: dict, run_key: str | None) -> None:
        from mlflow.entities import Param

        found = self.client.get_experiment_by_name(self.experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(self.experiment)
        if run_key:
            # A job resumed on another worker carries on its MLflow run instead of starting a second one.
            earlier = self.client.search_runs([experiment_id], filter_string=f"tags.`biofm.run_key` = '{run_key}'",
                                              max_results=1)
            if earlier:
                self.run_id = earlier[0].info.run_id
                self.client.update_run(self.run_id, status="RUNNING")
                return
        tags = {"biofm.run_key": run_key} if run_key else {}
        self.run_id = self.client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id
        # MLflow caps a parameter value at 6000 characters.
        batch = [Param(k, str(v)[:6000]) for k, v in flatten(params).items()]
        for i in range(0, len(batch), 100):  # log_batch takes at most 100 params
            self.client.log_batch(self.run_id, params=batch[i:i + 100])

    def log_epoch(self, member: int, report: Any) -> None:
        for key, value in epoch_metrics(member, report).items():
            if not key.endswith("/epoch"):
                self.client.log_metric(self.run_id, key, value, step=int(report.epoch))

    def log_final(self, metrics: dict, model_dir: Path | None) -> None:
        for key, value in final_metrics(metrics).items():
            self.client.log_metric(self.run_id, key, value)
        if model_dir is not None:
            self.client.log_artifacts(self.run_id, str(model_dir), artifact_path="model")

    def finish(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status=_MLFLOW_STATUS.get(status, "FAILED"))


class _Wandb:
    name = "Weights & Biases"

    def __init__(self, environ: Mapping[str, str]):
        self.offline = environ.get("WANDB_MODE") == "offline"
        if self.offline:
            # Offline means no network at all: no crash reports either.
            os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
        import wandb

        self.wandb = wandb
        self.project = environ.get("WANDB_PROJECT") or DEFAULT_PROJECT
        self.dir = environ.get("WANDB_DIR") or None
        self.run = None
        self.members: set[int] = set()

    def start(self, run_name: str, params: dict, run_key: str | None) -> None:
        settings = self.wandb.Settings(
            silent=True, x_disable_stats=True, x_disable_machine_info=True,
            disable_git=True, save_code=False, console="off")
        self.run = self.wandb.init(
            project=self.project, name=run_name, dir=self.dir, config=dict(params), reinit="create_new", settings=settings,
            mode="offline" if self.offline else None,
            id=metric_key(run_key).replace("/", "-").replace(" ", "-") if run_key else None,
            resume="allow" if run_key else None)

    def log_epoch(self, member: int, report: Any) -> None:
        if member not in self.members:
            # Each member's curves are drawn against its own epoch number.
            self.run.define_metric(f"member_{member}/*", step_metric=f"member_{member}/epoch")
            self.members.add(member)
        self.run.log(epoch_metrics(member, report))

    def log_final(self, metrics: dict, model_dir: Path | None) -> None:
        self.run.summary.update(final_metrics(metrics))
        if model_dir is not None:
            artifact = self.wandb.Artifact(metric_key(f"model-{self.run.id}").replace("/", "-"), type="model")
            artifact.add_dir(str(model_dir))
            self.run.log_artifact(artifact)

    def finish(self, status: str) -> None:
        self.run.summary["biofm_status"] = status
        self.run.finish(exit_code=0 if status == "succeeded" else 1)
        # wandb keeps a service process and its settings per Python process; a
        # worker runs many jobs, so each run ends them and the next starts afresh.
        self.wandb.teardown()


class Tracker:
    """The trackers the environment turned on, called as one. With none on,
    every method does nothing."""

    def __init__(self, backends: list | None = None, problems: list[str] | None = None):
        self.backends = list(backends or [])
        self.problems: list[str] = list(problems or [])

    @property
    def enabled(self) -> bool:
        return bool(self.backends)

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.backends]

    def _each(self, method: str, *args) -> None:
        for backend in list(self.backends):
            try:
                getattr(backend, method)(*args)
            except Exception as exc:  # noqa: BLE001 - see the module docstring: tracking never fails a run
                message = f"{backend.name} tracking stopped at {method}: {type(exc).__name__}: {exc}"
                log.warning(message)
                self.problems.append(message)
                self.backends.remove(backend)

    def start(self, run_name: str, params: dict, run_key: str | None = None) -> None:
        """`run_key` (the job's uuid) names the run so a resumed job continues it."""
        self._each("start", run_name, params, run_key)

    def log_epoch(self, member: int, report: Any) -> None:
        self._each("log_epoch", member, report)

    def log_final(self, metrics: dict, model_dir: Path | str | None = None) -> None:
        self._each("log_final", metrics or {}, Path(model_dir) if model_dir else None)

    def finish(self, status: str) -> None:
        """`status`: "succeeded", "failed" or "cancelled"."""
        self._each("finish", status)
        self.backends = []


def tracker_from_env(environ: Mapping[str, str] | None = None) -> Tracker:
    environ = os.environ if environ is None else environ
    backends, problems = [], []
    wanted = []
    if environ.get("MLFLOW_TRACKING_URI"):
        wanted.append(("MLflow", lambda: _MLflow(environ["MLFLOW_TRACKING_URI"],
                                                 environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_PROJECT)))
    mode = environ.get("WANDB_MODE", "")
    if mode != "disabled" and (environ.get("WANDB_API_KEY") or mode == "offline"):
        wanted.append(("Weights & Biases", lambda: _Wandb(environ)))
    for name, make in wanted:
        try:
            backends.append(make())
        except Exception as exc:  # noqa: BLE001 - a missing package is reported, not raised
            message = f"{name} tracking is configured but could not start: {type(exc).__name__}: {exc}"
            log.warning(message)
            problems.append(message)
    return Tracker(backends, problems)
