"""The profile page (preferences, usage, API tokens) and the lab pages."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from workers.quotas import labs_usage

from . import invitations
from .forms import InviteForm, LabForm, PreferencesForm, TokenForm
from .models import ApiToken, Lab, LabInvitation, Membership
from .signals import unique_lab_slug


def _open_invitations(user):
    return LabInvitation.objects.open().for_user(user).select_related("lab", "invited_by")


def _usage_rows(memberships) -> list[dict]:
    memberships = list(memberships)
    usage = labs_usage(m.lab for m in memberships)
    return [
        {"lab": m.lab, "role": m.get_role_display(), **usage[m.lab.pk]}
        for m in memberships
    ]


def _render_profile(request, *, prefs_form=None, token_form=None, new_token=None,
                    raw_secret=None, status=200) -> HttpResponse:
    user = request.user
    profile = user.profile
    memberships = user.memberships.select_related("lab").order_by("lab__name")
    return render(request, "accounts/profile.html", {
        "profile": profile,
        "prefs_form": prefs_form or PreferencesForm(instance=profile, user=user),
        "token_form": token_form or TokenForm(),
        "tokens": user.api_tokens.all(),
        "new_token": new_token,
        "raw_secret": raw_secret,
        "usage_rows": _usage_rows(memberships),
        "invitations": _open_invitations(user),
    }, status=status)


# The creation response carries a raw API secret; no page of the profile
# should be kept by the browser or a proxy.
@never_cache
@login_required
@require_GET
def profile(request: HttpRequest) -> HttpResponse:
    return _render_profile(request)


@never_cache
@login_required
@require_POST
def update_preferences(request: HttpRequest) -> HttpResponse:
    form = PreferencesForm(request.POST, instance=request.user.profile, user=request.user)
    if not form.is_valid():
        return _render_profile(request, prefs_form=form, status=400)
    form.save()
    messages.success(request, "Preferences saved.")
    return redirect("profile")


@never_cache
@login_required
@require_POST
def create_token(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _render_profile(request, token_form=form, status=400)
    token, raw = ApiToken.issue(request.user, form.cleaned_data["name"])
    # Rendered straight into this response rather than redirecting: a redirect
    # would need the secret kept somewhere (session, messages) until the next
    # request, and only its hash may be kept.
    return _render_profile(request, new_token=token, raw_secret=raw, status=201)


@login_required
@require_POST
def revoke_token(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    token.revoke()
    messages.success(request, f"Token “{token.name}” revoked; it no longer works.")
    return redirect("profile")


# --- Labs -------------------------------------------------------------------

def _membership_or_404(user, slug: str) -> Membership:
    # Non-members get the same answer as for a lab that does not exist, so lab
    # names cannot be probed.
    try:
        return Membership.objects.select_related("lab").get(lab__slug=slug, user=user)
    except Membership.DoesNotExist:
        raise Http404("No such lab.") from None


LAST_OWNER_ERROR = "A lab must keep at least one owner."


def _is_last_owner(membership: Membership) -> bool:
    """Call inside a transaction: the lab row stays locked until it ends, so two
    owners leaving at once cannot each count the other as the one who stays."""
    Lab.objects.select_for_update().filter(pk=membership.lab_id).first()
    try:
        membership.refresh_from_db(fields=["role"])
    except Membership.DoesNotExist:
        # Gone while we waited for the lock, e.g. a double-clicked "Leave".
        raise Http404("No such membership.") from None
    if membership.role != Membership.Role.OWNER:
        return False
    return not membership.lab.memberships.filter(
        role=Membership.Role.OWNER).exclude(pk=membership.pk).exists()


def _drop_membership(membership: Membership) -> None:
    membership.delete()
    profile = membership.user.profile
    if profile.default_lab_id == membership.lab_id:
        # Job submission refuses a default lab the user has left; fall back to
        # another of theirs so their next job still counts against a quota.
        profile.default_lab = Lab.objects.filter(memberships__user=membership.user).first()
        profile.save(update_fields=["default_lab"])


@login_required
@require_http_methods(["GET", "POST"])
def labs(request: HttpRequest) -> HttpResponse:
    form = LabForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            lab = form.save(commit=False)
            lab.slug = unique_lab_slug(lab.name)
            # A new lab starts on the site defaults, like a personal lab;
            # operators change quotas in the admin.
            lab.cpu_hours_per_month = settings.BIOFM_DEFAULT_LAB_CPU_HOURS
            lab.gpu_hours_per_month = settings.BIOFM_DEFAULT_LAB_GPU_HOURS
            lab.save()
            Membership.objects.create(lab=lab, user=request.user, role=Membership.Role.OWNER)
        messages.success(request, f"Lab “{lab.name}” created; you are its owner.")
        return redirect("lab_detail", slug=lab.slug)
    memberships = (
        request.user.memberships.select_related("lab").order_by("lab__name")
        .prefetch_related("lab__memberships__user")
    )
    return render(request, "accounts/labs.html", {
        "memberships": memberships,
        "form": form,
        "invitations": _open_invitations(request.user),
    }, status=400 if form.errors else 200)


def _render_lab(request, membership: Membership, *, invite_form=None, error: str = "",
                status: int = 200) -> HttpResponse:
    lab = membership.lab
    is_owner = membership.role == Membership.Role.OWNER
    return render(request, "accounts/lab_detail.html", {
        "lab": lab,
        "membership": membership,
        "is_owner": is_owner,
        "members": lab.memberships.select_related("user").order_by("-role", "user__email"),
        "usage": list(labs_usage([lab])[lab.pk].values()),
        "invite_form": invite_form or InviteForm(lab=lab, inviter=request.user),
        # Invited addresses are the owners' business, not every member's.
        "pending_invitations": (
            lab.invitations.pending().select_related("invited_by") if is_owner else []),
        "error": error,
    }, status=status)


def _owner_membership_or_403(request, slug: str) -> Membership:
    membership = _membership_or_404(request.user, slug)
    if membership.role != Membership.Role.OWNER:
        raise PermissionDenied("Only the lab's owners manage its members.")
    return membership


@login_required
@require_GET
def lab_detail(request: HttpRequest, slug: str) -> HttpResponse:
    return _render_lab(request, _membership_or_404(request.user, slug))


def invitation_sent_message(email: str, lab: Lab) -> str:
    # Word for word the same whether or not the address has an account.
    return (f"If {email} can receive email, an invitation to “{lab.name}” has been sent to it. "
            f"It is valid for {settings.BIOFM_LAB_INVITATION_DAYS} days; they join the lab "
            "only once they accept it.")


@login_required
@require_POST
def lab_invite(request: HttpRequest, slug: str) -> HttpResponse:
    own = _owner_membership_or_403(request, slug)
    form = InviteForm(request.POST, lab=own.lab, inviter=request.user)
    if not form.is_valid():
        return _render_lab(request, own, invite_form=form, status=400)
    email = form.cleaned_data["email"]
    _, sent = invitations.invite(own.lab, email, request.user)
    if sent:
        messages.success(request, invitation_sent_message(email, own.lab))
    else:
        messages.error(request, f"The invitation for {email} is saved, but the email could not "
                                "be sent just now. Invite the address again later to resend it.")
    return redirect("lab_detail", slug=slug)


@login_required
@require_POST
def lab_revoke_invitation(request: HttpRequest, slug: str, invitation_id: int) -> HttpResponse:
    own = _owner_membership_or_403(request, slug)
    invitation = get_object_or_404(LabInvitation, pk=invitation_id, lab=own.lab)
    try:
        invitations.revoke(invitation)
    except invitations.InvitationClosed as closed:
        return _render_lab(request, own, error=str(closed), status=400)
    messages.success(request, f"The invitation for {invitation.email} is withdrawn; "
                              "its link no longer works.")
    return redirect("lab_detail", slug=slug)


@login_required
@require_POST
@transaction.atomic
def lab_set_role(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    own = _owner_membership_or_403(request, slug)
    target = get_object_or_404(Membership.objects.select_related("user"),
                               pk=membership_id, lab=own.lab)
    role = request.POST.get("role", "")
    if role not in Membership.Role.values:
        return _render_lab(request, own, error="Choose the role “owner” or “member”.", status=400)
    if role == Membership.Role.MEMBER and _is_last_owner(target):
        return _render_lab(request, own, error=LAST_OWNER_ERROR, status=400)
    target.role = role
    target.save(update_fields=["role"])
    messages.success(request, f"{target.user.email} is now {target.get_role_display().lower()}.")
    return redirect("lab_detail", slug=slug)


@login_required
@require_POST
@transaction.atomic
def lab_remove_member(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    own = _owner_membership_or_403(request, slug)
    target = get_object_or_404(Membership.objects.select_related("user", "lab"),
                               pk=membership_id, lab=own.lab)
    if target.pk == own.pk:
        return _leave(request, own)
    if _is_last_owner(target):
        return _render_lab(request, own, error=LAST_OWNER_ERROR, status=400)
    _drop_membership(target)
    messages.success(request, f"{target.user.email} removed from the lab.")
    return redirect("lab_detail", slug=slug)


def _leave(request, membership: Membership) -> HttpResponse:
    if _is_last_owner(membership):
        return _render_lab(
            request, membership, status=400,
            error="You are this lab's last owner, so you cannot leave it. "
                  "Make another member an owner first.",
        )
    _drop_membership(membership)
    messages.success(request, f"You left “{membership.lab.name}”.")
    return redirect("labs")


@login_required
@require_POST
@transaction.atomic
def lab_leave(request: HttpRequest, slug: str) -> HttpResponse:
    return _leave(request, _membership_or_404(request.user, slug))


# --- Invitations, the invitee's side --------------------------------------------

def _invitation_for(user, **lookup) -> LabInvitation:
    # An invitation for an address the user has not verified is another
    # person's: the same 404 as no invitation at all.
    return get_object_or_404(
        LabInvitation.objects.for_user(user).select_related("lab", "invited_by"), **lookup)


def _render_invitation(request, invitation: LabInvitation, *, status: int = 200) -> HttpResponse:
    return render(request, "accounts/invitation.html", {
        "invitation": invitation,
        "closed_reason": "" if invitation.is_open else invitations.closed_reason(invitation),
    }, status=status if invitation.is_open else 410)


@never_cache
@require_GET
def invitation_link(request: HttpRequest, token: str) -> HttpResponse:
    """The link in the invitation email."""
    invitation = invitations.by_token(token)
    if invitation is None:
        raise Http404("No such invitation.")
    if not request.user.is_authenticated:
        # Whoever holds the link was sent it; they still have to log in (or
        # sign up) with the invited address to answer it.
        return render(request, "accounts/invitation_anonymous.html",
                      {"next": request.get_full_path()})
    return _render_invitation(request, _invitation_for(request.user, pk=invitation.pk))


@login_required
@require_POST
def invitation_accept(request: HttpRequest, invitation_id: int) -> HttpResponse:
    invitation = _invitation_for(request.user, pk=invitation_id)
    try:
        membership = invitations.accept(invitation, request.user)
    except invitations.InvitationClosed as closed:
        return _render_invitation(request, closed.invitation)
    messages.success(request, f"You joined “{membership.lab.name}”.")
    return redirect("lab_detail", slug=membership.lab.slug)


@login_required
@require_POST
def invitation_decline(request: HttpRequest, invitation_id: int) -> HttpResponse:
    invitation = _invitation_for(request.user, pk=invitation_id)
    try:
        invitations.decline(invitation, request.user)
    except invitations.InvitationClosed as closed:
        return _render_invitation(request, closed.invitation)
    messages.success(request, f"You declined the invitation to “{invitation.lab.name}”.")
    return redirect("labs")
