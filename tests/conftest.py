"""Shared fixtures. The suite runs on real PostgreSQL and Redis (see the
Makefile's `test` target); if either is missing the suite fails loudly."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest
from django.conf import settings


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), 3):
            return True
    except OSError:
        return False


def pytest_configure(config):
    problems = []
    db_url = os.environ.get("DATABASE_URL", "")
    if not db_url.startswith("postgres"):
        problems.append("DATABASE_URL must point at PostgreSQL (make test sets it).")
    elif not _reachable(db_url, 5432):
        problems.append(f"PostgreSQL is not reachable at {db_url}.")
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url.startswith("redis"):
        problems.append("REDIS_URL must point at Redis (make test sets it).")
    elif not _reachable(redis_url, 6379):
        problems.append(f"Redis is not reachable at {redis_url}.")
    if problems:
        raise pytest.UsageError(
            "The test suite needs its real services:\n  " + "\n  ".join(problems)
            + "\nStart them as DEVELOPERS.md says, or run `make services`."
        )


@pytest.fixture(autouse=True)
def _media_and_email(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def make_user(db, django_user_model):
    counter = {"n": 0}

    def make(email: str | None = None, password: str = "correct-horse-battery", **extra):
        counter["n"] += 1
        email = email or f"user{counter['n']}@example.org"
        user = django_user_model.objects.create_user(
            username=email, email=email, password=password, **extra)
        from allauth.account.models import EmailAddress

        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        return user

    return make


@pytest.fixture
def user(make_user):
    return make_user("alice@example.org")


@pytest.fixture
def other_user(make_user):
    return make_user("bob@example.org")


@pytest.fixture
def alice_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def api(client, user):
    """A test client that authenticates as `user` with an API token."""
    from accounts.models import ApiToken

    _, raw = ApiToken.issue(user, "tests")
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    return client


@pytest.fixture
def no_broker(monkeypatch):
    """Record dispatches instead of sending them, for tests of the web side."""
    sent = []

    def fake_send(job):
        sent.append(job)

    monkeypatch.setattr("workers.lifecycle._send_to_broker", fake_send)
    return sent


__all__ = ["settings"]


def run_job_now(job):
    """Run a job's Celery task in this process, as a worker would."""
    from workers.tasks import run_job

    return run_job.apply(args=[str(job.pk)]).get()


@pytest.fixture
def sleep_params():
    return {"seconds": 0, "steps": 1}
