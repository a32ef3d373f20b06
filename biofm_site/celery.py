"""The Celery application shared by the web process (which enqueues) and the
workers (which run jobs). Configuration lives in Django settings (CELERY_*)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "biofm_site.settings")

app = Celery("biofm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
