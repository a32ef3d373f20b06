"""Experiment tracking (training/compute/tracking.py), offline: MLflow on a local
file store and Weights & Biases in offline mode; the files each one wrote are
read back and checked. No Django needed, no network used."""

from __future__ import annotations

import json
import socket
import struct
import sys

import pytest

from training.compute.families import EpochReport
from training.compute.tracking import Tracker, final_metrics, tracker_from_env

PARAMS = {"family": "dmpnn", "ensemble": 2, "hparams": {"depth": 3, "max_lr": 0.001},
          "split": {"method": "scaffold", "sizes": [0.8, 0.1, 0.1], "seed": 0},
          "dataset": "ESOL v1 (sha256 0123abcd)"}
METRICS = {"per_target": {"logS (mol/L)": {"rmse": 0.71, "mae": 0.5, "r2": 0.8, "spearman": None}},
           "mean": {"rmse": 0.71, "mae": 0.5, "r2": 0.8, "spearman": None}}


def reports(n: int = 3) -> list[EpochReport]:
    return [EpochReport(epoch=e, train_loss=1.0 / e, val_loss=1.5 / e, val_metric=2.0 / e, seconds=0.25,
                        best_epoch=e) for e in range(1, n + 1)]


def model_dir(tmp_path):
    directory = tmp_path / "model"
    (directory / "members" / "0").mkdir(parents=True)
    (directory / "model.json").write_text(json.dumps({"family": "dmpnn"}))
    (directory / "members" / "0" / "config.json").write_text("{}")
    return directory


def run_one(tracker: Tracker, tmp_path, run_key="job-1", status="succeeded", members=2):
    tracker.start("ESOL dmpnn", PARAMS, run_key=run_key)
    for member in range(members):
        for report in reports():
            tracker.log_epoch(member, report)
    tracker.log_final(METRICS, model_dir(tmp_path))
    tracker.finish(status)


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "WANDB_API_KEY", "WANDB_MODE", "WANDB_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_off_by_default(clean_env, tmp_path):
    tracker = tracker_from_env()
    assert not tracker.enabled and tracker.problems == []
    run_one(tracker, tmp_path)  # every call is a no-op, and nothing is written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert not tracker_from_env({"WANDB_API_KEY": "x" * 40, "WANDB_MODE": "disabled"}).enabled


