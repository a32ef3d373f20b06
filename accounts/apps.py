from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and labs"

    def ready(self) -> None:
        from . import signals  # noqa: F401
