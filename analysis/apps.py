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

        from .esm_params import clean_esm_params, summarize as summarize_esm

        kinds.register(kinds.JobKind(
            name="analysis.esm_embeddings",
            label="ESM-2 protein embeddings",
            queue="gpu",
            runner="analysis.esm_jobs:run_esm_embeddings",
            clean_params=clean_esm_params,
            result_template="analysis/esm_result.html",
            soft_time_limit=10 * 3600, time_limit=10 * 3600 + 600,
            description="Per-sequence and per-residue ESM-2 embeddings and contact maps "
                        "(fair-esm checkpoints), for one to tens of thousands of sequences.",
            submit_url_name="analysis:esm_new",
            summarize_params=summarize_esm,
        ))

        from .atomica_params import clean_atomica_params, summarize as summarize_atomica

        kinds.register(kinds.JobKind(
            name="analysis.atomica_embeddings",
            label="ATOMICA interaction embeddings",
            queue="gpu",
            runner="analysis.atomica_jobs:run_atomica_embeddings",
            clean_params=clean_atomica_params,
            result_template="analysis/atomica_result.html",
            soft_time_limit=8 * 3600, time_limit=8 * 3600 + 600,
            description="Atom, block and complex embeddings of interaction interfaces "
                        "(ATOMICA), from .jsonl.gz records or structure files.",
            submit_url_name="analysis:atomica_new",
            summarize_params=summarize_atomica,
        ))
