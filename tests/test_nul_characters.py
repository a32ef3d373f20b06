"""A NUL character (0x00) anywhere in a request is answered before any view:
PostgreSQL text cannot hold one, so it used to reach the database as a 500.
In the path it names nothing (404); in a parameter, form field or JSON body it
is a 400 naming the field (biofm_site/middleware.py)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from workers.models import Job

pytestmark = pytest.mark.django_db


def test_a_nul_in_a_page_filter_is_a_400_naming_it(alice_client):
    response = alice_client.get(reverse("job_list"), {"kind": "analysis.protparam\x00"})
    assert response.status_code == 400
    assert "“kind” contains a NUL character" in response.content.decode()
    assert alice_client.get(reverse("job_list"), {"kind": "analysis.protparam"}).status_code == 200


def test_a_nul_in_a_form_field_is_a_400_naming_it(alice_client):
    response = alice_client.post(reverse("design:shortlist_add"), {"smiles": "CCO", "next": "/design/\x00"})
    assert response.status_code == 400 and "“next”" in response.content.decode()


def test_a_nul_in_an_api_parameter_is_a_400_with_the_field(api):
    response = api.get("/api/v1/jobs", {"kind": "\x00"})
    assert response.status_code == 400
    assert response.json() == {"error": "“kind” contains a NUL character (0x00), which no field accepts.",
                               "field": "kind"}


@pytest.mark.parametrize("payload, field", [
    ({"kind": "test.sleep", "params": {"seconds": 0}, "title": "a\x00b"}, "title"),
    ({"kind": "test.sleep\x00", "params": {}}, "kind"),
    ({"kind": "analysis.protparam", "params": {"sequences": [{"id": "p1", "sequence": "MKT\x00AY"}]}},
     "params.sequences[0].sequence"),
])
def test_a_nul_in_a_json_body_is_a_400_naming_the_field(api, payload, field):
    response = api.post("/api/v1/jobs", payload, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert Job.objects.count() == 0


def test_a_nul_in_an_api_path_is_a_404_in_the_api_shape(api, user):
    job = Job.objects.create(kind="test.sleep", owner=user, lab=user.profile.default_lab, params={})
    response = api.get(f"/api/v1/jobs/{job.pk}%00")
    assert response.status_code == 404 and set(response.json()) == {"error", "field"}
