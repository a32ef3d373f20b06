from django.apps import AppConfig


class TrainingConfig(AppConfig):
    # Model training and federated rounds register their job kinds here.
    name = "training"

    def ready(self) -> None:
        from workers import kinds

        from .kind import KIND

        kinds.register(KIND)
