from django.apps import AppConfig


class ProtparamConfig(AppConfig):
    name = "analysis.protparam"
    label = "analysis_protparam"
    verbose_name = "Protein sequence analysis"

    def ready(self) -> None:
        from workers import kinds

        from .kind import KIND

        kinds.register(KIND)
