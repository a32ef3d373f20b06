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


# Time a waited-for answer needs after the wait ends (reading and serialising
# the result), and that the wait must leave under the web server's timeout.
SYNC_WAIT_MARGIN_SECONDS = 10


@register()
def sync_waits_end_before_the_web_timeout(app_configs, **kwargs):
    errors = []
    for name in ("BIOFM_ESM_SYNC_WAIT_SECONDS", "BIOFM_ATOMICA_SYNC_WAIT_SECONDS"):
        wait = getattr(settings, name)
        if wait + SYNC_WAIT_MARGIN_SECONDS > settings.BIOFM_WEB_TIMEOUT:
            errors.append(Error(
                f"{name} is {wait} s, which leaves less than {SYNC_WAIT_MARGIN_SECONDS} s under the "
                f"web server's timeout (BIOFM_WEB_TIMEOUT, {settings.BIOFM_WEB_TIMEOUT} s): a waiting "
                "client would get a dropped connection instead of its answer.",
                hint=f"Set {name} to at most {settings.BIOFM_WEB_TIMEOUT - SYNC_WAIT_MARGIN_SECONDS}, "
                     "or raise BIOFM_WEB_TIMEOUT.",
                id="workers.E002",
            ))
    if not 1 <= settings.BIOFM_SYNC_MAX_WAITING < settings.BIOFM_WEB_THREADS:
        errors.append(Error(
            f"BIOFM_SYNC_MAX_WAITING is {settings.BIOFM_SYNC_MAX_WAITING}, not between 1 and one less "
            f"than the web server's threads per process (BIOFM_WEB_THREADS, {settings.BIOFM_WEB_THREADS}): "
            "waiting requests could hold every thread.",
            hint="Lower BIOFM_SYNC_MAX_WAITING or raise BIOFM_WEB_THREADS.",
            id="workers.E003",
        ))
    return errors


@register()
def worker_hardware_is_known(app_configs, **kwargs):
    from .context import HARDWARE

    if settings.BIOFM_WORKER_HARDWARE in ("", *HARDWARE):
        return []
    return [Error(
        f"BIOFM_WORKER_HARDWARE is {settings.BIOFM_WORKER_HARDWARE!r}, not one of {', '.join(HARDWARE)} "
        "(or empty, to tell from the worker).",
        hint="Set it to cpu or gpu, or leave it unset.", id="workers.E004",
    )]
