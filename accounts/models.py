"""Users' profiles, labs and API tokens.

Every user belongs to at least one lab: signing up creates a personal lab, so
quotas and sharing work the same for a lone user and for a group.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class Lab(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="labs"
    )
    # Monthly worker-hour quotas, counted apart for CPU and GPU (workers.quotas).
    # Null means unlimited.
    cpu_hours_per_month = models.FloatField(null=True, blank=True)
    gpu_hours_per_month = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def quota_hours(self, hardware: str) -> float | None:
        return self.gpu_hours_per_month if hardware == "gpu" else self.cpu_hours_per_month


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MEMBER = "member", "Member"

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["lab", "user"], name="one_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.lab} ({self.role})"


class Profile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    default_lab = models.ForeignKey(Lab, null=True, blank=True, on_delete=models.SET_NULL)
    # The lab last picked when sharing something (a job, a target, a
    # campaign): the lab picker offers it first next time.
    last_lab = models.ForeignKey(Lab, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    # Jobs beyond this many at once wait in "queued". Null: the site default.
    max_running_jobs = models.PositiveIntegerField(null=True, blank=True)
    notify_succeeded = models.BooleanField("email when a job succeeds", default=True)
    notify_failed = models.BooleanField("email when a job fails", default=True)
    notify_cancelled = models.BooleanField("email when a job is cancelled", default=True)

    def __str__(self) -> str:
        return f"profile of {self.user}"

    @property
    def running_limit(self) -> int:
        if self.max_running_jobs is not None:
            return self.max_running_jobs
        return settings.BIOFM_DEFAULT_MAX_RUNNING_JOBS

    def wants_email(self, status: str) -> bool:
        return {
            "succeeded": self.notify_succeeded,
            "failed": self.notify_failed,
            "cancelled": self.notify_cancelled,
        }.get(status, False)


TOKEN_PREFIX = "bfm_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_token(raw: str) -> str:
    # Tokens are 256-bit random, so a fast hash is enough: there is nothing to
    # brute-force, unlike a password.
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    # First characters of the token, to tell tokens apart; never the secret.
    prefix = models.CharField(max_length=16, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, user, name: str) -> tuple["ApiToken", str]:
        """Create a token; the raw secret is returned once and never stored."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user, name=name, prefix=raw[:10], token_hash=hash_token(raw)
        )
        return token, raw

    @classmethod
    def authenticate(cls, raw: str):
        if not raw or not raw.startswith(TOKEN_PREFIX):
            return None
        token = (
            cls.objects.active().select_related("user").filter(token_hash=hash_token(raw)).first()
        )
        if token is None or not token.user.is_active:
            return None
        now = timezone.now()
        # Written at most once a minute: a write per API call would cost a
        # commit on every poll, for a date shown to the minute.
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
            cls.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])


class LabInvitationQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(status=LabInvitation.Status.PENDING)

    def open(self):
        """Pending and not yet expired: the ones an invitee can still accept."""
        return self.pending().filter(expires_at__gt=timezone.now())

    def for_user(self, user):
        """Invitations addressed to one of the user's verified email addresses."""
        from allauth.account.models import EmailAddress

        emails = {
            e.lower() for e in
            EmailAddress.objects.filter(user=user, verified=True).values_list("email", flat=True)
        }
        return self.filter(email__in=emails)


class LabInvitation(models.Model):
    """An owner's invitation of an email address into a lab.

    Only the invitee's acceptance creates a membership, and only a user who has
    verified the invited address can see or answer it. The link in the email
    carries a random token of which only the hash is kept.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        REVOKED = "revoked", "Revoked"

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="invitations")
    # Stored lower-cased: addresses are compared case-insensitively.
    email = models.EmailField()
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
        related_name="lab_invitations_sent",
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    # Inviting the same address again sends a fresh link and moves these on.
    sent_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    responded_at = models.DateTimeField(null=True, blank=True)
    responded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="lab_invitations_answered",
    )

    objects = LabInvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-sent_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["lab", "email"], condition=models.Q(status="pending"),
                name="one_pending_invitation_per_address",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.lab} ({self.status})"

    @staticmethod
    def new_token() -> tuple[str, str]:
        """A raw token for the link and its hash for the row."""
        raw = secrets.token_urlsafe(32)
        return raw, hash_token(raw)

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.PENDING and not self.is_expired
