from django.apps import AppConfig


class AtomicaConfig(AppConfig):
    name = "analysis.atomica"
    label = "analysis_atomica"
    verbose_name = "ATOMICA interaction embeddings"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from workers import kinds
        from workers.models import Job

        from .kind import KIND
        from .models import record_job_inputs

        kinds.register(KIND)
        post_save.connect(record_job_inputs, sender=Job, dispatch_uid="atomica_record_job_inputs")
