"""Lab invitations: an owner invites an email address, the invitee answers.

Nothing here tells the inviter whether the address has an account: the same
email goes out, the same message comes back. The email itself differs, since
only the address's owner reads it: one without an account is asked to sign up.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from .models import Lab, LabInvitation, Membership, hash_token

log = logging.getLogger(__name__)


class InvitationClosed(Exception):
    """The invitation was answered, revoked or has expired."""

    def __init__(self, invitation: LabInvitation):
        super().__init__(closed_reason(invitation))
        self.invitation = invitation


def closed_reason(invitation: LabInvitation) -> str:
    if invitation.status == LabInvitation.Status.ACCEPTED:
        return "This invitation has already been accepted."
    if invitation.status == LabInvitation.Status.DECLINED:
        return "This invitation has already been declined."
    if invitation.status == LabInvitation.Status.REVOKED:
        return "This invitation was withdrawn by the lab's owners."
    return (f"This invitation expired on {timezone.localtime(invitation.expires_at):%d %B %Y}. "
            "Ask the lab's owners to invite you again.")


def sent_today(user) -> int:
    since = timezone.now() - timedelta(days=1)
    return LabInvitation.objects.filter(invited_by=user, sent_at__gte=since).count()


def invite(lab: Lab, email: str, inviter) -> tuple[LabInvitation, bool]:
    """Invite the address (lower-cased) into the lab and email the link.

    Inviting an address that already has a pending invitation sends it a fresh
    link with a new expiry; the old link stops working. Returns the invitation
    and whether the email went out.
    """
    email = email.strip().lower()
    raw, digest = LabInvitation.new_token()
    now = timezone.now()
    expires = now + timedelta(days=settings.BIOFM_LAB_INVITATION_DAYS)
    with transaction.atomic():
        # Locking the lab serialises two owners inviting the same address, which
        # the one-pending-invitation constraint would otherwise turn into an error.
        Lab.objects.select_for_update().filter(pk=lab.pk).first()
        invitation = LabInvitation.objects.pending().filter(lab=lab, email=email).first()
        if invitation is None:
            invitation = LabInvitation(lab=lab, email=email, created_at=now)
        invitation.invited_by = inviter
        invitation.token_hash = digest
        invitation.sent_at = now
        invitation.expires_at = expires
        invitation.save()
    try:
        invitation_email(invitation, raw).send()
    except Exception:  # noqa: BLE001 - any mail failure is reported the same way
        log.exception("could not send the invitation email for invitation %s", invitation.pk)
        return invitation, False
    return invitation, True


def _has_account(email: str) -> bool:
    return (EmailAddress.objects.filter(email__iexact=email).exists()
            or get_user_model().objects.filter(email__iexact=email).exists())


def invitation_url(raw_token: str) -> str:
    return settings.SITE_URL + reverse("invitation_link", args=[raw_token])


def invitation_email(invitation: LabInvitation, raw_token: str) -> EmailMultiAlternatives:
    inviter = invitation.invited_by.email if invitation.invited_by else "An owner"
    context = {
        "invitation": invitation,
        "inviter": inviter,
        "url": invitation_url(raw_token),
        "signup_url": settings.SITE_URL + reverse("account_signup"),
        "labs_url": settings.SITE_URL + reverse("labs"),
        "has_account": _has_account(invitation.email),
        "site_name": settings.BIOFM_SITE_NAME,
        "site_url": settings.SITE_URL,
    }
    subject = (f"[{settings.BIOFM_SITE_NAME}] {inviter} invited you to join "
               f"the lab “{invitation.lab.name}”")
    text = render_to_string("accounts/email/lab_invitation.txt", context)
    html = render_to_string("accounts/email/lab_invitation.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [invitation.email])
    message.attach_alternative(html, "text/html")
    return message


def by_token(raw_token: str) -> LabInvitation | None:
    return LabInvitation.objects.select_related("lab", "invited_by").filter(
        token_hash=hash_token(raw_token)).first()


def _lock_open(invitation: LabInvitation) -> LabInvitation:
    """Call inside a transaction: re-read the row under a lock, so a double
    click or a revocation racing the answer is seen."""
    locked = LabInvitation.objects.select_for_update().get(pk=invitation.pk)
    if not locked.is_open:
        raise InvitationClosed(locked)
    return locked


@transaction.atomic
def accept(invitation: LabInvitation, user) -> Membership:
    invitation = _lock_open(invitation)
    membership, _ = Membership.objects.get_or_create(
        lab_id=invitation.lab_id, user=user, defaults={"role": Membership.Role.MEMBER})
    _answer(invitation, user, LabInvitation.Status.ACCEPTED)
    return membership


@transaction.atomic
def decline(invitation: LabInvitation, user) -> None:
    _answer(_lock_open(invitation), user, LabInvitation.Status.DECLINED)


@transaction.atomic
def revoke(invitation: LabInvitation) -> None:
    _answer(_lock_open_or_expired(invitation), None, LabInvitation.Status.REVOKED)


def _lock_open_or_expired(invitation: LabInvitation) -> LabInvitation:
    # An owner may also withdraw an expired one, to tidy the list.
    locked = LabInvitation.objects.select_for_update().get(pk=invitation.pk)
    if locked.status != LabInvitation.Status.PENDING:
        raise InvitationClosed(locked)
    return locked


def _answer(invitation: LabInvitation, user, status: str) -> None:
    invitation.status = status
    invitation.responded_at = timezone.now()
    invitation.responded_by = user
    invitation.save(update_fields=["status", "responded_at", "responded_by"])
