"""`make run`: its processes (Procfile: web, worker, beat) under honcho, on the
embedded defaults (SQLite and the filesystem broker in a BIOFM_VAR_DIR of the
test's own). One Ctrl-C stops them all; one that cannot start stops the others
with its error shown; nothing is left running either way.

Every process the run starts carries a marker in its environment, so the tests
find them all, even one that its parent lost (reparented to init), which is
what a process left behind looks like."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import psutil
import pytest

from tests.processes import ROOT, free_port, wait_until

pytestmark = pytest.mark.e2e

MARKER = "BIOFM_TEST_RUN_MARKER"


def embedded_env(var_dir: Path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DATABASE_TEST_NAME",
                        "MAKEFLAGS", "MAKELEVEL", "PORT"}}
    return {**env, "BIOFM_VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1", **extra}


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory) -> Path:
    var = tmp_path_factory.mktemp("make-run") / "var"
    result = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT,
                            env=embedded_env(var), capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    return var


class Run:
    """`make serve` (what `make run` ends in) in a session of its own, as a
    terminal's foreground job would be."""

    def __init__(self, var_dir: Path, port: int, log: Path):
        self.marker = uuid.uuid4().hex
        self.port = port
        self.log_path = log
        self._log = open(log, "w")
        self.proc = subprocess.Popen(
            ["make", "-s", "--no-print-directory", "serve", f"VENV={sys.prefix}", "HOST=127.0.0.1",
             f"PORT={port}"],
            cwd=ROOT, env=embedded_env(var_dir, **{MARKER: self.marker}),
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def processes(self) -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter():
            try:
                if proc.environ().get(MARKER) == self.marker and proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found

    def web_answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/accounts/login/", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def cleanup(self) -> None:
        for proc in self.processes():
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def test_one_ctrl_c_stops_web_worker_and_beat_and_leaves_nothing_running(var_dir, tmp_path):
    run = Run(var_dir, free_port(), tmp_path / "run.log")
    try:
        wait_until(lambda: run.web_answers() and " ready." in run.output() and "celery beat v" in run.output(),
                   120, interval=0.5, what=f"web, worker and beat to start:\n{run.output()}")
        running = run.processes()
        commands = [" ".join(p.cmdline()) for p in running]
        assert any("runserver" in c for c in commands), commands
        assert any("celery -A biofm_site worker" in c for c in commands), commands
        assert any("celery -A biofm_site beat" in c for c in commands), commands

        stopped_at = time.monotonic()
        os.killpg(run.proc.pid, signal.SIGINT)  # what Ctrl-C sends the terminal's foreground group

        wait_until(lambda: not run.processes(), 20, interval=0.2,
                   what=f"every process to stop; left: {[p.cmdline() for p in run.processes()]}\n{run.output()}")
        assert time.monotonic() - stopped_at < 15
        assert run.proc.wait(10) != 0
        out = run.output()
        assert out.count("Warm shutdown") <= 1, out
        # The pool processes are the worker's to stop: honcho's SIGTERM to the
        # worker's group must not kill them under the main process.
        for symptom in ("RecursionError", "Segmentation fault", "Traceback", "exited with 'signal", "SIGKILL"):
            assert symptom not in out, out
        # The filesystem broker's URL names a host: kombu has nothing to warn about.
        assert "No hostname was supplied" not in out
    finally:
        run.cleanup()


def test_a_process_that_cannot_start_stops_the_others_with_its_error_shown(var_dir, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = Run(var_dir, port, tmp_path / "run.log")
        try:
            assert run.proc.wait(90) != 0, run.output()
            wait_until(lambda: not run.processes(), 20, interval=0.2,
                       what=f"every process to stop; left: {[p.cmdline() for p in run.processes()]}")
            out = run.output()
            assert "That port is already in use" in out, out
            assert "web.1 stopped (rc=1)" in out, out
        finally:
            run.cleanup()


def test_the_filesystem_broker_sends_without_kombu_s_hostname_warning(tmp_path):
    """Every submission under `make run` used to log "No hostname was
    supplied. Reverting to default 'localhost'"."""
    var = tmp_path / "var"
    code = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "from biofm_site.celery import app\n"
        "assert settings.CELERY_BROKER_URL.startswith('filesystem://'), settings.CELERY_BROKER_URL\n"
        "app.send_task('workers.run_job', args=['00000000-0000-0000-0000-000000000000'], queue='cpu')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            check=False, env=embedded_env(var, DJANGO_SETTINGS_MODULE="biofm_site.settings"))
    assert result.returncode == 0, result.stderr
    assert "No hostname was supplied" not in result.stderr + result.stdout
    assert len(list((var / "broker" / "messages").glob("*.cpu.msg"))) == 1


def test_pool_processes_leave_the_worker_s_group_and_die_with_a_killed_worker(var_dir, tmp_path):
    """The pool processes are out of the group that honcho signals (so they are
    not killed under a warm shutdown), yet a SIGKILLed worker leaves none behind."""
    marker = uuid.uuid4().hex
    with open(tmp_path / "worker.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "biofm_site", "worker", "-Q", "cpu",
                                 "-c", "2", "-l", "info"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                env=embedded_env(var_dir, BIOFM_ENABLE_TEST_KINDS="1", **{MARKER: marker}),
                                start_new_session=True)
    main = psutil.Process(proc.pid)
    try:
        wait_until(lambda: len(main.children()) == 2 and " ready." in (tmp_path / "worker.log").read_text(),
                   60, interval=0.2, what="the worker and its two pool processes to start")
        pool = main.children()

        def out_of_the_group():  # each leads a group of its own, once its start-up has run
            return {os.getpgid(p.pid) for p in pool} == {p.pid for p in pool}

        wait_until(out_of_the_group, 30, interval=0.1, what="the pool processes to leave the worker's group")
        # A busy pool process: an idle one would exit anyway when its pipe to the
        # worker closes; one in the middle of a job needs the death signal.
        submit = (
            "import django; django.setup()\n"
            "from django.contrib.auth import get_user_model\n"
            "from workers import lifecycle\n"
            "user, _ = get_user_model().objects.get_or_create(username='pool-test')\n"
            f"lifecycle.submit(user, 'test.sleep', {{'seconds': 60, 'steps': 60, 'marker': {str(tmp_path / 'started')!r}}})\n"
        )
        done = subprocess.run([sys.executable, "-c", submit], cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env=embedded_env(var_dir, DJANGO_SETTINGS_MODULE="biofm_site.settings",
                                               BIOFM_ENABLE_TEST_KINDS="1", DJANGO_DEBUG="1"))
        assert done.returncode == 0, done.stderr
        wait_until(lambda: (tmp_path / "started").exists(), 60, interval=0.2, what="the job to start")
        busy = int((tmp_path / "started").read_text().split()[1])
        assert busy in {p.pid for p in pool}
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        wait_until(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in pool), 10,
                   interval=0.1, what="the pool processes to die with their worker")
    finally:
        for p in [main, *main.children()] if main.is_running() else []:
            p.kill()
