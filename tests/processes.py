"""Real processes for end-to-end tests: a Celery worker on Redis that uses the
test database, and an SMTP server that collects what the portal sends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from email import message_from_bytes, policy
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    s = connection.settings_dict
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    user = s.get("USER") or "postgres"
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{s['NAME']}"


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(settings.REDIS_URL).flushdb()


class WorkerProcess:
    """`celery worker` in a subprocess, pointed at the test database."""

    def __init__(self, log_dir: Path, *, concurrency: int = 2, queues: str = "cpu,gpu,notify",
                 env: dict[str, str] | None = None):
        self.log_path = log_dir / f"worker-{uuid.uuid4().hex[:6]}.log"
        self.name = f"test-{uuid.uuid4().hex[:6]}@%h"
        self.concurrency = concurrency
        self.queues = queues
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "BIOFM_ENABLE_TEST_KINDS": "1",
            "BIOFM_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "BIOFM_JOB_LEASE_SECONDS": str(settings.BIOFM_JOB_LEASE_SECONDS),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "WorkerProcess":
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "biofm_site", "worker", "-Q", self.queues,
             "-c", str(self.concurrency), "--pool", "prefork", "-l", "info", "-n", self.name,
             "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log()}")
            if " ready." in self.log():
                return self
            time.sleep(0.2)
        raise RuntimeError(f"worker did not start in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill_all(self) -> None:
        """SIGKILL the worker and its pool children at once, as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        stop_group(self.proc, getattr(self, "_log", None))


def stop_group(proc: subprocess.Popen | None, log=None) -> None:
    """SIGTERM a process started in a session of its own and its children,
    SIGKILL what is left after 20 s; then close its log."""
    if proc and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    if log is not None:
        log.close()


class SmtpCatcher:
    """An aiosmtpd server on a free loopback port that keeps every message."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages = []
        catcher = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                catcher.messages.append(message_from_bytes(envelope.content, policy=policy.default))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> "SmtpCatcher":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def wait_for(self, count: int = 1, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.messages) < count:
            time.sleep(0.1)
        return self.messages


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class RedisServer:
    """A redis-server of the test's own on a free loopback port, with no
    persistence: a test can stop it (as an outage would) and start it again
    without touching the shared Redis on 6379."""

    def __init__(self, log_dir: Path, port: int | None = None):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = log_dir / f"redis-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10) -> "RedisServer":
        import redis

        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--logfile", str(self.log_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        wait_until(lambda: self._pings(client), timeout, what=f"redis-server on port {self.port}")
        return self

    def _pings(self, client) -> bool:
        import redis

        if self.proc.poll() is not None:
            raise RuntimeError(f"redis-server exited: {self.log_path.read_text(errors='replace')}")
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError):
            return False

    def stop(self) -> None:
        """Kill it at once, as a crash or an unplugged machine would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class BeatProcess:
    """`celery beat` in a subprocess, sending the project's schedule."""

    def __init__(self, log_dir: Path, env: dict[str, str]):
        self.log_path = log_dir / f"beat-{uuid.uuid4().hex[:6]}.log"
        self.schedule = log_dir / f"beat-schedule-{uuid.uuid4().hex[:6]}"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.proc: subprocess.Popen | None = None

    def start(self) -> "BeatProcess":
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "biofm_site", "beat", "-l", "info",
             "-s", str(self.schedule)],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        stop_group(self.proc, getattr(self, "_log", None))
