"""Sharing with a chosen lab: every sharing form has a lab picker listing the
user's labs and starting on the one last picked; pages say which lab an
object is shared with; the API takes `lab`. Alice and Bob share a group lab;
each also has a personal lab, which is Alice's default."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts.models import ApiToken, Lab, Membership
from design.models import BindingSite, Campaign, Target
from workers.models import Job

pytestmark = pytest.mark.django_db
PROTEIN = Path(__file__).parent / "fixtures" / "design" / "1ia1_protein.pdb"
FASTA = ">p1\nMKTAYIAKQRQISFVKSHFSRQ\n"


@pytest.fixture
def group(user, other_user):
    lab = Lab.objects.create(name="Structure group", slug="structure-group")
    Membership.objects.create(lab=lab, user=user, role=Membership.Role.OWNER)
    Membership.objects.create(lab=lab, user=other_user)
    return lab


@pytest.fixture
def strangers(make_user):
    """A lab Alice is not in."""
    outsider = make_user("eve@example.org")
    return outsider.profile.default_lab


@pytest.fixture
def bob(other_user, group) -> Client:
    client = Client()
    client.force_login(other_user)
    return client


def token_client(user) -> Client:
    _, raw = ApiToken.issue(user, "t")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.fixture
def target(user):
    target = Target(owner=user, name="DHFR", format="pdb", lab=user.profile.default_lab)
    with PROTEIN.open("rb") as fh:
        target.structure.save("1ia1.pdb", fh, save=False)
    target.save()
    BindingSite.objects.create(target=target, name="box", method="box", center=[1, 2, 3], size=[20, 20, 20])
    return target


@pytest.fixture
def campaign(user, target):
    return Campaign.objects.create(owner=user, name="leads", target=target, site=target.sites.get())


def lab_choices(page) -> dict[int, str]:
    field = page.context["form"]["lab"]
    return {int(str(value)): str(label) for value, label in field.field.choices}


@pytest.mark.parametrize("url_name", ["analysis:new", "analysis:esm_new", "analysis:atomica_new",
                                      "design:properties_new", "design:docking_new", "design:target_new",
                                      "design:campaign_new", "design:run_new"])
def test_every_sharing_form_offers_the_users_labs(alice_client, user, group, strangers, campaign, url_name):
    args = [campaign.pk] if url_name == "design:run_new" else []
    page = alice_client.get(reverse(url_name, args=args))
    assert page.status_code == 200
    personal = user.profile.default_lab
    assert lab_choices(page) == {personal.pk: personal.name, group.pk: group.name}
    assert page.context["form"]["lab"].value() == personal.pk  # nothing picked yet: the default lab
    assert b'name="lab"' in page.content and b'name="shared"' in page.content


def test_job_shared_through_the_page_is_seen_by_the_lab(alice_client, bob, user, group, no_broker):
    response = alice_client.post(reverse("analysis:new"), {"sequences": FASTA, "window": 9, "shared": "on",
                                                          "lab": group.pk})
    job = Job.objects.get()
    assert response.status_code == 302 and job.lab == group and job.shared
    page = bob.get(job.get_absolute_url())
    assert page.status_code == 200 and "Shared with Structure group" in page.content.decode()
    # The picker now starts on the lab just used, on every form.
    user.profile.refresh_from_db()
    assert user.profile.last_lab == group and user.profile.default_lab != group
    assert alice_client.get(reverse("analysis:esm_new")).context["form"]["lab"].value() == group.pk


def test_not_shared_stays_private_even_in_the_lab(alice_client, bob, group, no_broker):
    alice_client.post(reverse("analysis:new"), {"sequences": FASTA, "window": 9, "lab": group.pk})
    job = Job.objects.get()
    assert job.lab == group and not job.shared
    assert bob.get(job.get_absolute_url()).status_code == 404
    assert "Not shared" in alice_client.get(job.get_absolute_url()).content.decode()


def test_a_lab_the_user_is_not_in_is_refused_on_the_page(alice_client, group, strangers, no_broker):
    page = alice_client.post(reverse("analysis:new"), {"sequences": FASTA, "window": 9, "shared": "on",
                                                      "lab": strangers.pk})
    assert page.status_code == 400 and "Choose one of your labs." in page.context["form"].errors["lab"]
    assert not Job.objects.exists()


def test_target_and_campaign_shared_through_the_pages(alice_client, bob, user, group):
    response = alice_client.post(reverse("design:target_new"), {
        "name": "DHFR shared", "structure": SimpleUploadedFile("1ia1.pdb", PROTEIN.read_bytes()),
        "shared": "on", "lab": group.pk})
    target = Target.objects.get(name="DHFR shared")
    assert response.status_code == 302 and target.lab == group
    page = bob.get(target.get_absolute_url())
    assert page.status_code == 200 and "Shared with Structure group" in page.content.decode()

    response = alice_client.post(reverse("design:campaign_new"), {
        "name": "group campaign", "target": target.pk, "shared": "on", "lab": group.pk})
    campaign = Campaign.objects.get(name="group campaign")
    assert response.status_code == 302 and campaign.lab == group
    page = bob.get(campaign.get_absolute_url())
    assert page.status_code == 200 and "Shared with Structure group" in page.content.decode()


def test_campaign_run_shared_through_the_page(alice_client, bob, campaign, group, no_broker):
    response = alice_client.post(reverse("design:run_new", args=[campaign.pk]), {
        "mode": "weighted", "population_size": 10, "generations": 2, "random_seed": 0, "brics_seeds": 0,
        "objective_1": "qed", "direction_1": "max", "weight_1": 1, "direction_2": "max", "weight_2": 1,
        "direction_3": "max", "weight_3": 1, "dock_exhaustiveness": 4, "max_dockings": 10, "dock_weight": 1,
        "shared": "on", "lab": group.pk})
    job = Job.objects.get()
    assert response.status_code == 302, response.context["form"].errors
    assert job.lab == group and job.shared
    assert bob.get(job.get_absolute_url()).status_code == 200


def test_api_shares_with_the_lab_given(user, other_user, group, no_broker):
    alice, bob_api = token_client(user), token_client(other_user)
    generic = alice.post("/api/v1/jobs", {"kind": "analysis.protparam", "params": {"fasta": FASTA},
                                          "shared": True, "lab": group.pk}, content_type="application/json")
    assert generic.status_code == 202, generic.content
    assert generic.json()["lab"] == {"id": group.pk, "slug": group.slug, "name": group.name}
    feature = alice.post("/api/v1/analysis/protparam", {"fasta": FASTA, "shared": True, "lab": group.pk},
                         content_type="application/json")
    assert feature.status_code == 202, feature.content
    for body in (generic.json(), feature.json()):
        seen = bob_api.get(body["api_url"])
        assert seen.status_code == 200 and seen.json()["lab"]["id"] == group.pk
    assert {j["id"] for j in bob_api.get("/api/v1/jobs").json()} == {generic.json()["id"], feature.json()["id"]}
    user.profile.refresh_from_db()
    assert user.profile.last_lab == group


def test_api_without_lab_uses_the_default_lab(user, other_user, group, no_broker):
    body = token_client(user).post("/api/v1/analysis/protparam", {"fasta": FASTA, "shared": True},
                                   content_type="application/json").json()
    assert body["lab"]["id"] == user.profile.default_lab_id
    assert token_client(other_user).get(body["api_url"]).status_code == 404


@pytest.mark.parametrize("url, body", [
    ("/api/v1/jobs", {"kind": "analysis.protparam", "params": {"fasta": FASTA}}),
    ("/api/v1/analysis/protparam", {"fasta": FASTA}),
    ("/api/v1/esm/embeddings", {"model": "esm2_t6_8M_UR50D", "fasta": FASTA}),
    ("/api/v1/design/properties", {"molecules": "CCO\n"}),
    ("/api/v1/design/campaigns/C/runs", {}),
])
@pytest.mark.parametrize("which", ["strangers", "missing", "slug"])
def test_api_refuses_a_lab_the_user_is_not_in(user, group, strangers, campaign, no_broker, url, body, which):
    lab = {"strangers": strangers.pk, "missing": strangers.pk + 1000, "slug": strangers.slug}[which]
    response = token_client(user).post(url.replace("/C/", f"/{campaign.pk}/"), {**body, "lab": lab},
                                       content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["field"] == "lab"
    assert not Job.objects.exists()
