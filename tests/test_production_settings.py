"""Production safety of biofm_site/settings.py: no start without a secret key
when DEBUG is off, and HTTPS defaults that pass `manage.py check --deploy`.

Each check runs manage.py in a subprocess with a clean environment, as a
production process starts, because settings are read once at import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STRONG_KEY = "k3L9-vQ2xR7_mZ0pW4sT8yB1nC6dF5gH2jK9lA3qE7uI0oP4rS8tV1wX5zY2"
PRINT_SETTINGS = (
    "import json, django; from django.conf import settings as s; django.setup(); print(json.dumps({"
    "'SESSION_COOKIE_SECURE': s.SESSION_COOKIE_SECURE, 'CSRF_COOKIE_SECURE': s.CSRF_COOKIE_SECURE, "
    "'SECURE_SSL_REDIRECT': s.SECURE_SSL_REDIRECT, 'SECURE_HSTS_SECONDS': s.SECURE_HSTS_SECONDS, "
    "'SECURE_HSTS_INCLUDE_SUBDOMAINS': s.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
    "'SECURE_HSTS_PRELOAD': s.SECURE_HSTS_PRELOAD, 'SECURE_PROXY_SSL_HEADER': s.SECURE_PROXY_SSL_HEADER}))"
)


def run(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    # Only what the test names: nothing of the test run's own environment
    # (pytest.ini sets a key and plain-HTTP switches for the suite).
    env = {"DJANGO_SETTINGS_MODULE": "biofm_site.settings", "BIOFM_VAR_DIR": str(tmp_path / "var"), **env}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def settings_with(env: dict[str, str], tmp_path: Path) -> dict:
    result = run(["-c", PRINT_SETTINGS], env, tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_check_deploy_reports_nothing_with_only_the_key_and_hosts(tmp_path):
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                 {"DJANGO_SECRET_KEY": STRONG_KEY, "DJANGO_ALLOWED_HOSTS": "biofm.example.org"}, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_no_secret_key_with_debug_off_refuses_to_start(tmp_path):
    for env in ({}, {"DJANGO_SECRET_KEY": ""}, {"DJANGO_DEBUG": "0"}):
        result = run(["manage.py", "check"], {"DJANGO_ALLOWED_HOSTS": "biofm.example.org", **env}, tmp_path)
        assert result.returncode != 0, f"started with {env}: {result.stdout}"
        assert "ImproperlyConfigured" in result.stderr and "DJANGO_SECRET_KEY is not set" in result.stderr


def test_debug_without_a_key_starts_with_the_development_key(tmp_path):
    result = run(["manage.py", "check"], {"DJANGO_DEBUG": "1"}, tmp_path)
    assert result.returncode == 0, result.stderr
    # And none of the HTTPS settings get in the way of runserver on plain HTTP.
    assert settings_with({"DJANGO_DEBUG": "1"}, tmp_path) == {
        "SESSION_COOKIE_SECURE": False, "CSRF_COOKIE_SECURE": False, "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0, "SECURE_HSTS_INCLUDE_SUBDOMAINS": False, "SECURE_HSTS_PRELOAD": False,
        "SECURE_PROXY_SSL_HEADER": None,
    }


def test_secure_defaults_with_debug_off_and_the_proxy_header_only_when_named(tmp_path):
    base = {"DJANGO_SECRET_KEY": STRONG_KEY}
    assert settings_with(base, tmp_path) == {
        "SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True, "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 365 * 24 * 3600, "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True, "SECURE_PROXY_SSL_HEADER": None,
    }
    # docker-compose passes `${NAME:-}` for a variable left out: empty keeps the default.
    empty = {name: "" for name in ("DJANGO_SESSION_COOKIE_SECURE", "DJANGO_SECURE_SSL_REDIRECT",
                                   "DJANGO_SECURE_HSTS_SECONDS", "DJANGO_SECURE_PROXY_SSL_HEADER")}
    assert settings_with({**base, **empty}, tmp_path) == settings_with(base, tmp_path)
    behind_proxy = settings_with({**base, "DJANGO_SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}, tmp_path)
    assert behind_proxy["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_each_https_setting_is_switched_off_for_a_plain_http_install(tmp_path):
    plain_http = {
        "DJANGO_SECRET_KEY": STRONG_KEY, "DJANGO_SESSION_COOKIE_SECURE": "0", "DJANGO_CSRF_COOKIE_SECURE": "0",
        "DJANGO_SECURE_SSL_REDIRECT": "0", "DJANGO_SECURE_HSTS_SECONDS": "0",
        "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "0", "DJANGO_SECURE_HSTS_PRELOAD": "0",
    }
    assert settings_with(plain_http, tmp_path) == {
        "SESSION_COOKIE_SECURE": False, "CSRF_COOKIE_SECURE": False, "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0, "SECURE_HSTS_INCLUDE_SUBDOMAINS": False, "SECURE_HSTS_PRELOAD": False,
        "SECURE_PROXY_SSL_HEADER": None,
    }
