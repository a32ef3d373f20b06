from django.contrib import admin

from .models import StoredInput


@admin.register(StoredInput)
class StoredInputAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "size", "created_at"]
    list_select_related = ["owner"]
    search_fields = ["name", "owner__email", "id"]
    readonly_fields = ["id", "owner", "file", "name", "size", "created_at", "jobs"]
    date_hierarchy = "created_at"

    # Inputs come only from users' submissions (they need an owner and a
    # stored file); operators look and delete, they never add one.
    def has_add_permission(self, request):
        return False
