"""System checks that catch unsafe reliability settings at start-up."""

from django.conf import settings
from django.core.checks import Error, register


@register()
def visibility_timeout_covers_time_limits(app_configs, **kwargs):
    from . import kinds

    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        return []
    errors = []
    for kind in kinds.all_kinds():
        if kind.time_limit >= settings.BIOFM_VISIBILITY_TIMEOUT:
            errors.append(Error(
                f"Job kind {kind.name} has a hard time limit of {kind.time_limit} s, not below "
                f"the broker visibility timeout ({settings.BIOFM_VISIBILITY_TIMEOUT} s): Redis "
                "would hand a still-running job to a second worker.",
                hint="Raise BIOFM_VISIBILITY_TIMEOUT or lower the kind's time limit.",
                id="workers.E001",
            ))
    return errors
