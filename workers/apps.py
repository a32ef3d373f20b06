from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"
    verbose_name = "Jobs and workers"

    def ready(self) -> None:
        from django.conf import settings

        # The project's Celery app becomes the current app before anything
        # sends a task (the lifecycle sends them by name), as Celery's Django
        # guide has the project package do; it lives here so that
        # biofm_site's Django-free modules import without Celery.
        import biofm_site.celery  # noqa: F401

        from . import checks  # noqa: F401  (registers system checks)

        if settings.BIOFM_ENABLE_TEST_KINDS:
            from . import testing_kinds

            testing_kinds.register_all()
