from django.contrib import admin

from .models import Dataset, ModelVersion, TrainingRun

# The records are what uploads, jobs and registrations made; the admin shows
# them and changes sharing, never their content (a version is immutable).
CONTENT = ("uid", "content_hash", "source", "source_name", "table", "smiles_column", "targets", "columns",
           "n_rows", "n_source_rows", "row_errors", "duplicates", "stats", "version")


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "owner", "lab", "shared", "builtin", "n_rows", "n_source_rows", "created_at")
    list_filter = ("builtin", "shared", "lab")
    search_fields = ("name", "owner__email", "content_hash")
    readonly_fields = CONTENT + ("builtin",)


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("job", "dataset", "family", "ensemble", "created_at")
    list_filter = ("family",)
    search_fields = ("dataset__name", "job__owner__email", "family")
    readonly_fields = ("job", "dataset", "family", "hparams", "split", "ensemble", "epochs", "metrics",
                       "created_at")
    list_select_related = ("job", "dataset")


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("display_name", "name", "version", "owner", "lab", "shared", "created_at")
    list_filter = ("shared", "lab")
    search_fields = ("name", "display_name", "owner__email", "bundle_sha256")
    readonly_fields = ("uid", "version", "run", "bundle", "bundle_sha256", "card", "targets")
