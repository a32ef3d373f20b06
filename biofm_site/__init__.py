# Nothing is imported here, so that Django-free modules of this package
# (csvfile, safe_fetch) can be used by compute code without pulling in Celery.
# The Celery app is loaded when Django starts (workers.apps.WorkersConfig.ready)
# and found by `celery -A biofm_site` as biofm_site.celery.
