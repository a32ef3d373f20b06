#!/usr/bin/env bash
# Entrypoint of the biofm image (Dockerfile, docker-compose.yml).
#
# The first argument is a role; the rest are passed on to that role's program:
#
#   web [gunicorn args...]     wait for PostgreSQL, apply migrations (under a
#                              lock, so two web replicas never migrate at
#                              once), run Django's system checks (an error
#                              stops here), collect static files, then run gunicorn
#                              on biofm_site.wsgi, port $PORT (default 8000),
#                              with threaded (gthread) workers: an API request
#                              waiting for a job holds one thread, not a process.
#   worker [celery args...]    wait for PostgreSQL and for the schema to be
#                              migrated (by the web service), then run
#                              `celery -A biofm_site worker <args>`; the queues
#                              (-Q) and node name (-n) come from the args.
#   migrate                    wait for PostgreSQL, apply migrations, exit.
#   manage <command> [args]    `python manage.py <command> [args]`, e.g.
#                              `docker compose run --rm web manage createsuperuser`.
#   anything else              run as given (`bash`, `celery -A biofm_site inspect ping`).
#
# Each role ends in `exec`, so the server or the worker receives the stop signal
# itself: SIGTERM makes Celery do a warm shutdown (running jobs finish, reserved
# messages go back to the queue) within the compose stop_grace_period.
#
# Read here (not by settings.py):
#   PORT              web: port gunicorn binds (default 8000)
#   GUNICORN_WORKERS  web: gunicorn worker processes (default 3)
# Read here and by settings.py, with the same defaults (tests/test_deploy_files.py
# checks them; workers/checks.py bounds the API's waits below the timeout):
#   BIOFM_WEB_TIMEOUT web: seconds a request may take (default 60)
#   BIOFM_WEB_THREADS web: threads per worker process (default 8)
#   BIOFM_WAIT_TIMEOUT  seconds to wait for the database / the migrations (default 300)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bootstrap=("python" "$here/bootstrap.py")

log() {
    printf '[entrypoint] %s\n' "$*" >&2
}

role="${1:-web}"
if [ "$#" -gt 0 ]; then
    shift
fi

case "$role" in
    web)
        "${bootstrap[@]}" wait-db
        "${bootstrap[@]}" migrate
        # System checks: refuses, among others, API waits longer than gunicorn's timeout.
        python manage.py check
        log "collecting static files"
        python manage.py collectstatic --noinput --verbosity 0
        log "starting gunicorn on port ${PORT:-8000}"
        exec gunicorn biofm_site.wsgi:application \
            --bind "0.0.0.0:${PORT:-8000}" \
            --workers "${GUNICORN_WORKERS:-3}" \
            --worker-class gthread \
            --threads "${BIOFM_WEB_THREADS:-8}" \
            --timeout "${BIOFM_WEB_TIMEOUT:-60}" \
            --worker-tmp-dir /dev/shm \
            --access-logfile - \
            --error-logfile - \
            "$@"
        ;;
    worker)
        "${bootstrap[@]}" wait-db
        "${bootstrap[@]}" wait-migrations
        log "starting celery worker: $*"
        exec celery -A biofm_site worker "$@"
        ;;
    migrate)
        "${bootstrap[@]}" wait-db
        exec "${bootstrap[@]}" migrate
        ;;
    manage)
        exec python manage.py "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
