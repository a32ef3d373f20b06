"""Operators set quotas and limits here; users manage the rest on their pages."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count

from . import invitations
from .models import ApiToken, Lab, LabInvitation, Membership, Profile


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "joined_at"]


@admin.register(Lab)
class LabAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "cpu_hours_per_month", "gpu_hours_per_month",
                    "member_count", "created_at"]
    list_editable = ["cpu_hours_per_month", "gpu_hours_per_month"]
    search_fields = ["name", "slug", "memberships__user__email"]
    prepopulated_fields = {"slug": ["name"]}
    fields = ["name", "slug", "cpu_hours_per_month", "gpu_hours_per_month", "created_at"]
    inlines = [MembershipInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_member_count=Count("memberships"))

    @admin.display(description="members", ordering="_member_count")
    def member_count(self, lab):
        return lab._member_count


class ProfileAdminForm(forms.ModelForm):
    class Meta:
        model = Profile
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        lab = cleaned.get("default_lab")
        user = self.instance.user
        # Job submission refuses a default lab the user is not in.
        if lab is not None and user is not None and not lab.memberships.filter(user=user).exists():
            self.add_error("default_lab", "The user is not a member of this lab.")
        return cleaned


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    form = ProfileAdminForm
    list_display = ["user", "default_lab", "max_running_jobs", "running_limit",
                    "notify_succeeded", "notify_failed", "notify_cancelled"]
    list_editable = ["max_running_jobs"]
    list_select_related = ["user", "default_lab"]
    search_fields = ["user__email", "user__username"]
    autocomplete_fields = ["default_lab"]
    fields = ["user", "default_lab", "max_running_jobs",
              "notify_succeeded", "notify_failed", "notify_cancelled"]

    readonly_fields = ["user"]

    def has_add_permission(self, request):
        # Every user gets a profile when the user is created (signals.py).
        return False

    @admin.display(description="running limit (effective)")
    def running_limit(self, profile):
        return profile.running_limit


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    # token_hash is in none of these lists on purpose: it must not appear on
    # any admin page, not even read-only.
    list_display = ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at", "active"]
    list_select_related = ["user"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "user__email"]
    fields = ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["user", "prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke_selected"]

    def has_add_permission(self, request):
        # The raw secret exists only in its creation response, which has to
        # go to the token's owner: users create tokens on their profile page.
        return False

    @admin.display(boolean=True, description="active")
    def active(self, token):
        return token.is_active

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke_selected(self, request, queryset):
        tokens = list(queryset.filter(revoked_at__isnull=True))
        for token in tokens:
            token.revoke()
        self.message_user(request, f"{len(tokens)} token(s) revoked.", messages.SUCCESS)


@admin.register(LabInvitation)
class LabInvitationAdmin(admin.ModelAdmin):
    # token_hash stays off every page, like an API token's.
    list_display = ["email", "lab", "invited_by", "status", "sent_at", "expires_at", "expired",
                    "responded_at"]
    list_select_related = ["lab", "invited_by"]
    list_filter = ["status"]
    search_fields = ["email", "lab__name", "lab__slug", "invited_by__email"]
    fields = ["lab", "email", "invited_by", "status", "created_at", "sent_at", "expires_at",
              "responded_at", "responded_by"]
    readonly_fields = ["lab", "email", "invited_by", "status", "created_at", "sent_at",
                       "responded_at", "responded_by"]
    actions = ["revoke_selected"]

    def has_add_permission(self, request):
        # An invitation is only worth its emailed link, which only the lab
        # page's invite form sends.
        return False

    @admin.display(boolean=True, description="expired")
    def expired(self, invitation):
        return invitation.is_expired

    @admin.action(description="Revoke selected pending invitations", permissions=["change"])
    def revoke_selected(self, request, queryset):
        pending = list(queryset.filter(status=LabInvitation.Status.PENDING))
        for invitation in pending:
            invitations.revoke(invitation)
        self.message_user(request, f"{len(pending)} invitation(s) revoked.", messages.SUCCESS)
