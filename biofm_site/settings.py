"""biofm settings.

Every value that differs between a laptop and production is read from the
environment here, and nowhere else. With no environment at all the project runs
on embedded defaults: SQLite and Celery's filesystem broker, so `make run` needs
no server processes. Production sets DATABASE_URL and REDIS_URL.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("BIOFM_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    # Empty counts as unset: docker-compose passes `${NAME:-}` for a variable left out.
    if value is None or not value.strip():
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", default=False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        # A known key would let anyone forge sessions and password-reset links.
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it (e.g. python3 -c \"import secrets; "
            "print(secrets.token_urlsafe(50))\"), or set DJANGO_DEBUG=1 for development."
        )
    # Development only (DJANGO_DEBUG=1, as `make run` sets).
    SECRET_KEY = "dev-insecure-key-change-me"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
# The absolute address used in emails, where no request is at hand.
SITE_URL = os.environ.get("BIOFM_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# The portal's name in page titles and emails; allauth would otherwise name the
# site after the request's host (accounts/adapter.py).
BIOFM_SITE_NAME = os.environ.get("BIOFM_SITE_NAME", "").strip() or "biofm"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "allauth",
    "allauth.account",
    "accounts",
    "workers",
    "analysis",
    "analysis.protparam",
    "analysis.esm",
    "analysis.atomica",
    "design",
    "training",
    "llm",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "biofm_site.middleware.RefuseNulCharactersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "biofm_site.urls"
WSGI_APPLICATION = "biofm_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.site",
                "workers.context_processors.new_job_links",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------
# SQLite by default; DATABASE_URL=postgres://... for PostgreSQL.
# Connections persist (DATABASE_CONN_MAX_AGE seconds, 60 on PostgreSQL by
# default), so neither a request nor a worker's task pays for a new one; a
# persistent connection is checked before reuse, so a restarted database
# costs one failed check, not an error page or a failed job.
_sqlite_path = VAR_DIR / "db.sqlite3"
_database_url = os.environ.get("DATABASE_URL", f"sqlite:///{_sqlite_path}")
DATABASES = {
    "default": dj_database_url.parse(
        _database_url,
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60 if _database_url.startswith("postgres") else 0),
        conn_health_checks=True,
    )
}
if os.environ.get("DATABASE_TEST_NAME"):
    # Lets two test runs share one PostgreSQL server without clobbering each other.
    DATABASES["default"]["TEST"] = {"NAME": os.environ["DATABASE_TEST_NAME"]}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker write at the same time; WAL plus IMMEDIATE
    # transactions make SQLite wait for the lock instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;",
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" and "DATABASE_URL" not in os.environ:
    _sqlite_path.parent.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth (django-allauth) ------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = os.environ.get("BIOFM_EMAIL_VERIFICATION", "mandatory")
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"[{BIOFM_SITE_NAME}] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if SITE_URL.startswith("https") else "http"
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"

# --- Email ----------------------------------------------------------------
# With no EMAIL_HOST the messages are printed on the console (make run).
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20)
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
# For the file-based backend (tests, or keeping mail on disk).
EMAIL_FILE_PATH = os.environ.get("BIOFM_EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "biofm <biofm@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Static and media -----------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# htmx and plotly.js come from npm (package.json) and are served from
# node_modules as they were installed: no CDN and no hand-copied files.
NODE_MODULES = Path(os.environ.get("BIOFM_NODE_MODULES", BASE_DIR / "node_modules"))
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/htmx", NODE_MODULES / "htmx.org" / "dist"),
    ("vendor/plotly", NODE_MODULES / "plotly.js-dist-min"),
    ("vendor/3dmol", NODE_MODULES / "3dmol" / "build"),
]
MEDIA_ROOT = Path(os.environ.get("BIOFM_MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"

_s3_bucket = os.environ.get("BIOFM_S3_BUCKET", "")
STORAGES = {
    "default": (
        {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": _s3_bucket,
                "endpoint_url": os.environ.get("BIOFM_S3_ENDPOINT_URL") or None,
                "region_name": os.environ.get("BIOFM_S3_REGION") or None,
                "access_key": os.environ.get("BIOFM_S3_ACCESS_KEY_ID") or None,
                "secret_key": os.environ.get("BIOFM_S3_SECRET_ACCESS_KEY") or None,
                "default_acl": None,
                "querystring_auth": True,
            },
        }
        if _s3_bucket
        else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    ),
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env_bool("BIOFM_MANIFEST_STATIC")
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Celery ---------------------------------------------------------------
# Reliability choices (see README, "How jobs run"):
# * acks_late + reject_on_worker_lost: a job whose worker dies is redelivered,
#   not lost; the job's claim and lease (workers/lifecycle.py) keep the
#   redelivery from running it twice at once.
# * prefetch 1: a long job never sits reserved behind another long job.
# * visibility timeout above every hard time limit: Redis must not redeliver a
#   job that is still legitimately running.
REDIS_URL = os.environ.get("REDIS_URL", "")
# The filesystem broker ignores the host, but kombu warns "No hostname was
# supplied" on every connection without one.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL or "filesystem://localhost/"
BIOFM_BROKER_DIR = VAR_DIR / "broker"
BIOFM_VISIBILITY_TIMEOUT = env_int("BIOFM_VISIBILITY_TIMEOUT", 13 * 3600)
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BIOFM_BROKER_DIR / "messages"),
        "data_folder_out": str(BIOFM_BROKER_DIR / "messages"),
        "control_folder": str(BIOFM_BROKER_DIR / "control"),
        "store_processed": False,
    }
    for _folder in ("messages", "control"):
        (BIOFM_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
else:
    # A message whose worker vanished (power loss, SIGKILL of the whole worker)
    # goes back to the queue once older than the visibility timeout; kombu
    # looks for such messages every interval x throttle seconds.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": BIOFM_VISIBILITY_TIMEOUT,
        "unacked_restore_interval": env_int("BIOFM_UNACKED_RESTORE_INTERVAL", 10),
        "unacked_restore_throttle": env_int("BIOFM_UNACKED_RESTORE_THROTTLE", 10),
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = False
# Celery's Django fixup closes every database connection before and after each
# task unless it may reuse them; workers.tasks closes only broken or expired
# ones (CONN_MAX_AGE), as Django does per request, so tasks reuse connections.
CELERY_DB_REUSE_MAX = 10**9
# On SIGTERM (with REMAP_SIGTERM=SIGQUIT, as docker-compose sets) a worker
# finishes what it can in this many seconds, then stops the rest and hands
# their messages back to the broker, so a redeploy never waits hours for a
# long job nor loses it: the job restarts on another worker.
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = float(env_int("BIOFM_WORKER_SOFT_SHUTDOWN_TIMEOUT", 60))
# The reconciler (workers/reconcile.py), sent by `celery beat` every
# BIOFM_RECONCILE_INTERVAL seconds: sends queued jobs the broker was down for,
# sends again a dispatched job whose message the broker no longer holds and that
# has not changed for BIOFM_RECONCILE_LOST_AFTER seconds, and requeues (or fails)
# a running job whose lease lapsed more than BIOFM_RECONCILE_STALE_AFTER seconds
# ago (its worker machine is gone). It goes to the notify queue, with short
# tasks only; a pass not started within one interval is dropped (expires).
BIOFM_RECONCILE_INTERVAL = env_int("BIOFM_RECONCILE_INTERVAL", 60)
BIOFM_RECONCILE_LOST_AFTER = env_int("BIOFM_RECONCILE_LOST_AFTER", 600)
BIOFM_RECONCILE_STALE_AFTER = env_int("BIOFM_RECONCILE_STALE_AFTER", 600)
CELERY_IMPORTS = ("workers.reconcile",)
CELERY_BEAT_SCHEDULE = {
    "reconcile-jobs": {
        "task": "workers.reconcile_jobs",
        "schedule": float(BIOFM_RECONCILE_INTERVAL),
        "options": {"queue": "notify", "expires": float(BIOFM_RECONCILE_INTERVAL)},
    },
}
# beat's record of when each entry last ran (a local file; an interval schedule
# only needs it to avoid a burst at restart).
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Retention: daily, in the quiet hours (UTC). On the notify queue, whose
# tasks are short, so housekeeping never waits behind hours-long jobs; a run
# that could not start within the hour is dropped, the next day's does it.
CELERY_BEAT_SCHEDULE.update({
    "prune-jobs": {"task": "workers.prune_jobs", "schedule": crontab(hour=3, minute=15),
                   "options": {"queue": "notify", "expires": 3600}},
    "prune-files": {"task": "workers.prune_files", "schedule": crontab(hour=3, minute=45),
                    "options": {"queue": "notify", "expires": 3600}},
})
# --- end of retention entries

# --- Cache ----------------------------------------------------------------
# allauth keeps its login, signup and password-reset rate limits here, so the
# cache must be shared by every web process (gunicorn workers, replicas): a
# per-process cache would let each process count on its own. Redis when one is
# configured, under its own key prefix (BIOFM_CACHE_URL can give it a database
# of its own, as docker-compose does, so a cache clear never touches the
# broker's queues); otherwise files in var/, shared by the processes of one
# machine (`make run`).
BIOFM_CACHE_URL = os.environ.get("BIOFM_CACHE_URL") or REDIS_URL
if BIOFM_CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": BIOFM_CACHE_URL,
            "KEY_PREFIX": "biofm-cache",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Jobs -----------------------------------------------------------------
# Default limits; operators change them per user and per lab in the admin.
BIOFM_DEFAULT_MAX_RUNNING_JOBS = env_int("BIOFM_DEFAULT_MAX_RUNNING_JOBS", 2)
BIOFM_DEFAULT_LAB_CPU_HOURS = env_int("BIOFM_DEFAULT_LAB_CPU_HOURS", 500)
BIOFM_DEFAULT_LAB_GPU_HOURS = env_int("BIOFM_DEFAULT_LAB_GPU_HOURS", 100)
# A lab invitation can be accepted for this many days; an owner may send at
# most this many invitations a day (each one is an email to any address).
BIOFM_LAB_INVITATION_DAYS = env_int("BIOFM_LAB_INVITATION_DAYS", 14)
BIOFM_LAB_INVITATIONS_PER_DAY = env_int("BIOFM_LAB_INVITATIONS_PER_DAY", 50)
# A running job renews its lease every LEASE/3 seconds. A redelivered job waits
# until the lease has lapsed before taking the job over.
BIOFM_JOB_LEASE_SECONDS = env_int("BIOFM_JOB_LEASE_SECONDS", 60)
# What this worker's jobs are charged to (workers.quotas), "cpu" or "gpu",
# until a job's compute says what it ran on (ESM-2 and ATOMICA do). Empty:
# "gpu" when torch is already loaded and sees CUDA, else "cpu".
BIOFM_WORKER_HARDWARE = os.environ.get("BIOFM_WORKER_HARDWARE", "").strip().lower()
BIOFM_UPLOAD_MAX_BYTES = env_int("BIOFM_UPLOAD_MAX_BYTES", 5 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = BIOFM_UPLOAD_MAX_BYTES + 1024 * 1024
# Caps on one molecule (design): RDKit's time on a molecule grows faster than
# its size (ring perception, SA score, QED, 2D layout), so a few hostile rows
# could hold a worker for hours or a web process past its timeout. The caps
# are checked before those steps; a molecule over one is a row error naming
# the row and the cap, and the rest of the batch is scored.
BIOFM_MOLECULE_MAX_HEAVY_ATOMS = env_int("BIOFM_MOLECULE_MAX_HEAVY_ATOMS", 1000)
BIOFM_MOLECULE_MAX_SMILES_CHARS = env_int("BIOFM_MOLECULE_MAX_SMILES_CHARS", 10_000)
BIOFM_MOLECULE_MAX_MOLBLOCK_CHARS = env_int("BIOFM_MOLECULE_MAX_MOLBLOCK_CHARS", 500_000)
# Property prediction stops scoring a molecule after this many seconds (read
# between properties) and reports it as a row error.
BIOFM_MOLECULE_MAX_SECONDS = env_int("BIOFM_MOLECULE_MAX_SECONDS", 20)
# Docking ligands: ETKDG + Meeko took 5 s for 137 heavy atoms and 71 s for 269.
BIOFM_DOCK_MAX_HEAVY_ATOMS = env_int("BIOFM_DOCK_MAX_HEAVY_ATOMS", 100)
# Ligands per docking job, and the work cap: ligands x exhaustiveness. The
# kind's time limit is that work times BIOFM_DOCK_SECONDS_PER_UNIT (one
# ligand at exhaustiveness 1: TQ3 into 1IA1 took about 7 s per unit on 2
# cores), so 500 ligands at exhaustiveness 8 fit, or 62 at 64.
BIOFM_DOCK_MAX_LIGANDS = env_int("BIOFM_DOCK_MAX_LIGANDS", 500)
BIOFM_DOCK_MAX_WORK = env_int("BIOFM_DOCK_MAX_WORK", 4000)
BIOFM_DOCK_SECONDS_PER_UNIT = env_int("BIOFM_DOCK_SECONDS_PER_UNIT", 10)
# Depictions are drawn in the web request: kept small enough to take well
# under a second.
BIOFM_DEPICT_MAX_HEAVY_ATOMS = env_int("BIOFM_DEPICT_MAX_HEAVY_ATOMS", 150)
BIOFM_DEPICT_MAX_SMILES_CHARS = env_int("BIOFM_DEPICT_MAX_SMILES_CHARS", 1000)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# The web server (gunicorn, docker/entrypoint.sh) ends a request after
# BIOFM_WEB_TIMEOUT seconds and runs BIOFM_WEB_THREADS threads per process.
# API requests that wait for a job (?wait=true, ATOMICA /score) wait less than
# the timeout, and at most BIOFM_SYNC_MAX_WAITING of a process's threads wait
# at once (workers/waiting.py; workers/checks.py refuses settings that break this).
BIOFM_WEB_TIMEOUT = env_int("BIOFM_WEB_TIMEOUT", 60)
BIOFM_WEB_THREADS = env_int("BIOFM_WEB_THREADS", 8)
BIOFM_SYNC_MAX_WAITING = env_int("BIOFM_SYNC_MAX_WAITING", 4)
# Test-only job kinds (a controllable sleep) are registered when this is set.
BIOFM_ENABLE_TEST_KINDS = env_bool("BIOFM_ENABLE_TEST_KINDS")

# --- Retention (workers/retention.py) -----------------------------------------
# Result files of final jobs are deleted this many days after the job ended;
# 0 keeps them forever. With DELETE_ROWS the job rows go too (else they stay,
# marked, with their summary but no downloads).
BIOFM_RESULT_RETENTION_DAYS = env_int("BIOFM_RESULT_RETENTION_DAYS", 0)
BIOFM_RESULT_RETENTION_DELETE_ROWS = env_bool("BIOFM_RESULT_RETENTION_DELETE_ROWS")
# A stored file no row refers to is deleted once older than this: an upload is
# stored a moment before its job row exists, and must not be taken for an orphan.
BIOFM_ORPHAN_GRACE_HOURS = max(1, env_int("BIOFM_ORPHAN_GRACE_HOURS", 24))

# --- ESM-2 embeddings ---------------------------------------------------------
# Weights come only from here or from torch hub's cache (fair-esm's own place),
# downloaded there on first use when BIOFM_ESM_ALLOW_DOWNLOAD is on.
BIOFM_ESM_WEIGHTS_DIR = os.environ.get("BIOFM_ESM_WEIGHTS_DIR", "")
BIOFM_ESM_ALLOW_DOWNLOAD = env_bool("BIOFM_ESM_ALLOW_DOWNLOAD", default=True)
# Every GPU worker reports the checkpoints it has (analysis/esm/inventory.py) on
# start and every third of this; the form offers what fresh reports list.
BIOFM_ESM_INVENTORY_MAX_AGE = max(30, env_int("BIOFM_ESM_INVENTORY_MAX_AGE", 600))
# Workers keep loaded models between jobs up to this many bytes of weights.
BIOFM_ESM_CACHE_BYTES = env_int("BIOFM_ESM_CACHE_BYTES", 16 * 1024**3)
BIOFM_ESM_MAX_SEQUENCES = env_int("BIOFM_ESM_MAX_SEQUENCES", 50_000)
BIOFM_ESM_MAX_LENGTH = env_int("BIOFM_ESM_MAX_LENGTH", 50_000)
# "auto" picks CUDA when the worker has it; dtype "auto" is bf16/fp16 on GPU, fp32 on CPU.
BIOFM_ESM_DEVICE = os.environ.get("BIOFM_ESM_DEVICE", "auto")
BIOFM_ESM_DTYPE = os.environ.get("BIOFM_ESM_DTYPE", "auto")
# Requests this small may be answered at once with ?wait=true.
BIOFM_ESM_SYNC_MAX_SEQUENCES = env_int("BIOFM_ESM_SYNC_MAX_SEQUENCES", 32)
BIOFM_ESM_SYNC_MAX_LENGTH = env_int("BIOFM_ESM_SYNC_MAX_LENGTH", 1024)
# How long such a request waits for the worker; below BIOFM_WEB_TIMEOUT (checked).
BIOFM_ESM_SYNC_WAIT_SECONDS = env_int("BIOFM_ESM_SYNC_WAIT_SECONDS", 45)

# --- Training runs (training/kind.py, training/jobs.py) -----------------------
# A run's time limits; the hard one stays below BIOFM_VISIBILITY_TIMEOUT (checked).
BIOFM_TRAIN_SOFT_TIME_LIMIT = env_int("BIOFM_TRAIN_SOFT_TIME_LIMIT", 10 * 3600)
BIOFM_TRAIN_TIME_LIMIT = env_int("BIOFM_TRAIN_TIME_LIMIT", 10 * 3600 + 600)

# --- ATOMICA interaction embeddings ------------------------------------------
# An operator-configured checkpoint (config.json + weights .pt, either official
# layout), or the released one from the Hugging Face hub (ada-f/ATOMICA), kept
# in BIOFM_ATOMICA_CHECKPOINT_DIR and downloaded there on first use if allowed.
BIOFM_ATOMICA_CONFIG = os.environ.get("BIOFM_ATOMICA_CONFIG", "")
BIOFM_ATOMICA_WEIGHTS = os.environ.get("BIOFM_ATOMICA_WEIGHTS", "")
BIOFM_ATOMICA_CHECKPOINT_DIR = os.environ.get("BIOFM_ATOMICA_CHECKPOINT_DIR", str(VAR_DIR / "atomica"))
BIOFM_ATOMICA_ALLOW_DOWNLOAD = env_bool("BIOFM_ATOMICA_ALLOW_DOWNLOAD", default=True)
BIOFM_ATOMICA_BATCH_SIZE = env_int("BIOFM_ATOMICA_BATCH_SIZE", 8)
BIOFM_ATOMICA_MAX_ITEMS = env_int("BIOFM_ATOMICA_MAX_ITEMS", 1000)
# Scoring requests up to this many items are answered synchronously.
BIOFM_ATOMICA_SYNC_MAX_ITEMS = env_int("BIOFM_ATOMICA_SYNC_MAX_ITEMS", 8)
BIOFM_ATOMICA_SYNC_WAIT_SECONDS = env_int("BIOFM_ATOMICA_SYNC_WAIT_SECONDS", 45)
# Per-block importance costs one extra forward pass per block: capped.
BIOFM_ATOMICA_IMPORTANCE_MAX_BLOCKS = env_int("BIOFM_ATOMICA_IMPORTANCE_MAX_BLOCKS", 400)

# --- Training (training/) ---------------------------------------------------
# `migrate` creates the built-in public datasets (ESOL, FreeSolv, Lipophilicity,
# BBBP, Tox21: ~15k molecules, some seconds the first time; unchanged ones cost
# nothing). The test suite turns this off and loads them where a test needs them.
BIOFM_LOAD_BUILTIN_DATASETS = env_bool("BIOFM_LOAD_BUILTIN_DATASETS", default=True)

# --- Fetching user-supplied URLs (biofm_site/safe_fetch.py) -----------------
BIOFM_FETCH_MAX_BYTES = env_int("BIOFM_FETCH_MAX_BYTES", 50 * 1024 * 1024)
BIOFM_FETCH_TIMEOUT = env_int("BIOFM_FETCH_TIMEOUT", 30)
# Hosts exempt from the public-address rule (an internal data server).
BIOFM_FETCH_ALLOW_HOSTS = env_list("BIOFM_FETCH_ALLOW_HOSTS")
# A decompressed input larger than this is refused (gzip bombs).
BIOFM_MAX_DECOMPRESSED_BYTES = env_int("BIOFM_MAX_DECOMPRESSED_BYTES", 200 * 1024 * 1024)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("BIOFM_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- HTTPS -----------------------------------------------------------------
# Secure by default whenever DEBUG is off, so that `manage.py check --deploy`
# passes with only DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS set. A plain-HTTP
# intranet install turns the pieces off one by one (README, "Configuration").
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", default=not DEBUG)
# The header a TLS-terminating proxy sets, e.g. "X-Forwarded-Proto". Trusted
# only when named: any client can send it to a server reached directly.
_proxy_ssl_header = os.environ.get("DJANGO_SECURE_PROXY_SSL_HEADER", "").strip()
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)
