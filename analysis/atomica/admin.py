from django.contrib import admin

from .models import StoredInput


@admin.register(StoredInput)
class StoredInputAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "size", "created_at"]
    list_select_related = ["owner"]
    search_fields = ["name", "owner__email", "id"]
    readonly_fields = ["id", "owner", "file", "name", "size", "created_at", "jobs"]
    date_hierarchy = "created_at"
