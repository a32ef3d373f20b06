from django.apps import AppConfig


class AtomicaConfig(AppConfig):
    name = "analysis.atomica"
    label = "analysis_atomica"
    verbose_name = "ATOMICA interaction embeddings"

    def ready(self) -> None:
        from workers import kinds

        from .kind import KIND

        kinds.register(KIND)
