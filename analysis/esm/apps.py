from django.apps import AppConfig


class EsmConfig(AppConfig):
    name = "analysis.esm"
    label = "analysis_esm"
    verbose_name = "ESM-2 protein embeddings"

    def ready(self) -> None:
        from workers import kinds

        from .kind import KIND

        kinds.register(KIND)
