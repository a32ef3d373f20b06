from django.apps import AppConfig


class AnalysisConfig(AppConfig):
    """The protein features' shared pieces (FASTA parsing, built-in examples,
    the submission page) and their URLs; each feature is an app of its own:
    analysis.protparam, analysis.esm, analysis.atomica."""

    name = "analysis"
    verbose_name = "Protein analysis"
