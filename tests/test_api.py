"""The JSON API: token auth, submit/list/status/cancel/download, errors that
name the field, scoping, and the OpenAPI schema."""

from __future__ import annotations

import pytest

from accounts.models import ApiToken
from tests.conftest import run_job_now
from workers.models import Job, Status

pytestmark = pytest.mark.django_db


def post(client, url, data):
    return client.post(url, data, content_type="application/json")


def test_openapi_schema_is_served(client):
    schema = client.get("/api/v1/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/jobs" in schema["paths"]
    assert "/api/v1/jobs/{job_id}/cancel" in schema["paths"]


def test_requests_without_a_valid_token_are_401(client):
    assert client.get("/api/v1/jobs").status_code == 401
    response = client.get("/api/v1/jobs", HTTP_AUTHORIZATION="Bearer bfm_not-a-token")
    assert response.status_code == 401 and response.json()["field"] == "Authorization"


def test_submit_analysis_and_follow_it(api, user):
    response = post(api, "/api/v1/jobs", {"kind": "analysis.protparam", "params": {
        "sequences": [{"id": "p1", "sequence": "MKTAYIAKQRQISFVKSHFSRQ"}]}})
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["kind"] == "analysis.protparam"
    status = api.get(body["api_url"])
    assert status.status_code == 200 and status.json()["id"] == body["id"]
    listed = api.get("/api/v1/jobs", {"status": "queued"}).json()
    assert [j["id"] for j in listed] == [body["id"]]


def test_submit_and_rerun_answer_202_with_location_and_retry_after(api, user):
    """They answered 202 with neither, unlike the ESM and ATOMICA endpoints."""
    response = post(api, "/api/v1/jobs", {"kind": "test.sleep", "params": {"seconds": 0}})
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    assert response["Location"] == f"/api/v1/jobs/{job_id}"
    assert int(response["Retry-After"]) > 0
    assert api.get(response["Location"]).json()["id"] == job_id

    again = post(api, f"/api/v1/jobs/{job_id}/rerun", {})
    assert again.status_code == 202, again.content
    new_id = again.json()["id"]
    assert new_id != job_id and Job.objects.get(pk=new_id).rerun_of_id == Job.objects.get(pk=job_id).pk
    assert again["Location"] == f"/api/v1/jobs/{new_id}"
    assert int(again["Retry-After"]) > 0


@pytest.mark.parametrize("payload, field", [
    ({"kind": "nope", "params": {}}, "kind"),
    ({"kind": "analysis.protparam", "params": {}}, "fasta"),
    ({"kind": "analysis.protparam", "params": {"fasta": ">x\nACGTACGTACGTACGTAC\n"}}, "fasta"),
    ({"kind": "analysis.protparam", "params": {"fasta": ">x\nMKTAYIAKQRQISF\n", "window": 8}}, "window"),
    ({"kind": "analysis.protparam", "params": {"sequences": [{"id": "a b", "sequence": "MKTAYIAKQR"}]}},
     "sequences[0].id"),
    ({"params": {}}, "kind"),
    ({"kind": "test.sleep", "params": {"seconds": 1}, "lab": "not-mine"}, "lab"),
])
def test_bad_requests_name_the_field(api, payload, field):
    response = post(api, "/api/v1/jobs", payload)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert response.json()["error"]
    assert Job.objects.count() == 0


def test_other_users_job_is_404_in_the_api(api, other_user):
    job = Job.objects.create(kind="test.sleep", owner=other_user, params={})
    for method, url in [("get", f"/api/v1/jobs/{job.pk}"), ("post", f"/api/v1/jobs/{job.pk}/cancel"),
                        ("post", f"/api/v1/jobs/{job.pk}/rerun"),
                        ("get", f"/api/v1/jobs/{job.pk}/files/result.txt")]:
        response = getattr(api, method)(url)
        assert response.status_code == 404, url
    assert api.get("/api/v1/jobs").json() == []
    assert Job.objects.get(pk=job.pk).status == Status.QUEUED


def test_a_file_name_with_nul_is_404_in_the_api(api, user):
    job = Job.objects.create(kind="test.sleep", owner=user, lab=user.profile.default_lab, params={})
    response = api.get(f"/api/v1/jobs/{job.pk}/files/protparam.csv%00")
    assert response.status_code == 404
    assert set(response.json()) == {"error", "field"} and response.json()["error"]


def test_an_offset_beyond_any_job_count_is_a_400_naming_it(api):
    response = api.get("/api/v1/jobs", {"offset": "9" * 30})
    assert response.status_code == 400 and response.json()["field"] == "offset"
    assert api.get("/api/v1/jobs", {"offset": 10**6}).json() == []


def test_cancel_through_the_api(api, user):
    job = post(api, "/api/v1/jobs", {"kind": "test.sleep", "params": {"seconds": 5}}).json()
    response = post(api, f"/api/v1/jobs/{job['id']}/cancel", {})
    assert response.status_code == 200 and response.json()["status"] == "cancelled"


def test_quota_refusal_is_403_with_a_message(api, user):
    lab = user.profile.default_lab
    lab.cpu_hours_per_month = 0
    lab.save()
    response = post(api, "/api/v1/jobs", {"kind": "test.sleep", "params": {"seconds": 1}})
    assert response.status_code == 403
    assert "resets on" in response.json()["error"]


@pytest.mark.django_db(transaction=True)
def test_download_results_through_the_api(client, user):
    _, raw = ApiToken.issue(user, "t")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    body = client.post("/api/v1/analysis/protparam",
                       {"fasta": ">p1\nMKTAYIAKQRQISFVKSHFSRQ\n>bad\nMK1TAYIAKQ\n"},
                       content_type="application/json", **auth).json()
    run_job_now(Job.objects.get(pk=body["id"]))
    done = client.get(body["api_url"], **auth).json()
    assert done["status"] == "succeeded"
    assert done["hardware"] == "cpu"  # the hours it is charged to
    assert done["result"]["n_records"] == 1 and done["result"]["n_rejected"] == 1
    files = {f["name"]: f for f in done["files"]}
    assert set(files) == {"protparam.csv", "protparam.json", "rejected_records.csv"}
    csv = client.get(files["protparam.csv"]["url"], **auth)
    assert csv.status_code == 200 and b"p1" in b"".join(csv.streaming_content)
    rejected = client.get(files["rejected_records.csv"]["url"], **auth)
    assert b"Record 2 (bad)" in b"".join(rejected.streaming_content)


def test_kinds_are_listed(api):
    names = [k["name"] for k in api.get("/api/v1/kinds").json()]
    assert "analysis.protparam" in names


# --- Authentication answers on every operation ---------------------------------

def _operations(client) -> list[tuple[str, str]]:
    """(method, url) of every operation in the OpenAPI schema, path parameters filled."""
    import uuid

    schema = client.get("/api/v1/openapi.json").json()
    operations = []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            url = path
            for param in operation.get("parameters", []):
                if param["in"] == "path":
                    integer = param.get("schema", {}).get("type") == "integer"
                    url = url.replace("{" + param["name"] + "}", "1" if integer else str(uuid.uuid4()))
            operations.append((method, url))
    assert {m for m, _ in operations} == {"get", "post"} and len(operations) > 10
    return operations


def test_every_operation_without_a_token_is_401_with_error_and_field(client):
    for method, url in _operations(client):
        for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer bfm_not-a-token"}):
            if method == "post":
                response = client.post(url, {}, content_type="application/json", **headers)
            else:
                response = client.get(url, **headers)
            assert response.status_code == 401, (method, url, response.content)
            body = response.json()
            assert body["field"] == "Authorization" and "Bearer" in body["error"], (method, url, body)


def test_a_session_post_without_a_csrf_token_is_refused_in_json(user, no_broker):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    posts = [url for method, url in _operations(browser) if method == "post"]
    for url in posts:
        response = browser.post(url, {}, content_type="application/json")
        assert response.status_code == 403, (url, response.content)
        assert response.json()["field"] == "X-CSRFToken" and "CSRF" in response.json()["error"]
    assert Job.objects.count() == 0
    # GETs need no token, and a POST with the page's CSRF token goes through.
    assert browser.get("/api/v1/jobs").status_code == 200
    browser.get("/account/profile/")  # a page with a form sets the csrftoken cookie
    token = browser.cookies["csrftoken"].value
    response = browser.post("/api/v1/jobs", {"kind": "test.sleep", "params": {"seconds": 0}},
                            content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 202, response.content
