"""Accounts: allauth sign-up, verification and password reset; the profile page
(preferences, usage, API tokens); labs and their members; the admin pages."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from urllib.parse import urlparse

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken, Lab, LabInvitation, Membership
from workers.models import Job

PASSWORD = "correct-horse-battery"
NEW_PASSWORD = "another-staple-lantern"
TOKEN_RE = re.compile(r"bfm_[A-Za-z0-9_\-]{20,}")


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # allauth counts sign-ups, logins and resets in the cache; a clean cache
    # keeps one test's requests from throttling the next.
    cache.clear()
    yield
    cache.clear()


def _link_in(message, pattern: str) -> str:
    match = re.search(r"https?://\S+" + pattern + r"\S*", message.body)
    assert match, f"no link matching {pattern!r} in:\n{message.body}"
    return urlparse(match.group(0)).path


def _logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def _login(client, email, password):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def _personal_lab(user) -> Lab:
    return user.memberships.get().lab


# --- Sign-up, verification, password reset ---------------------------------

@pytest.mark.django_db
def test_signup_needs_email_verification_before_login(client):
    email = "carol@example.org"
    response = client.post(reverse("account_signup"),
                           {"email": email, "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [email]
    assert not _logged_in(client)
    confirm_path = _link_in(mail.outbox[0], "/accounts/confirm-email/")

    _login(client, email, PASSWORD)
    assert not _logged_in(client)
    assert client.get(reverse("profile")).status_code == 302

    page = client.get(confirm_path)
    assert page.status_code == 200
    assert 'class="topbar"' in page.content.decode()
    client.post(confirm_path)
    assert EmailAddress.objects.get(email=email).verified

    _login(client, email, PASSWORD)
    assert _logged_in(client)
    assert email in client.get(reverse("profile")).content.decode()


@pytest.mark.django_db
def test_new_user_gets_personal_lab_and_profile(make_user, settings):
    user = make_user("dave@example.org")
    membership = user.memberships.select_related("lab").get()
    assert membership.role == Membership.Role.OWNER
    assert user.profile.default_lab == membership.lab
    assert membership.lab.cpu_hours_per_month == settings.BIOFM_DEFAULT_LAB_CPU_HOURS
    assert membership.lab.gpu_hours_per_month == settings.BIOFM_DEFAULT_LAB_GPU_HOURS


@pytest.mark.django_db
def test_password_reset_link_sets_a_new_password(client, user):
    response = client.post(reverse("account_reset_password"), {"email": user.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    key_path = _link_in(mail.outbox[0], "/accounts/password/reset/key/")

    # allauth moves the key from the link into the session, then shows the form.
    form_page = client.get(key_path, follow=True)
    assert form_page.status_code == 200
    set_path = form_page.redirect_chain[-1][0] if form_page.redirect_chain else key_path
    response = client.post(set_path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302

    fresh = Client()
    _login(fresh, user.email, PASSWORD)
    assert not _logged_in(fresh)
    _login(fresh, user.email, NEW_PASSWORD)
    assert _logged_in(fresh)


@pytest.mark.django_db
def test_allauth_pages_use_the_site_layout(alice_client):
    anonymous = Client()
    for name in ["account_login", "account_signup", "account_reset_password",
                 "account_reset_password_done", "account_email_verification_sent"]:
        page = anonymous.get(reverse(name))
        assert page.status_code == 200, name
        assert 'class="topbar"' in page.content.decode(), name
        assert "css/biofm.css" in page.content.decode(), name
    logout = alice_client.get(reverse("account_logout"))
    assert logout.status_code == 200
    assert 'class="topbar"' in logout.content.decode()


# --- Profile -----------------------------------------------------------------

@pytest.mark.django_db
def test_profile_shows_email_limit_and_lab_usage(alice_client, user):
    user.profile.max_running_jobs = 7
    user.profile.save()
    lab = _personal_lab(user)
    Job.objects.create(kind="analysis.protparam", owner=user, lab=lab, params={},
                       queue="cpu", hardware="cpu", started_at=timezone.now(), run_seconds=2 * 3600)
    page = alice_client.get(reverse("profile")).content.decode()
    assert "alice@example.org" in page
    assert "<strong>7</strong> jobs at once" in page
    assert lab.name in page
    assert "2.00 h of 500 h" in page
    assert "0.00 h of 100 h" in page
    assert "Quotas reset on" in page


@pytest.mark.django_db
def test_lab_page_shows_hours_by_the_hardware_that_ran_them(alice_client, user):
    lab = _personal_lab(user)
    # A GPU-queue job that ran on a CPU, and one that ran on a GPU.
    for hardware, hours in (("cpu", 2), ("gpu", 1)):
        Job.objects.create(kind="analysis.esm_embeddings", owner=user, lab=lab, params={}, queue="gpu",
                           hardware=hardware, started_at=timezone.now(), run_seconds=hours * 3600)
    page = alice_client.get(reverse("lab_detail", args=[lab.slug])).content.decode()
    cells = re.findall(r"<tr><td>(CPU|GPU)</td>\s*<td class=\"num\">([\d.]+) h</td>", page)
    assert cells == [("CPU", "2.00"), ("GPU", "1.00")], page
    assert "<th>Hardware</th>" in page


@pytest.mark.django_db
def test_preferences_save(alice_client, user):
    lab = Lab.objects.create(name="Second", slug="second")
    Membership.objects.create(lab=lab, user=user)
    response = alice_client.post(reverse("profile_preferences"), {
        "default_lab": lab.pk, "notify_succeeded": "on", "notify_cancelled": "on",
    })
    assert response.status_code == 302
    user.profile.refresh_from_db()
    assert (user.profile.notify_succeeded, user.profile.notify_failed,
            user.profile.notify_cancelled) == (True, False, True)
    assert user.profile.default_lab == lab


@pytest.mark.django_db
@pytest.mark.parametrize("data, field, message", [
    ({"notify_failed": "maybe"}, "notify_failed", "Tick the box or leave it empty."),
    ({"default_lab": "OTHER"}, "default_lab", "Choose one of your labs."),
    ({"default_lab": ""}, "default_lab", "This field is required."),
])
def test_preferences_are_validated(alice_client, user, other_user, data, field, message):
    personal = _personal_lab(user)
    post = {"default_lab": personal.pk, "notify_succeeded": "on", "notify_failed": ""}
    post.update(data)
    if post["default_lab"] == "OTHER":
        post["default_lab"] = _personal_lab(other_user).pk
    response = alice_client.post(reverse("profile_preferences"), post)
    assert response.status_code == 400
    assert message in response.context["prefs_form"].errors[field]
    assert message in response.content.decode()
    user.profile.refresh_from_db()
    assert user.profile.notify_failed is True
    assert user.profile.default_lab == personal


# --- API tokens --------------------------------------------------------------

@pytest.mark.django_db
def test_token_is_shown_once_stored_hashed_and_works_until_revoked(alice_client, user):
    response = alice_client.post(reverse("token_create"), {"name": "laptop"})
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    found = TOKEN_RE.findall(response.content.decode())
    assert len(set(found)) == 1
    raw = found[0]

    token = ApiToken.objects.get(user=user)
    assert token.name == "laptop"
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in {token.prefix, token.token_hash, token.name}
    assert raw.startswith(token.prefix)
    assert raw not in str(dict(alice_client.session))
    assert raw not in str(alice_client.cookies)

    later = alice_client.get(reverse("profile")).content.decode()
    assert raw not in later
    assert token.prefix in later and "laptop" in later

    api = Client()
    jobs_url = "/api/v1/jobs?limit=50&offset=0"
    assert api.get(jobs_url).status_code == 401
    ok = api.get(jobs_url, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert ok.status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None

    assert alice_client.post(reverse("token_revoke", args=[token.pk])).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api.get(jobs_url, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
    assert "revoked" in alice_client.get(reverse("profile")).content.decode()


@pytest.mark.django_db
def test_token_lists_jobs_without_query_parameters(user):
    # The plain call a script makes first; kept apart from the token test so a
    # failure here points at the job list, not at token handling.
    Job.objects.create(kind="analysis.protparam", owner=user, params={})
    _, raw = ApiToken.issue(user, "script")
    response = Client().get("/api/v1/jobs", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200
    assert len(response.json()) == 1


@pytest.mark.django_db
def test_token_needs_a_name(alice_client, user):
    response = alice_client.post(reverse("token_create"), {"name": "  "})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_revoking_another_users_token_is_404(alice_client, other_user):
    token, raw = ApiToken.issue(other_user, "bob's")
    assert alice_client.post(reverse("token_revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.is_active
    assert ApiToken.authenticate(raw) == other_user


@pytest.mark.django_db
def test_revoke_needs_post(alice_client, user):
    token, _ = ApiToken.issue(user, "mine")
    assert alice_client.get(reverse("token_revoke", args=[token.pk])).status_code == 405
    token.refresh_from_db()
    assert token.is_active


# --- Labs ----------------------------------------------------------------------

@pytest.fixture
def shared_lab(user, other_user):
    """A lab owned by alice with bob as a plain member."""
    lab = Lab.objects.create(name="Structure group", slug="structure-group")
    Membership.objects.create(lab=lab, user=user, role=Membership.Role.OWNER)
    Membership.objects.create(lab=lab, user=other_user, role=Membership.Role.MEMBER)
    return lab


def _client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_create_lab_makes_creator_owner(alice_client, user, settings):
    response = alice_client.post(reverse("labs"), {"name": "Protein Design"})
    lab = Lab.objects.get(name="Protein Design")
    assert response.status_code == 302
    assert response["Location"] == reverse("lab_detail", args=[lab.slug])
    assert lab.slug == "protein-design"
    assert Membership.objects.get(lab=lab).user == user
    assert Membership.objects.get(lab=lab).role == Membership.Role.OWNER
    assert lab.cpu_hours_per_month == settings.BIOFM_DEFAULT_LAB_CPU_HOURS
    page = alice_client.get(reverse("labs")).content.decode()
    assert "Protein Design" in page and "alice@example.org" in page


@pytest.mark.django_db
def test_create_lab_needs_a_name(alice_client, user):
    response = alice_client.post(reverse("labs"), {"name": "   "})
    assert response.status_code == 400
    assert user.memberships.count() == 1


@pytest.mark.django_db
def test_lab_detail_is_404_for_non_members(make_user, shared_lab):
    outsider = _client_for(make_user("eve@example.org"))
    assert outsider.get(reverse("lab_detail", args=[shared_lab.slug])).status_code == 404
    assert outsider.post(reverse("lab_invite", args=[shared_lab.slug]),
                         {"email": "eve@example.org"}).status_code == 404
    assert outsider.post(reverse("lab_leave", args=[shared_lab.slug])).status_code == 404
    assert outsider.get(reverse("lab_detail", args=["no-such-lab"])).status_code == 404
    assert not shared_lab.memberships.filter(user__email="eve@example.org").exists()


@pytest.mark.django_db
def test_plain_member_cannot_manage_members(other_user, user, shared_lab, make_user):
    make_user("carol@example.org")
    bob = _client_for(other_user)
    assert bob.get(reverse("lab_detail", args=[shared_lab.slug])).status_code == 200
    assert bob.post(reverse("lab_invite", args=[shared_lab.slug]),
                    {"email": "carol@example.org"}).status_code == 403
    assert not LabInvitation.objects.exists()
    assert mail.outbox == []
    owner = shared_lab.memberships.get(user=user)
    assert bob.post(reverse("lab_remove_member", args=[shared_lab.slug, owner.pk])).status_code == 403
    assert bob.post(reverse("lab_set_role", args=[shared_lab.slug, owner.pk]),
                    {"role": "member"}).status_code == 403
    assert shared_lab.memberships.count() == 2


@pytest.mark.django_db
def test_last_owner_cannot_leave_but_a_member_can(alice_client, user, other_user, shared_lab):
    response = alice_client.post(reverse("lab_leave", args=[shared_lab.slug]))
    assert response.status_code == 400
    assert "last owner" in response.content.decode()
    assert shared_lab.memberships.filter(user=user).exists()

    bob = _client_for(other_user)
    assert bob.post(reverse("lab_leave", args=[shared_lab.slug])).status_code == 302
    assert not shared_lab.memberships.filter(user=other_user).exists()
    assert bob.get(reverse("lab_detail", args=[shared_lab.slug])).status_code == 404


@pytest.mark.django_db
def test_owner_can_leave_once_another_owner_exists(alice_client, user, other_user, shared_lab):
    bob_membership = shared_lab.memberships.get(user=other_user)
    response = alice_client.post(reverse("lab_set_role", args=[shared_lab.slug, bob_membership.pk]),
                                 {"role": "owner"})
    assert response.status_code == 302
    assert alice_client.post(reverse("lab_leave", args=[shared_lab.slug])).status_code == 302
    assert list(shared_lab.memberships.values_list("user__email", "role")) == [
        ("bob@example.org", "owner")]


@pytest.mark.django_db
def test_owner_removes_member_and_default_lab_falls_back(alice_client, other_user, shared_lab):
    other_user.profile.default_lab = shared_lab
    other_user.profile.save()
    bob_membership = shared_lab.memberships.get(user=other_user)
    response = alice_client.post(reverse("lab_remove_member", args=[shared_lab.slug, bob_membership.pk]))
    assert response.status_code == 302
    assert not shared_lab.memberships.filter(user=other_user).exists()
    other_user.profile.refresh_from_db()
    assert other_user.profile.default_lab == _personal_lab(other_user)


@pytest.mark.django_db
def test_shared_job_visible_to_lab_member_unshared_is_not(user, other_user, shared_lab):
    shared = Job.objects.create(kind="analysis.protparam", owner=user, lab=shared_lab,
                                shared=True, params={}, title="shared one")
    private = Job.objects.create(kind="analysis.protparam", owner=user, lab=shared_lab,
                                 shared=False, params={}, title="private one")
    bob = _client_for(other_user)
    assert bob.get(f"/jobs/{shared.id}/").status_code == 200
    assert bob.get(f"/jobs/{private.id}/").status_code == 404

    shared_lab.memberships.filter(user=other_user).delete()
    assert bob.get(f"/jobs/{shared.id}/").status_code == 404


# --- Lab invitations -------------------------------------------------------------

INVITE_LINK = r"/account/invitations/[A-Za-z0-9_\-]{20,}/"


@pytest.fixture
def group(user):
    """A lab owned by alice alone."""
    lab = Lab.objects.create(name="Group", slug="group")
    Membership.objects.create(lab=lab, user=user, role=Membership.Role.OWNER)
    return lab


def _invite(client, lab, email):
    return client.post(reverse("lab_invite", args=[lab.slug]), {"email": email})


def _invitation_link(message) -> str:
    match = re.search(r"https?://\S+?(" + INVITE_LINK + ")", message.body)
    assert match, f"no invitation link in:\n{message.body}"
    return match.group(1)


def _messages_block(html: str) -> str:
    match = re.search(r'<ul class="messages">.*?</ul>', html, re.S)
    assert match, "no messages on the page"
    return match.group(0)


@pytest.mark.django_db
def test_invitee_accepts_and_only_then_becomes_member(alice_client, group, make_user):
    carol = make_user("carol@example.org")
    response = _invite(alice_client, group, "Carol@Example.org")
    assert response.status_code == 302
    assert response["Location"] == reverse("lab_detail", args=[group.slug])
    assert not group.memberships.filter(user=carol).exists()

    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["carol@example.org"]
    assert "alice@example.org invited you" in sent.subject and "Group" in sent.subject
    assert "Log in as carol@example.org" in sent.body
    assert "text/html" in [mime for _, mime in sent.alternatives]
    link = _invitation_link(sent)
    invitation = LabInvitation.objects.get()
    assert invitation.email == "carol@example.org"
    assert link.rstrip("/").rsplit("/", 1)[1] not in invitation.token_hash  # only the hash is kept

    owner_page = alice_client.get(reverse("lab_detail", args=[group.slug])).content.decode()
    assert f'id="invitation-{invitation.pk}"' in owner_page

    carol_client = _client_for(carol)
    for page_name in ["labs", "profile"]:
        page = carol_client.get(reverse(page_name)).content.decode()
        assert 'id="invitations"' in page and "Group" in page, page_name
    page = carol_client.get(link)
    assert page.status_code == 200
    assert reverse("invitation_accept", args=[invitation.pk]) in page.content.decode()

    accepted = carol_client.post(reverse("invitation_accept", args=[invitation.pk]))
    assert accepted.status_code == 302
    assert accepted["Location"] == reverse("lab_detail", args=[group.slug])
    assert group.memberships.get(user=carol).role == Membership.Role.MEMBER
    invitation.refresh_from_db()
    assert invitation.status == LabInvitation.Status.ACCEPTED
    assert invitation.responded_by == carol
    assert carol_client.get(reverse("lab_detail", args=[group.slug])).status_code == 200

    # Single use: the link and the button are spent.
    again = carol_client.get(link)
    assert again.status_code == 410
    assert "already been accepted" in again.content.decode()
    assert carol_client.post(reverse("invitation_accept", args=[invitation.pk])).status_code == 410
    assert group.memberships.filter(user=carol).count() == 1
    assert 'id="invitations"' not in carol_client.get(reverse("labs")).content.decode()


@pytest.mark.django_db
def test_invitee_declines(alice_client, group, make_user):
    carol = make_user("carol@example.org")
    _invite(alice_client, group, "carol@example.org")
    invitation = LabInvitation.objects.get()
    carol_client = _client_for(carol)

    response = carol_client.post(reverse("invitation_decline", args=[invitation.pk]))
    assert response.status_code == 302
    assert not group.memberships.filter(user=carol).exists()
    invitation.refresh_from_db()
    assert invitation.status == LabInvitation.Status.DECLINED
    assert 'id="invitations"' not in carol_client.get(reverse("labs")).content.decode()
    late = carol_client.post(reverse("invitation_accept", args=[invitation.pk]))
    assert late.status_code == 410
    assert "already been declined" in late.content.decode()
    assert not group.memberships.filter(user=carol).exists()
    assert alice_client.get(reverse("lab_detail", args=[group.slug])).context[
        "pending_invitations"].count() == 0


@pytest.mark.django_db
def test_inviter_gets_the_same_answer_for_registered_and_unknown_addresses(
        alice_client, group, make_user):
    make_user("carol@example.org")
    answers = {}
    for email in ["carol@example.org", "dan@example.org"]:
        response = _invite(alice_client, group, email)
        page = alice_client.get(response["Location"]).content.decode()
        invitation = LabInvitation.objects.get(email=email)
        row = re.search(rf'<tr id="invitation-{invitation.pk}">.*?</tr>', page, re.S).group(0)
        row = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", row)
        answers[email] = {
            "status": response.status_code,
            "location": response["Location"],
            "body": response.content,
            "message": _messages_block(page).replace(email, "ADDRESS"),
            "row": re.sub(r"\d+", "N", row.replace(email, "ADDRESS")),
        }
    registered, unknown = answers["carol@example.org"], answers["dan@example.org"]
    assert registered == unknown
    assert "If ADDRESS can receive email, an invitation" in registered["message"]

    # Both addresses really get an email; only the unknown one is asked to sign up.
    assert sorted(m.to[0] for m in mail.outbox) == ["carol@example.org", "dan@example.org"]
    by_address = {m.to[0]: m for m in mail.outbox}
    assert "Sign up with dan@example.org" in by_address["dan@example.org"].body
    assert "/accounts/signup/" in by_address["dan@example.org"].body
    assert "Sign up" not in by_address["carol@example.org"].body


@pytest.mark.django_db
def test_unregistered_invitee_signs_up_and_finds_the_invitation(alice_client, group):
    _invite(alice_client, group, "dan@example.org")
    link = _invitation_link(mail.outbox[0])

    dan = Client()
    landing = dan.get(link)
    assert landing.status_code == 200
    body = landing.content.decode()
    assert reverse("account_signup") + "?next=" in body and reverse("account_login") + "?next=" in body
    assert "Group" not in body  # the lab is named only to the verified address

    dan.post(reverse("account_signup"),
             {"email": "dan@example.org", "password1": PASSWORD, "password2": PASSWORD})
    dan.post(_link_in(mail.outbox[-1], "/accounts/confirm-email/"))
    _login(dan, "dan@example.org", PASSWORD)
    assert _logged_in(dan)

    labs_page = dan.get(reverse("labs")).content.decode()
    assert 'id="invitations"' in labs_page and "Group" in labs_page
    invitation = LabInvitation.objects.get()
    assert dan.get(link).status_code == 200
    assert dan.post(reverse("invitation_accept", args=[invitation.pk])).status_code == 302
    assert group.memberships.filter(user__email="dan@example.org",
                                    role=Membership.Role.MEMBER).exists()


@pytest.mark.django_db
def test_another_user_cannot_see_or_answer_someone_elses_invitation(
        alice_client, group, other_user, make_user):
    make_user("carol@example.org")
    _invite(alice_client, group, "carol@example.org")
    link = _invitation_link(mail.outbox[0])
    invitation = LabInvitation.objects.get()

    # bob, and a user who added carol's address without confirming it.
    squatter = make_user("eve@example.org")
    EmailAddress.objects.create(user=squatter, email="carol@example.org", verified=False)
    for intruder in [other_user, squatter]:
        client = _client_for(intruder)
        assert client.get(link).status_code == 404
        assert client.post(reverse("invitation_accept", args=[invitation.pk])).status_code == 404
        assert client.post(reverse("invitation_decline", args=[invitation.pk])).status_code == 404
        assert 'id="invitations"' not in client.get(reverse("labs")).content.decode()
    invitation.refresh_from_db()
    assert invitation.status == LabInvitation.Status.PENDING
    assert group.memberships.count() == 1
    assert Client().get(reverse("invitation_link", args=["not-a-token-at-all"])).status_code == 404


@pytest.mark.django_db
def test_expired_invitation_cannot_be_accepted(alice_client, group, make_user, settings):
    carol = make_user("carol@example.org")
    before = timezone.now()
    _invite(alice_client, group, "carol@example.org")
    invitation = LabInvitation.objects.get()
    expected = before + timedelta(days=settings.BIOFM_LAB_INVITATION_DAYS)
    assert abs((invitation.expires_at - expected).total_seconds()) < 60
    link = _invitation_link(mail.outbox[0])
    LabInvitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1))

    carol_client = _client_for(carol)
    page = carol_client.get(link)
    assert page.status_code == 410
    assert "expired" in page.content.decode()
    assert carol_client.post(reverse("invitation_accept", args=[invitation.pk])).status_code == 410
    assert not group.memberships.filter(user=carol).exists()
    assert 'id="invitations"' not in carol_client.get(reverse("labs")).content.decode()
    owner_page = alice_client.get(reverse("lab_detail", args=[group.slug])).content.decode()
    assert "expired</span>" in owner_page


@pytest.mark.django_db
def test_revoked_invitation_cannot_be_accepted(alice_client, group, make_user):
    carol = make_user("carol@example.org")
    _invite(alice_client, group, "carol@example.org")
    invitation = LabInvitation.objects.get()
    link = _invitation_link(mail.outbox[0])

    response = alice_client.post(reverse("lab_revoke_invitation", args=[group.slug, invitation.pk]))
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.status == LabInvitation.Status.REVOKED

    carol_client = _client_for(carol)
    page = carol_client.get(link)
    assert page.status_code == 410
    assert "withdrawn" in page.content.decode()
    assert carol_client.post(reverse("invitation_accept", args=[invitation.pk])).status_code == 410
    assert not group.memberships.filter(user=carol).exists()
    twice = alice_client.post(reverse("lab_revoke_invitation", args=[group.slug, invitation.pk]))
    assert twice.status_code == 400


@pytest.mark.django_db
def test_inviting_again_sends_a_fresh_link_and_kills_the_old(alice_client, group, make_user):
    carol = make_user("carol@example.org")
    _invite(alice_client, group, "carol@example.org")
    _invite(alice_client, group, "carol@example.org")
    assert LabInvitation.objects.count() == 1
    assert len(mail.outbox) == 2
    old, new = _invitation_link(mail.outbox[0]), _invitation_link(mail.outbox[1])
    assert old != new
    carol_client = _client_for(carol)
    assert carol_client.get(old).status_code == 404
    assert carol_client.get(new).status_code == 200


@pytest.mark.django_db
def test_plain_member_cannot_invite_or_revoke(alice_client, other_user, shared_lab):
    _invite(alice_client, shared_lab, "dan@example.org")
    invitation = LabInvitation.objects.get()
    mail.outbox.clear()
    bob = _client_for(other_user)
    assert _invite(bob, shared_lab, "carol@example.org").status_code == 403
    assert bob.post(reverse("lab_revoke_invitation",
                            args=[shared_lab.slug, invitation.pk])).status_code == 403
    assert list(LabInvitation.objects.values_list("email", "status")) == [("dan@example.org", "pending")]
    assert mail.outbox == []
    # Plain members do not see who was invited.
    assert "dan@example.org" not in bob.get(reverse("lab_detail", args=[shared_lab.slug])).content.decode()


@pytest.mark.django_db
def test_revoking_another_labs_invitation_is_404(alice_client, group, make_user):
    other_owner = make_user("olga@example.org")
    other_lab = Lab.objects.create(name="Other", slug="other")
    Membership.objects.create(lab=other_lab, user=other_owner, role=Membership.Role.OWNER)
    _invite(_client_for(other_owner), other_lab, "dan@example.org")
    invitation = LabInvitation.objects.get()
    response = alice_client.post(reverse("lab_revoke_invitation", args=[group.slug, invitation.pk]))
    assert response.status_code == 404
    invitation.refresh_from_db()
    assert invitation.status == LabInvitation.Status.PENDING


@pytest.mark.django_db
def test_invite_form_errors(alice_client, group, other_user, settings):
    Membership.objects.create(lab=group, user=other_user)
    member = _invite(alice_client, group, "Bob@example.org")
    assert member.status_code == 400
    assert member.context["invite_form"].errors["email"] == [
        "bob@example.org is already a member of this lab."]
    invalid = _invite(alice_client, group, "not an email")
    assert invalid.status_code == 400
    assert "Enter a valid email address." in invalid.content.decode()
    assert mail.outbox == []

    settings.BIOFM_LAB_INVITATIONS_PER_DAY = 2
    assert _invite(alice_client, group, "one@example.org").status_code == 302
    assert _invite(alice_client, group, "two@example.org").status_code == 302
    third = _invite(alice_client, group, "three@example.org")
    assert third.status_code == 400
    assert "You have sent 2 invitations in the last 24 hours" in third.content.decode()
    assert LabInvitation.objects.count() == 2 and len(mail.outbox) == 2


# --- Admin ---------------------------------------------------------------------

@pytest.fixture
def admin_client_(client, make_user):
    admin = make_user("root@example.org", is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


@pytest.mark.django_db
def test_admin_token_pages_never_show_the_hash(admin_client_, user):
    token, raw = ApiToken.issue(user, "laptop")
    pages = [
        admin_client_.get(reverse("admin:accounts_apitoken_changelist")),
        admin_client_.get(reverse("admin:accounts_apitoken_change", args=[token.pk])),
        admin_client_.get(reverse("admin:accounts_apitoken_delete", args=[token.pk])),
    ]
    for page in pages:
        assert page.status_code == 200
        body = page.content.decode()
        assert token.token_hash not in body
        assert raw not in body
    assert token.prefix in pages[0].content.decode()
    assert admin_client_.get(reverse("admin:accounts_apitoken_add")).status_code == 403


@pytest.mark.django_db
def test_admin_action_revokes_selected_tokens(admin_client_, user):
    first, raw = ApiToken.issue(user, "one")
    second, _ = ApiToken.issue(user, "two")
    response = admin_client_.post(reverse("admin:accounts_apitoken_changelist"), {
        "action": "revoke_selected", "_selected_action": [first.pk],
    })
    assert response.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert not first.is_active and second.is_active
    assert ApiToken.authenticate(raw) is None


@pytest.mark.django_db
def test_admin_edits_lab_quotas_and_profile_limits(admin_client_, user):
    lab = _personal_lab(user)
    changelist = admin_client_.get(reverse("admin:accounts_lab_changelist"))
    assert changelist.status_code == 200
    assert lab.name in changelist.content.decode()
    change = admin_client_.get(reverse("admin:accounts_lab_change", args=[lab.pk]))
    assert change.status_code == 200
    assert 'name="cpu_hours_per_month"' in change.content.decode()
    assert 'name="memberships-0-user"' in change.content.decode()

    profile_url = reverse("admin:accounts_profile_change", args=[user.profile.pk])
    assert admin_client_.get(profile_url).status_code == 200
    response = admin_client_.post(profile_url, {
        "default_lab": lab.pk, "max_running_jobs": 5, "notify_succeeded": "on",
    })
    assert response.status_code == 302
    user.profile.refresh_from_db()
    assert user.profile.running_limit == 5
    assert user.profile.notify_failed is False


@pytest.mark.django_db
def test_admin_lists_invitations_without_the_token_and_revokes(admin_client_, user, group):
    _invite(_client_for(user), group, "dan@example.org")
    invitation = LabInvitation.objects.get()
    changelist = admin_client_.get(reverse("admin:accounts_labinvitation_changelist"))
    assert changelist.status_code == 200
    assert "dan@example.org" in changelist.content.decode()
    change = admin_client_.get(reverse("admin:accounts_labinvitation_change", args=[invitation.pk]))
    assert change.status_code == 200
    for page in [changelist, change]:
        assert invitation.token_hash not in page.content.decode()
    assert admin_client_.get(reverse("admin:accounts_labinvitation_add")).status_code == 403
    response = admin_client_.post(reverse("admin:accounts_labinvitation_changelist"), {
        "action": "revoke_selected", "_selected_action": [invitation.pk],
    })
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.status == LabInvitation.Status.REVOKED


# --- Site name and front page --------------------------------------------------

def _sign_up(client, email):
    client.post(reverse("account_signup"),
                {"email": email, "password1": PASSWORD, "password2": PASSWORD})
    return mail.outbox[-1]


@pytest.mark.django_db
def test_verification_email_names_the_portal(client):
    message = _sign_up(client, "carol@example.org")
    assert message.body.startswith("Hello from biofm!")
    assert "Thank you for using biofm!" in message.body
    assert "Hello from testserver" not in message.body and "127.0.0.1" not in message.body.split("\n")[0]
    assert message.subject.startswith("[biofm] ")


@pytest.mark.django_db
def test_site_name_setting_reaches_the_emails_and_pages(client, settings):
    settings.BIOFM_SITE_NAME = "Structural Biology Portal"
    message = _sign_up(client, "carol@example.org")
    assert message.body.startswith("Hello from Structural Biology Portal!")
    page = Client().get(reverse("dashboard")).content.decode()
    assert '<a class="brand" href="/">Structural Biology Portal</a>' in page


def test_site_name_is_read_from_the_environment(tmp_path):
    import os
    import subprocess
    import sys

    code = ("import django; django.setup(); from django.conf import settings; "
            "print(settings.BIOFM_SITE_NAME); print(settings.ACCOUNT_EMAIL_SUBJECT_PREFIX)")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "biofm_site.settings", "BIOFM_VAR_DIR": str(tmp_path)}
    for value, expected in [("Acme Lab Portal", "Acme Lab Portal"), ("", "biofm")]:
        env["BIOFM_SITE_NAME"] = value
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True).stdout.splitlines()
        assert out == [expected, f"[{expected}] "]


@pytest.mark.django_db
def test_logged_out_home_page_says_what_the_portal_is(alice_client):
    page = Client().get("/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "lab portal for biomolecular foundation models" in body
    assert "Protein sequence analysis" in body
    assert f'href="{reverse("account_login")}"' in body
    assert f'href="{reverse("account_signup")}"' in body
    assert "Recent jobs" not in body

    assert Client().get(reverse("job_list")).status_code == 302
    dashboard = alice_client.get("/").content.decode()
    assert "Recent jobs" in dashboard and "lab portal for biomolecular" not in dashboard


# --- Rate limits shared by every web process ---------------------------------

_FAILED_LOGINS = """
import json, sys
import django
django.setup()
from django.test import Client