def test_the_packages_are_imported_only_when_asked_for():
    import subprocess

    code = ("import sys; from training.compute.tracking import tracker_from_env; t = tracker_from_env({}); "
            "print(sorted(m for m in ('mlflow', 'wandb') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_final_metrics_flattens_and_skips_uncomputable():
    flat = final_metrics(METRICS)
    assert flat["test/logS _mol_L_/rmse"] == 0.71
    assert flat["test/mean/r2"] == 0.8
    assert not any(k.endswith("spearman") for k in flat)


# ---------------------------------------------------------------- MLflow

def mlflow_run_dir(store):
    runs = [p for p in store.glob("*/*") if p.is_dir() and (p / "meta.yaml").exists()]
    assert len(runs) == 1, runs
    return runs[0]


def test_mlflow_file_store(clean_env, tmp_path):
    store = tmp_path / "mlruns"
    clean_env.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    clean_env.setenv("MLFLOW_EXPERIMENT_NAME", "esol")
    tracker = tracker_from_env()
    assert tracker.names == ["MLflow"]
    run_one(tracker, tmp_path)
    assert tracker.problems == []

    run = mlflow_run_dir(store)
    params = {p.name: p.read_text() for p in (run / "params").rglob("*") if p.is_file()}
    assert params["family"] == "dmpnn" and params["hparams.depth"] == "3" and params["split.method"] == "scaffold"
    assert params["dataset"] == "ESOL v1 (sha256 0123abcd)"
    # One line per epoch: "<timestamp> <value> <step>".
    for member in (0, 1):
        lines = (run / "metrics" / f"member_{member}" / "train_loss").read_text().split("\n")
        history = [line.split() for line in lines if line]
        assert [(float(v), int(s)) for _, v, s in history] == [(1.0, 1), (0.5, 2), (pytest.approx(1 / 3), 3)]
        assert (run / "metrics" / f"member_{member}" / "val_metric").exists()
    final = (run / "metrics" / "test" / "mean" / "rmse").read_text().split()
    assert float(final[1]) == 0.71
    assert not (run / "metrics" / "test" / "mean" / "spearman").exists()
    assert json.loads((run / "artifacts" / "model" / "model.json").read_text()) == {"family": "dmpnn"}
    assert (run / "artifacts" / "model" / "members" / "0" / "config.json").exists()
    meta = (run / "meta.yaml").read_text()
    assert "status: 3" in meta  # RunStatus.FINISHED
    assert "esol" in (run.parent / "meta.yaml").read_text()


def test_mlflow_resumed_job_continues_its_run_and_cancel_is_killed(clean_env, tmp_path):
    store = tmp_path / "mlruns"
    clean_env.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    first = tracker_from_env()
    first.start("ESOL dmpnn", PARAMS, run_key="job-7")
    first.log_epoch(0, reports(1)[0])
    # The worker dies here: no finish. The next attempt resumes from epoch 2.
    second = tracker_from_env()
    second.start("ESOL dmpnn", PARAMS, run_key="job-7")
    for report in reports(3)[1:]:
        second.log_epoch(0, report)
    second.finish("cancelled")
    run = mlflow_run_dir(store)
    steps = [int(line.split()[2]) for line in (run / "metrics" / "member_0" / "train_loss").read_text().split("\n")
             if line]
    assert steps == [1, 2, 3]
    assert "status: 5" in (run / "meta.yaml").read_text()  # RunStatus.KILLED


def test_a_broken_tracker_never_fails_the_run(clean_env, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    clean_env.setenv("MLFLOW_TRACKING_URI", (blocker / "mlruns").as_uri())
    tracker = tracker_from_env()
    run_one(tracker, tmp_path)  # raises nothing
    assert not tracker.enabled
    assert len(tracker.problems) == 1 and tracker.problems[0].startswith("MLflow tracking")


def test_a_missing_package_is_reported_not_raised(clean_env, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # what an install without wandb looks like
    tracker = tracker_from_env({"WANDB_MODE": "offline"})
    assert not tracker.enabled
    assert tracker.problems[0].startswith("Weights & Biases tracking is configured but could not start: "
                                          "ModuleNotFoundError")


# ---------------------------------------------------------------- Weights & Biases

def read_wandb_records(path):
    """The records of a .wandb file, with wandb's own protobuf definitions: the
    file is a LevelDB-style log (7-byte header ":W&B" + magic + version, then
    32 KiB blocks of chunks: crc32, length, type), wandb ships no reader."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, pos, pending, block = [], 7, b"", 32768
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        pos += 7
        if kind == 0 and length == 0:   # zero padding to the end of a block
            pos += left - 7
            continue
        pending += data[pos:pos + length]
        pos += length
        if kind in (1, 4):   # a full record, or the last chunk of one
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def items(update) -> dict:
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in update}


@pytest.fixture
def wandb_env(clean_env, tmp_path):
    for name, sub in (("WANDB_DIR", "wandb-dir"), ("WANDB_DATA_DIR", "wandb-data"), ("WANDB_CACHE_DIR", "wandb-cache"),
                      ("WANDB_CONFIG_DIR", "wandb-config"), ("WANDB_ARTIFACT_DIR", "wandb-artifacts")):
        (tmp_path / sub).mkdir()
        clean_env.setenv(name, str(tmp_path / sub))
    # A listening socket where W&B's server would be: offline, nothing may connect to it.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    clean_env.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
    clean_env.setenv("WANDB_MODE", "offline")
    yield tmp_path / "wandb-dir"
    try:
        server.accept()
        pytest.fail("W&B in offline mode connected to its server")
    except BlockingIOError:
        pass
    finally:
        server.close()


def test_wandb_offline_run(wandb_env, tmp_path):
    tracker = tracker_from_env()
    assert tracker.names == ["Weights & Biases"]
    run_one(tracker, tmp_path, run_key="job-9")
    assert tracker.problems == []

    runs = list((wandb_env / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and runs[0].name.endswith("-job-9")
    records = read_wandb_records(runs[0] / "run-job-9.wandb")
    kinds = [r.WhichOneof("record_type") for r in records]
    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert run.display_name == "ESOL dmpnn" and run.project == "biofm"
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["family"] == "dmpnn" and config["hparams"] == {"depth": 3, "max_lr": 0.001}

    history = [items(r.history.item) for r in records if r.WhichOneof("record_type") == "history"]
    member0 = [h for h in history if "member_0/train_loss" in h]
    assert [(h["member_0/epoch"], h["member_0/train_loss"]) for h in member0] == [
        (1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))]
    assert len([h for h in history if "member_1/val_metric" in h]) == 3

    summary = {}
    for r in records:
        if r.WhichOneof("record_type") == "summary":
            summary.update(items(r.summary.update))
    assert summary["test/mean/rmse"] == 0.71 and summary["biofm_status"] == "succeeded"

    artifact = next(r.artifact for r in records if r.WhichOneof("record_type") == "artifact")
    assert artifact.type == "model"
    assert sorted(m.path for m in artifact.manifest.contents) == ["members/0/config.json", "model.json"]
    assert kinds[-1] == "exit" and records[-1].exit.exit_code == 0


def test_wandb_failed_run_exits_nonzero(wandb_env, tmp_path):
    tracker = tracker_from_env()
    run_one(tracker, tmp_path, run_key=None, status="failed", members=1)
    (run_dir,) = (wandb_env / "wandb").glob("offline-run-*")
    (log,) = run_dir.glob("*.wandb")
    records = read_wandb_records(log)
    assert records[-1].exit.exit_code == 1
