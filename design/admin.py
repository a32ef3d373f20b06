from django.contrib import admin

from .models import BindingSite, Campaign, CampaignRun, ShortlistEntry, Target


class SiteInline(admin.TabularInline):
    model = BindingSite
    extra = 0
    fields = ("name", "method", "center", "size", "protein_atoms_in_box", "warnings")
    readonly_fields = fields


@admin.register(Target)
class TargetAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "lab", "shared", "format", "n_atoms", "created_at")
    list_filter = ("shared", "format", "lab")
    search_fields = ("name", "owner__email")
    readonly_fields = ("uid", "chains", "n_atoms")
    inlines = [SiteInline]


class RunInline(admin.TabularInline):
    model = CampaignRun
    extra = 0
    fields = ("job", "created_at")
    readonly_fields = fields


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "target", "site", "owner", "lab", "shared", "created_at")
    list_filter = ("shared", "lab")
    search_fields = ("name", "owner__email", "target__name")
    inlines = [RunInline]


@admin.register(ShortlistEntry)
class ShortlistAdmin(admin.ModelAdmin):
    list_display = ("name", "smiles", "owner", "lab", "source_job", "created_at")
    search_fields = ("smiles", "name", "owner__email")
