"""Every URL pattern of the site, requested by an anonymous user, a normal
user and a staff user, with GET and POST, with plausible and hostile values in
its path converters (another user's ids, unknown ids, NUL, very long strings,
non-numeric ids) and in the query string and form: no answer is a 5xx.

The patterns come from the URL resolver itself, so a new page is walked with no
change here. Each request runs in a transaction rolled back afterwards, so a
POST that deletes or cancels something leaves the fixtures as they were for the
next one.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.converters import IntConverter, PathConverter, SlugConverter, UUIDConverter
from django.urls.resolvers import RegexPattern, RoutePattern

from accounts.models import ApiToken, Membership
from training.models.datasets import parse_and_store
from workers.models import Job, JobFile, Status

pytestmark = pytest.mark.django_db

PROTEIN = Path(__file__).parent / "fixtures" / "design" / "1ia1_protein.pdb"
LONG = "x" * 3000
HOSTILE_TEXT = ["%00", LONG, "%C3%A9%E2%80%AE", "-1"]
# Query parameters our views, the admin and the API read.
QUERY_KEYS = ("q", "next", "page", "p", "o", "e", "all", "kind", "status", "status__exact", "format", "fmt",
              "smiles", "a", "b", "from", "target", "was", "runs", "limit", "offset", "wait",
              "_changelist_filters")
# A view that validates all its parameters at once (the API, the admin's change
# list) stops at the first bad one: these are also sent one at a time.
ONE_AT_A_TIME = {"/api/": ("kind", "status", "limit", "offset", "wait", "format"),
                 "/admin/": ("q", "o", "p", "e", "all", "status__exact", "_changelist_filters")}
OVERFLOW = "9" * 30
FORM_KEYS = ("next", "name", "email", "slug", "role", "title", "fasta", "smiles", "note", "kind", "index",
             "login", "password", "password1", "password2", "oldpassword", "key", "rerun_of", "lab",
             "source_job", "target", "site", "seeds", "q")


def _form(value: str) -> dict:
    # An admin action on ids that are no primary key, and every other field set to `value`.
    return {**{name: value for name in FORM_KEYS}, "action": "delete_selected",
            "_selected_action": [value, "abc", OVERFLOW, str(uuid.uuid4())]}


@dataclass
class World:
    users: dict[str, object]
    values: dict[str, list[str]]


def _target(client, name: str):
    Target = apps.get_model("design", "Target")
    response = client.post(reverse("design:target_new"), {
        "name": name, "structure": SimpleUploadedFile(PROTEIN.name, PROTEIN.read_bytes())})
    assert response.status_code in (200, 302), response.status_code
    return Target.objects.get(name=name)


def _job_with_file(owner, status=Status.SUCCEEDED) -> Job:
    job = Job.objects.create(kind="analysis.protparam", owner=owner, lab=owner.profile.default_lab,
                             params={"sequences": [{"id": "p1", "sequence": "MKTAYIAKQRQISFVKSHFSRQ"}]},
                             status=status, title=f"{owner.email}'s job")
    jf = JobFile(job=job, name="protparam.csv", content_type="text/csv", size=4)
    jf.file.save("protparam.csv", ContentFile(b"a,b\n"), save=False)
    jf.save()
    return job


@pytest.fixture
def world(make_user, client) -> World:
    alice = make_user("alice@example.org")
    bob = make_user("bob@example.org")
    staff = make_user("staff@example.org", is_staff=True, is_superuser=True)
    plain_staff = make_user("clerk@example.org", is_staff=True)
    Campaign = apps.get_model("design", "Campaign")
    ShortlistEntry = apps.get_model("design", "ShortlistEntry")

    ints, uuids = [], []
    for owner in (alice, bob):
        job = _job_with_file(owner)
        uuids.append(str(job.pk))
        client.force_login(owner)
        target = _target(client, f"target of {owner.email}")
        campaign = Campaign.objects.create(owner=owner, name="leads", target=target)
        entry = ShortlistEntry.objects.create(owner=owner, smiles="CCO", name="ethanol", source_job=job)
        token, _ = ApiToken.issue(owner, "walk")
        membership = Membership.objects.filter(user=owner).first()
        dataset = parse_and_store(owner=owner, name="walk", data=b"smiles,y\nCCO,1.5\nCCC,2.5\n",
                                  filename="walk.csv", smiles_column="smiles", targets={"y": None}).dataset
        ints += [str(pk) for pk in (target.pk, campaign.pk, entry.pk, token.pk, membership.pk,
                                    job.files.get().pk, dataset.pk)]
    client.logout()
    uuids.append(str(uuid.uuid4()))
    return World(
        users={"anonymous": None, "user": alice, "staff": staff, "plain staff": plain_staff},
        values={
            "uuid": uuids + ["not-a-uuid"],
            # Alice's objects, then Bob's (another user's), then no one's.
            "int": ints + ["0", str(2**63), OVERFLOW, "abc"],
            "slug": [alice.profile.default_lab.slug, bob.profile.default_lab.slug, "no-such-lab"] + HOSTILE_TEXT,
            "str": uuids + ["protparam.csv", "csv", "sdf", "protparam.csv%00", "1", OVERFLOW] + HOSTILE_TEXT,
            # The admin's object ids: one of Bob's, and what no object has.
            "path": [uuids[1], str(bob.pk), "abc", "1%00", LONG],
        },
    )


# --- Turning the resolver's patterns into URLs -----------------------------

_CONVERTER_KIND = [(UUIDConverter, "uuid"), (IntConverter, "int"), (SlugConverter, "slug"),
                   (PathConverter, "path")]
_GROUP = re.compile(r"\(\?P<(\w+)>((?:[^()]|\([^()]*\))*)\)")


def _route_template(pattern: RoutePattern) -> tuple[str, dict[str, str]]:
    kinds = {}
    for name, converter in pattern.converters.items():
        kinds[name] = next((k for cls, k in _CONVERTER_KIND if isinstance(converter, cls)), "str")
    template = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern._route))
    return template, kinds


def _regex_template(pattern: RegexPattern, values: dict) -> tuple[str, dict[str, list[str]]]:
    regex = pattern._regex
    choices = {}
    for name, body in _GROUP.findall(regex):
        if re.fullmatch(r"[\w|-]+", body):
            # An alternation of literals (the admin's app labels): each, and a stranger.
            choices[name] = body.split("|") + ["nope"] + HOSTILE_TEXT
        else:
            choices[name] = ["1", "abc", "set-password", "z" * 20] + values["path"]
    template = _GROUP.sub(lambda m: "{" + m.group(1) + "}", regex)
    template = template.lstrip("^").rstrip("$").removesuffix(r"\Z").replace("\\", "")
    assert not set(template) & set("()[]*+?|"), f"cannot build a URL from the regex {regex!r}"
    return template, choices


def _templates(resolver: URLResolver, values: dict, prefix="", choices=None):
    for entry in resolver.url_patterns:
        if isinstance(entry.pattern, RoutePattern):
            template, kinds = _route_template(entry.pattern)
            own = {name: values[kind] for name, kind in kinds.items()}
        else:
            template, own = _regex_template(entry.pattern, values)
        merged = {**(choices or {}), **own}
        if isinstance(entry, URLResolver):
            yield from _templates(entry, values, prefix + template, merged)
        else:
            assert isinstance(entry, URLPattern)
            yield "/" + prefix + template, merged


def _urls(template: str, choices: dict[str, list[str]]) -> list[str]:
    """The template with each placeholder's first value, then each other value
    of one placeholder at a time (not every combination: that explodes)."""
    names = re.findall(r"\{(\w+)\}", template)
    base = {name: choices[name][0] for name in names}
    variants = [base] + [{**base, name: value} for name in names for value in choices[name][1:]]
    return sorted({template.format(**variant) for variant in variants})


def test_every_url_pattern_is_walked(world):
    walked = {template for template, _ in _templates(get_resolver(), world.values)}
    # A sample of every origin of patterns: ours, the admin (ours and Django's), allauth, the API.
    for template in ("/jobs/{job_id}/files/{name}", "/admin/workers/health/", "/admin/{app_label}/",
                     "/accounts/password/reset/key/{uidb36}-{key}/", "/api/v1/jobs/{job_id}/files/{name}",
                     "/account/labs/{slug}/members/{membership_id}/role/", "/design/shortlist/add/"):
        assert template in walked, template
    assert len(walked) > 140


def _requests(world: World):
    """(user label, method, url, data): every URL variant as the user and the
    staff user; each pattern's first URL as everyone, also with hostile query
    strings and forms."""
    for template, choices in _templates(get_resolver(), world.values):
        urls = _urls(template, choices)
        base = urls[0]
        # Everyone but the staff user meets the admin's login page at every admin URL.
        explorers = ("staff",) if template.startswith("/admin/") else ("user", "staff")
        for label in world.users:
            for url in urls if label in explorers else [base]:
                yield label, "get", url, None
                yield label, "post", url, None
            for value in ("\x00", OVERFLOW, LONG) if label in ("user", "staff") else ("\x00",):
                yield label, "get", base, {key: value for key in QUERY_KEYS}
                yield label, "post", base, _form(value)
        for prefix, keys in ONE_AT_A_TIME.items():
            if template.startswith(prefix):
                explorer = "staff" if prefix == "/admin/" else "user"
                for key in keys:
                    for value in (OVERFLOW, LONG, "-1", "abc"):
                        yield explorer, "get", base, {key: value}


def test_no_url_answers_a_server_error(world, no_broker):
    failures, clients, sessions = [], {}, {}
    for label, user in world.users.items():
        clients[label] = Client(raise_request_exception=False)
        if user is not None:
            clients[label].force_login(user)
            sessions[label] = clients[label].cookies[settings.SESSION_COOKIE_NAME].value
    for label, method, url, data in _requests(world):
        client = clients[label]
        if label in sessions:
            # A logout or password change answered by the last request is rolled
            # back in the database; the cookie is put back here.
            client.cookies[settings.SESSION_COOKIE_NAME] = sessions[label]
        with transaction.atomic():
            response = getattr(client, method)(url, data) if data else getattr(client, method)(url)
            transaction.set_rollback(True)
        if response.status_code >= 500:
            exc = getattr(response, "exc_info", None)
            reason = f"{exc[0].__name__}: {exc[1]}"[:300] if exc else response.content[:200]
            sent = f" {str(data)[:80]}" if data else ""
            failures.append(f"{response.status_code} {label} {method.upper()} {url[:120]}{sent} -> {reason}")
    assert not failures, f"{len(failures)} server errors:\n" + "\n".join(failures)

