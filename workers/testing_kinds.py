"""A controllable job kind used by the lifecycle tests (worker kill, cancel,
concurrency). Registered only when BIOFM_ENABLE_TEST_KINDS is set."""

from __future__ import annotations

import os
import time

from . import kinds
from .errors import JobCancelled, JobInputError, ParamsError, TransientJobError


def clean_sleep_params(params: dict) -> dict:
    try:
        seconds = float(params.get("seconds", 1))
    except (TypeError, ValueError):
        raise ParamsError("seconds", "must be a number") from None
    if not 0 <= seconds <= 600:
        raise ParamsError("seconds", "must be between 0 and 600")
    clean = {"seconds": seconds, "steps": int(params.get("steps", 10))}
    if params.get("load_seconds"):  # spent in a "loading model" phase first
        clean["load_seconds"] = float(params["load_seconds"])
    for key in ("marker", "fail", "hardware"):
        if params.get(key):
            clean[key] = str(params[key])
    if params.get("keep_on_cancel"):  # a cancel keeps the steps done, as a training run keeps its model
        clean["keep_on_cancel"] = True
    return clean


def run_sleep(ctx) -> dict:
    params = ctx.params
    steps = max(1, params["steps"])
    marker = params.get("marker")
    if marker:
        with open(marker, "a") as fh:
            fh.write(f"start {os.getpid()}\n")
    if params.get("load_seconds"):
        with ctx.phase("loading model"):
            time.sleep(params["load_seconds"])
    if params.get("hardware"):  # what a model job says once it has picked its device
        ctx.set_hardware(params["hardware"])
    for i in range(steps):
        time.sleep(params["seconds"] / steps)
        try:
            ctx.progress(100.0 * (i + 1) / steps, f"step {i + 1} of {steps}")
        except JobCancelled:
            if not params.get("keep_on_cancel"):
                raise
            ctx.add_file("partial.txt", f"{i + 1} of {steps} steps\n", "text/plain")
            raise JobCancelled(result={"steps_done": i + 1}) from None
    if params.get("fail") == "input":
        raise JobInputError("The test input was marked bad.")
    if params.get("fail") == "system":
        raise RuntimeError("boom")
    if params.get("fail") == "transient":
        raise TransientJobError("flaky service")
    ctx.add_file("result.txt", f"slept {params['seconds']} s\n", "text/plain")
    if marker:
        with open(marker, "a") as fh:
            fh.write(f"finish {os.getpid()}\n")
    return {"slept": params["seconds"]}


def register_all() -> None:
    kinds.register(kinds.JobKind(
        name="test.sleep", label="Test sleep", queue="cpu",
        runner="workers.testing_kinds:run_sleep", clean_params=clean_sleep_params,
        soft_time_limit=120, time_limit=150, max_attempts=3,
        summarize_params=lambda p, facts: f"sleep {p['seconds']} s",
    ))
    # The same sleep on the gpu queue, so tests can tell the queues' quotas apart.
    kinds.register(kinds.JobKind(
        name="test.sleep_gpu", label="Test sleep (GPU queue)", queue="gpu",
        runner="workers.testing_kinds:run_sleep", clean_params=clean_sleep_params,
        soft_time_limit=120, time_limit=150, max_attempts=3,
        summarize_params=lambda p, facts: f"sleep {p['seconds']} s on the gpu queue",
    ))
