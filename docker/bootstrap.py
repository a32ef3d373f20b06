"""Start-up steps of the containers, called by docker/entrypoint.sh.

    python docker/bootstrap.py wait-db          until the database accepts connections
    python docker/bootstrap.py wait-migrations  until no migration is left to apply
    python docker/bootstrap.py migrate          apply migrations under a lock

Only the web service migrates (`migrate` here); the workers wait until the
schema is current (`wait-migrations`), so a worker never runs a job against
tables that do not exist yet. On PostgreSQL `migrate` holds an advisory lock,
so two web replicas starting together apply the migrations once, one after the
other, instead of racing.

Both waits give up after BIOFM_WAIT_TIMEOUT seconds (default 300) with exit
status 1; compose's restart policy then starts the container again.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

# An arbitrary constant shared by every container of this project.
MIGRATION_LOCK_KEY = 0x62696F666D  # "biofm"
POLL_SECONDS = 2.0


def _setup_django() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "biofm_site.settings")
    import django

    django.setup()


def _say(message: str) -> None:
    print(f"[bootstrap] {message}", file=sys.stderr, flush=True)


def _timeout() -> float:
    return float(os.environ.get("BIOFM_WAIT_TIMEOUT") or 300)


def _wait(what: str, ready) -> int:
    deadline = time.monotonic() + _timeout()
    last_reason = ""
    while True:
        ok, reason = ready()
        if ok:
            _say(f"{what}: ready")
            return 0
        if reason != last_reason:
            _say(f"{what}: waiting ({reason})")
            last_reason = reason
        if time.monotonic() >= deadline:
            _say(f"{what}: gave up after {_timeout():.0f} s ({reason})")
            return 1
        time.sleep(POLL_SECONDS)


def _database_ready() -> tuple[bool, str]:
    from django.db import OperationalError, connection

    try:
        connection.ensure_connection()
        return True, ""
    except OperationalError as exc:
        connection.close()
        return False, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _unapplied_migrations() -> list[str]:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]


def _schema_ready() -> tuple[bool, str]:
    from django.db import DatabaseError, connection

    try:
        pending = _unapplied_migrations()
    except DatabaseError as exc:
        connection.close()
        return False, f"database error: {exc}".strip()
    if pending:
        more = f" and {len(pending) - 3} more" if len(pending) > 3 else ""
        return False, f"{len(pending)} unapplied migrations: {', '.join(pending[:3])}{more}"
    return True, ""


def wait_db() -> int:
    return _wait("database", _database_ready)


def wait_migrations() -> int:
    return _wait("migrations", _schema_ready)


def migrate() -> int:
    from django.core.management import call_command
    from django.db import connection

    locked = connection.vendor == "postgresql"
    if locked:
        _say("taking the migration lock")
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
    try:
        call_command("migrate", interactive=False, verbosity=1)
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK_KEY])
    return 0


COMMANDS = {"wait-db": wait_db, "wait-migrations": wait_migrations, "migrate": migrate}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in COMMANDS:
        print(f"usage: bootstrap.py {{{'|'.join(COMMANDS)}}}", file=sys.stderr)
        return 2
    _setup_django()
    return COMMANDS[argv[0]]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
