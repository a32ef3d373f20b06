from django.apps import AppConfig


class EsmConfig(AppConfig):
    name = "analysis.esm"
    label = "analysis_esm"
    verbose_name = "ESM-2 protein embeddings"

    def ready(self) -> None:
        from celery.signals import worker_ready, worker_shutdown

        from workers import kinds

        from . import inventory
        from .kind import KIND

        kinds.register(KIND)
        # A GPU worker tells the web process which checkpoints it has.
        worker_ready.connect(inventory.on_worker_ready, dispatch_uid="esm-inventory-ready")
        worker_shutdown.connect(inventory.on_worker_shutdown, dispatch_uid="esm-inventory-shutdown")
