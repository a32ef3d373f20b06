# biofm: `make run` for a local portal on embedded defaults, `make test` for the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000

# The test suite runs on the real services (PostgreSQL and Redis on loopback).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run serve test venv deps test-deps assets migrate worker web services clean

$(VENV)/.deps: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	touch $@

$(VENV)/.test-deps: $(VENV)/.deps requirements-test.txt
	$(PIP) install -q -r requirements-test.txt
	touch $@

node_modules/.package-lock.json: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

deps: $(VENV)/.deps
test-deps: $(VENV)/.test-deps
assets: node_modules/.package-lock.json

# The local portal runs with DJANGO_DEBUG=1 (a development secret key); with
# debug off nothing starts without DJANGO_SECRET_KEY.
migrate: deps
	DJANGO_DEBUG=1 $(PY) manage.py migrate --noinput

# The web server, one worker for every queue and beat (the reconciler's
# schedule), on SQLite and the filesystem broker. Stop them with Ctrl-C.
run: deps assets migrate
	@echo
	@echo "  biofm is starting at http://$(HOST):$(PORT)/"
	@echo "  Create an account at http://$(HOST):$(PORT)/accounts/signup/ ; the"
	@echo "  verification email is printed in this terminal (no SMTP configured)."
	@echo "  An operator account: DJANGO_DEBUG=1 $(PY) manage.py createsuperuser"
	@echo
	@$(MAKE) --no-print-directory serve

# The processes of the Procfile under honcho, without the setup steps of `run`.
# honcho starts each in its own process group and, on Ctrl-C or when one of
# them exits, sends SIGTERM to every group, then SIGKILL to what is left after
# BIOFM_STOP_WAIT seconds (biofm_site/procfile.py says why not honcho's 5).
# `-e /dev/null`: a `.env` beside the Procfile is docker compose's, not for this.
serve:
	@PATH="$(abspath $(VENV))/bin:$$PATH" HOST=$(HOST) DJANGO_DEBUG=1 \
	exec $(abspath $(PY)) -m biofm_site.procfile -e /dev/null -f Procfile start -p $(PORT)

# Start PostgreSQL and Redis on this machine if they are not running.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no

test: test-deps assets
	@test -x /usr/bin/chromium || (echo "Browser tests need Debian's Chromium: apt-get install chromium" && exit 1)
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
	BIOFM_ENABLE_TEST_KINDS=1 $(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf var
