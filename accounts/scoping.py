"""Who may see what: every stored object belongs to an owner and, optionally,
a lab; its owner sees it, and so do the lab's members once it is shared.

One abstract model carries the fields, one queryset method decides
visibility, and two helpers turn "not visible" into the answers the portal
gives (a 404 for pages and the API, a field error for submitted ids). Child
objects (a target's sites, a campaign's runs) are scoped through their parent
with the same query, so `visible_to` is the only door into any of them.

`visible_to` is an EXISTS subquery on the user's memberships, never a join:
a join yields one row per member of the lab, and removing the duplicates
(DISTINCT) makes the database compare every column of every row, multi-megabyte
JSON included.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.http import Http404
from django.utils import timezone

from .models import Membership


class LabScopedQuerySet(models.QuerySet):
    # The lookup path from this model to the object carrying owner/lab/shared:
    # "" for a LabScoped model itself, "target__" for a target's binding sites.
    scope_prefix = ""

    def visible_to(self, user):
        """What `user` may see: their own, and what is shared with a lab of theirs."""
        if user is None or not user.is_authenticated:
            return self.none()
        p = self.scope_prefix
        in_their_lab = Exists(Membership.objects.filter(user=user, lab=OuterRef(f"{p}lab")))
        return self.filter(Q(**{f"{p}owner": user}) | (Q(**{f"{p}shared": True}) & in_their_lab))


def scoped_through(parent: str) -> type[LabScopedQuerySet]:
    """A queryset class for a child model scoped through its `parent` foreign key."""
    return type(f"{parent.title()}ScopedQuerySet", (LabScopedQuerySet,), {"scope_prefix": f"{parent}__"})


class LabScoped(models.Model):
    """Owner, lab, sharing and creation time, as every scoped object has them."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="%(app_label)s_%(class)s_set")
    lab = models.ForeignKey("accounts.Lab", null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="%(app_label)s_%(class)s_set")
    shared = models.BooleanField("shared with the lab", default=False,
                                 help_text="Members of the lab can see it and use it.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = LabScopedQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["-created_at"]


def find_visible(model_or_qs, user, pk):
    """The object if `user` may see it, else None (also for a malformed id)."""
    qs = model_or_qs if isinstance(model_or_qs, models.QuerySet) else model_or_qs._default_manager.all()
    try:
        return qs.visible_to(user).get(pk=pk)
    except (ObjectDoesNotExist, ValueError, TypeError, ValidationError):
        # A malformed id (a bad UUID, a word for a number) is as missing as an absent one.
        return None


def get_visible_or_404(model_or_qs, user, pk, what: str | None = None):
    """The object if `user` may see it; otherwise a 404, for someone else's
    object exactly as for a missing one. Pass a queryset to choose columns
    (`Job.objects.only(...)`) or joins."""
    obj = find_visible(model_or_qs, user, pk)
    if obj is None:
        model = model_or_qs.model if isinstance(model_or_qs, models.QuerySet) else model_or_qs
        raise Http404(f"No such {what or model._meta.verbose_name}.")
    return obj


def require_visible_ids(user, checks) -> None:
    """Check that the ids a submission names belong to `user` (or their labs'
    shared objects): `checks` is (field, model, what, value) tuples. An id the
    user may not see raises the ParamsError a missing one gets, naming the
    field, so the answer says nothing about other users' records. Absent or
    malformed values are skipped: the kind's validator names those."""
    from workers.errors import ParamsError  # a plain exception module; no models

    for field, model, what, value in checks:
        try:
            pk = int(value)
        except (TypeError, ValueError):
            continue
        if not model._default_manager.visible_to(user).filter(pk=pk).exists():
            raise ParamsError(field, f"No {what} with id {pk}.")
