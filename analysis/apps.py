from django.apps import AppConfig


class AnalysisConfig(AppConfig):
    name = "analysis"
    verbose_name = "Protein sequence analysis"

    def ready(self) -> None:
        from workers import kinds

        from .params import clean_protparam_params, summarize

        kinds.register(kinds.JobKind(
            name="analysis.protparam",
            label="Protein sequence analysis",
            queue="cpu",
            runner="analysis.jobs:run_protparam",
            clean_params=clean_protparam_params,
            result_template="analysis/result.html",
            soft_time_limit=1800, time_limit=1900,
            description="Biopython ProtParam figures, amino-acid composition and "
                        "Kyte-Doolittle hydropathy for protein sequences (FASTA).",
            submit_url_name="analysis:new",
            summarize_params=summarize,
        ))
