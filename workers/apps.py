from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"
    verbose_name = "Jobs and workers"

    def ready(self) -> None:
        from django.conf import settings

        from . import checks  # noqa: F401  (registers system checks)

        if settings.BIOFM_ENABLE_TEST_KINDS:
            from . import testing_kinds

            testing_kinds.register_all()
