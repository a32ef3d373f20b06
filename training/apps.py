from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TrainingConfig(AppConfig):
    # Model training and federated rounds register their job kinds here.
    name = "training"

    def ready(self) -> None:
        from workers import kinds

        from .kind import KIND

        kinds.register(KIND)
        post_migrate.connect(load_builtins_after_migrate, sender=self)


def load_builtins_after_migrate(sender, using="default", **kwargs):
    """`migrate` (so `make run` and a fresh database) brings the built-in
    datasets; BIOFM_LOAD_BUILTIN_DATASETS=0 leaves them out (the test suite,
    where only the tests that need them load them)."""
    from django.conf import settings
    from django.db import connections

    from .models import Dataset

    if not settings.BIOFM_LOAD_BUILTIN_DATASETS or using != "default":
        return
    if Dataset._meta.db_table not in connections[using].introspection.table_names():
        return  # migrated back to before the training tables
    from .builtins import load_builtin_datasets

    load_builtin_datasets()