client = Client()
refused = []
for _ in range(int(sys.argv[2])):
    response = client.post("/accounts/login/", {"login": sys.argv[1], "password": "not-the-password"})
    refused.append("Too many failed login attempts" in response.content.decode())
print(json.dumps(refused))
"""


def _failed_logins_in_a_process(email: str, attempts: int, env: dict[str, str]) -> list[bool]:
    """Failed logins posted by a Django process of its own, as another gunicorn
    worker would; for each, whether allauth refused it as one too many."""
    import json
    import subprocess
    import sys

    from tests.processes import ROOT

    result = subprocess.run([sys.executable, "-c", _FAILED_LOGINS, email, str(attempts)], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["redis", "files"])
def test_failed_login_limit_is_counted_across_processes(db, tmp_path, backend):
    """allauth allows 5 failed logins per address in 5 minutes. Two processes
    (two gunicorn workers) share one count: with a per-process cache each
    would allow 5."""
    import os

    from tests.processes import database_url

    env = {**os.environ, "DATABASE_URL": database_url(), "BIOFM_VAR_DIR": str(tmp_path / "var")}
    if backend == "files":
        # No Redis (make run): the file cache in var/, shared by the machine's processes.
        env.pop("REDIS_URL", None)
        env.pop("BIOFM_CACHE_URL", None)
    email = f"victim-{backend}@example.org"
    assert _failed_logins_in_a_process(email, 3, env) == [False, False, False]
    assert _failed_logins_in_a_process(email, 3, env) == [False, False, True]
