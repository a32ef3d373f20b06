from django.apps import AppConfig


class DesignConfig(AppConfig):
    name = "design"
    verbose_name = "Drug design"

    def ready(self) -> None:
        from workers import kinds

        from .kind import KINDS

        for kind in KINDS:
            kinds.register(kind)
