"""Who sees what (accounts.scoping): owners see theirs, lab members see what
is shared with their lab, everyone else gets what a missing id gets; child
objects follow their parent."""

from __future__ import annotations

import uuid

import pytest
from django.http import Http404

from accounts.models import Lab, Membership
from accounts.scoping import find_visible, get_visible_or_404, require_visible_ids
from design.models import BindingSite, Campaign, CampaignRun, ShortlistEntry, Target
from workers.errors import ParamsError
from workers.models import Job

pytestmark = pytest.mark.django_db

SCOPED = (Job, Target, Campaign, ShortlistEntry, BindingSite, CampaignRun)


@pytest.fixture
def lab(user, other_user, make_user):
    """A lab of three: alice, bob and carol. Not the personal labs."""
    lab = Lab.objects.create(name="Group", slug="group")
    for u in (user, other_user, make_user("carol@example.org")):
        Membership.objects.create(lab=lab, user=u)
    return lab


def _objects(owner, lab, shared):
    target = Target.objects.create(owner=owner, lab=lab, shared=shared, name="t", structure="t.pdb", format="pdb")
    site = BindingSite.objects.create(target=target, name="s", method="box", center=[0, 0, 0], size=[20, 20, 20])
    campaign = Campaign.objects.create(owner=owner, lab=lab, shared=shared, name="c", target=target, site=site)
    job = Job.objects.create(kind="design.campaign_run", owner=owner, lab=lab, shared=shared)
    run = CampaignRun.objects.create(campaign=campaign, job=job)
    entry = ShortlistEntry.objects.create(owner=owner, lab=lab, shared=shared, smiles="CCO")
    return {Job: job, Target: target, Campaign: campaign, ShortlistEntry: entry, BindingSite: site, CampaignRun: run}


@pytest.mark.parametrize("model", SCOPED, ids=lambda m: m.__name__)
def test_owner_and_lab_members_see_shared_objects_once(model, user, other_user, lab):
    objs = _objects(other_user, lab, shared=True)
    for viewer in (user, other_user):
        assert list(model.objects.visible_to(viewer)) == [objs[model]]
        assert get_visible_or_404(model, viewer, objs[model].pk) == objs[model]


@pytest.mark.parametrize("model", SCOPED, ids=lambda m: m.__name__)
def test_unshared_objects_are_the_owners_alone(model, user, other_user, lab):
    objs = _objects(other_user, lab, shared=False)
    assert not model.objects.visible_to(user).exists()
    assert find_visible(model, user, objs[model].pk) is None
    with pytest.raises(Http404):
        get_visible_or_404(model, user, objs[model].pk)
    assert find_visible(model, other_user, objs[model].pk) == objs[model]


@pytest.mark.parametrize("model", SCOPED, ids=lambda m: m.__name__)
def test_shared_with_another_lab_is_hidden(model, user, other_user):
    # bob's personal lab: alice is no member of it.
    _objects(other_user, other_user.profile.default_lab, shared=True)
    assert not model.objects.visible_to(user).exists()


def test_anonymous_sees_nothing(other_user, lab):
    from django.contrib.auth.models import AnonymousUser

    _objects(other_user, lab, shared=True)
    assert not Job.objects.visible_to(AnonymousUser()).exists()
    assert not BindingSite.objects.visible_to(None).exists()


def test_leaving_the_lab_hides_its_shared_objects(user, other_user, lab):
    objs = _objects(other_user, lab, shared=True)
    Membership.objects.filter(lab=lab, user=user).delete()
    assert find_visible(Job, user, objs[Job].pk) is None
    assert find_visible(BindingSite, user, objs[BindingSite].pk) is None


@pytest.mark.parametrize("bad", ["not-a-uuid", None, 12, str(uuid.uuid4())])
def test_malformed_or_missing_ids_are_404(user, bad):
    with pytest.raises(Http404, match="No such job"):
        get_visible_or_404(Job, user, bad, "job")


def test_a_queryset_chooses_the_columns(user):
    job = Job.objects.create(kind="test.sleep", owner=user, params={"big": "x"})
    got = get_visible_or_404(Job.objects.only("id", "status"), user, job.pk)
    assert got.get_deferred_fields() >= {"params", "result"}


def test_submitted_ids_must_be_visible(user, other_user, lab):
    mine = _objects(user, lab, shared=False)
    theirs = _objects(other_user, lab, shared=False)
    require_visible_ids(user, [("target_id", Target, "target", mine[Target].pk),
                               ("site_id", BindingSite, "binding site", str(mine[BindingSite].pk)),
                               ("campaign_id", Campaign, "campaign", None),       # absent: skipped
                               ("campaign_id", Campaign, "campaign", "seven")])  # malformed: the validator's
    with pytest.raises(ParamsError) as err:
        require_visible_ids(user, [("site_id", BindingSite, "binding site", theirs[BindingSite].pk)])
    assert err.value.field == "site_id"
    assert str(theirs[BindingSite].pk) in err.value.message
    missing = BindingSite.objects.order_by("-pk").first().pk + 100
    with pytest.raises(ParamsError) as absent:
        require_visible_ids(user, [("site_id", BindingSite, "binding site", missing)])
    # Someone else's id and a missing one get the same answer.
    assert err.value.message.replace(str(theirs[BindingSite].pk), "N") == \
        absent.value.message.replace(str(missing), "N")
