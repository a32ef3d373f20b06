import json
from datetime import timedelta

from django.conf import settings
from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html

from .models import WorkerInventory


@admin.register(WorkerInventory)
class WorkerInventoryAdmin(admin.ModelAdmin):
    """What each GPU worker reported of its ESM-2 checkpoints, with the paths:
    where to put a file a job found missing. Workers write these rows
    (analysis/esm/inventory.py); operators only look, or delete a dead one."""

    list_display = ["worker", "queues", "installed", "may_download", "reported_at", "fresh"]
    search_fields = ["worker"]
    readonly_fields = ["worker", "queues", "checkpoints_text", "may_download", "search_dirs",
                       "reported_at", "fresh"]
    exclude = ["checkpoints"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="installed")
    def installed(self, row: WorkerInventory) -> str:
        return ", ".join(row.checkpoints) or "none"

    @admin.display(description="checkpoints")
    def checkpoints_text(self, row: WorkerInventory) -> str:
        text = json.dumps(row.checkpoints, indent=2, sort_keys=True)
        return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)

    @admin.display(boolean=True, description="fresh")
    def fresh(self, row: WorkerInventory) -> bool:
        """Whether the form counts this report (younger than BIOFM_ESM_INVENTORY_MAX_AGE)."""
        return row.reported_at >= timezone.now() - timedelta(seconds=settings.BIOFM_ESM_INVENTORY_MAX_AGE)
