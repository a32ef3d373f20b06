"""How much database work the busy paths do: listings, the polled progress
partial, a submission and a job's attempt. Counts, not timings (those are in
bench/platform_benchmark.py): each must stay bounded however many jobs and lab
members there are, and the listings must not read the heavy JSON columns."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken, Lab, Membership
from tests.conftest import run_job_now
from workers import lifecycle
from workers.models import Job, Status
from workers.quotas import labs_usage, month_bounds, usage_query

pytestmark = pytest.mark.django_db

BIG_PARAMS = {"fasta": ">p\n" + "M" * 200_000}
BIG_RESULT = {"embedding": [0.5] * 20_000}

# What the pages below may cost, whatever the number of jobs and members.
MAX_LIST_QUERIES = 4       # session, user, count, page
MAX_API_LIST_QUERIES = 3   # token with its user, jobs, their files
MAX_PARTIAL_QUERIES = 3    # session, user, the job's progress columns
# A trivial job's attempt, BEGIN/COMMIT included: claim (lock, update) and
# finish (lock, files, final write) in two transactions, one progress write,
# and the check for a job waiting for the freed slot; plus the attempt's own
# row for operators (workers.Attempt: inserted at the claim, closed with its
# phases at the end). It was 27 statements.
MAX_ATTEMPT_QUERIES = 14
# It was 14 statements in 3 transactions; now 12 in 2 (the insert, then the dispatch).
MAX_SUBMIT_QUERIES = 12


@pytest.fixture
def lab_of(make_user):
    """A lab with `members` members (the first returned user is its owner)."""
    def make(members: int):
        lab = Lab.objects.create(name=f"Lab of {members}", slug=f"lab-{members}-{Lab.objects.count()}")
        users = [make_user() for _ in range(members)]
        for i, u in enumerate(users):
            Membership.objects.create(lab=lab, user=u, role="owner" if i == 0 else "member")
        return lab, users
    return make


def _add_jobs(owner, lab, n: int, *, shared: bool = True) -> None:
    Job.objects.bulk_create([
        Job(kind="test.sleep", owner=owner, lab=lab, shared=shared, params=BIG_PARAMS, result=BIG_RESULT,
            status=Status.SUCCEEDED, title=f"job {i}") for i in range(n)])


def _count(fn) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries), [q["sql"] for q in ctx.captured_queries]


def test_listing_sql_has_no_distinct_and_reads_no_heavy_json(user):
    sql = str(Job.objects.visible_to(user).for_listing().query)
    assert "DISTINCT" not in sql.upper()
    assert "EXISTS" in sql.upper()
    for column in ('"params"', '"result"', '"error_detail"'):
        assert column not in sql, column


def test_shared_job_is_listed_once_in_a_big_lab(lab_of):
    # Without DISTINCT, a join over memberships would list it once per member.
    lab, users = lab_of(10)
    _add_jobs(users[1], lab, 1)
    assert Job.objects.visible_to(users[0]).count() == 1


def test_job_list_queries_do_not_grow_with_jobs_or_members(client, lab_of):
    lab, users = lab_of(2)
    _add_jobs(users[1], lab, 3)
    client.force_login(users[0])
    url = reverse("job_list")
    small, _ = _count(lambda: client.get(url))

    more_lab, more_users = lab_of(10)
    Membership.objects.create(lab=more_lab, user=users[0])
    for u in more_users[:5]:
        _add_jobs(u, more_lab, 12)
    big, sqls = _count(lambda: client.get(url))
    assert big == small <= MAX_LIST_QUERIES, sqls
    response = client.get(url)
    assert response.context["page"].paginator.count == 3 + 60
    page_sql = [s for s in sqls if "LIMIT" in s.upper()]
    assert page_sql and not any('"params"' in s or '"result"' in s for s in page_sql)


def test_dashboard_queries_do_not_grow_with_jobs_or_members(client, lab_of):
    lab, users = lab_of(2)
    _add_jobs(users[1], lab, 2)
    client.force_login(users[0])
    small, _ = _count(lambda: client.get(reverse("dashboard")))
    more_lab, more_users = lab_of(10)
    Membership.objects.create(lab=more_lab, user=users[0])
    for u in more_users:  # ten owners among the recent jobs: each owner's email is shown
        _add_jobs(u, more_lab, 1)
    big, sqls = _count(lambda: client.get(reverse("dashboard")))
    # One more lab adds nothing: quota usage is one query for all the user's labs.
    assert big == small, sqls


def test_api_list_is_bounded_and_leaves_out_results(client, lab_of):
    lab, users = lab_of(10)
    for u in users[:4]:
        _add_jobs(u, lab, 10)
    _, raw = ApiToken.issue(users[0], "t")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    client.get("/api/v1/jobs?limit=1", **auth)  # token use recorded once
    n, sqls = _count(lambda: client.get("/api/v1/jobs?limit=50", **auth))
    assert n <= MAX_API_LIST_QUERIES, sqls
    body = client.get("/api/v1/jobs?limit=50", **auth).json()
    assert len(body) == 40 and all("result" not in j for j in body)
    assert not any('"params"' in s or '"result"' in s for s in sqls)
    # One job's own answer has its result.
    one = client.get(f"/api/v1/jobs/{body[0]['id']}", **auth).json()
    assert one["result"] == BIG_RESULT


def test_progress_partial_reads_only_its_columns(alice_client, user):
    _add_jobs(user, user.profile.default_lab, 1, shared=False)
    job = Job.objects.get(owner=user)
    url = reverse("job_progress", args=[job.pk])
    n, sqls = _count(lambda: alice_client.get(url))
    assert n <= MAX_PARTIAL_QUERIES, sqls
    job_sql = [s for s in sqls if "workers_job" in s]
    assert job_sql and not any('"params"' in s or '"result"' in s for s in job_sql)
    assert alice_client.get(url).status_code == 200


def test_token_last_used_is_written_at_most_once_a_minute(client, user):
    token, raw = ApiToken.issue(user, "t")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    _, first = _count(lambda: client.get("/api/v1/kinds", **auth))
    _, second = _count(lambda: client.get("/api/v1/kinds", **auth))
    assert sum(s.startswith("UPDATE") for s in first) == 1
    assert not any(s.startswith("UPDATE") for s in second)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now() - timezone.timedelta(minutes=2))
    _, later = _count(lambda: client.get("/api/v1/kinds", **auth))
    assert sum(s.startswith("UPDATE") for s in later) == 1


def test_quota_usage_is_one_query_using_its_index(user, lab_of):
    lab, _ = lab_of(1)
    _add_jobs(user, user.profile.default_lab, 3)
    labs = [user.profile.default_lab, lab]
    n, _ = _count(lambda: labs_usage(labs))
    assert n == 1
    # The sum by hardware reads the index alone, not the wide job rows.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        plan = usage_query(labs, *month_bounds()).explain()
    assert "Index Only Scan using job_quota_idx" in plan, plan


@pytest.mark.django_db(transaction=True)  # on_commit runs as in production, before the answer
def test_submission_answer_says_a_dispatched_job_is_not_waiting(api, user, no_broker):
    """The 202 once said waiting_for_slot: true for a job already sent to a worker."""
    user.profile.max_running_jobs = 1
    user.profile.save()
    payload = {"kind": "test.sleep", "params": {"seconds": 0}}
    first = api.post("/api/v1/jobs", payload, content_type="application/json").json()
    assert [j.pk for j in no_broker] == [Job.objects.get(pk=first["id"]).pk]
    assert first["waiting_for_slot"] is False
    # Over the limit, the next one does wait, and says so.
    second = api.post("/api/v1/jobs", payload, content_type="application/json").json()
    assert second["waiting_for_slot"] is True


@pytest.mark.django_db(transaction=True)  # the dispatch after the commit counts too
def test_submission_queries_are_bounded(api, user, no_broker):
    payload = {"kind": "test.sleep", "params": {"seconds": 0}}
    api.post("/api/v1/jobs", payload, content_type="application/json")
    n, sqls = _count(lambda: api.post("/api/v1/jobs", payload, content_type="application/json"))
    assert n <= MAX_SUBMIT_QUERIES, sqls


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fail, status, files, most", [
    (None, Status.SUCCEEDED, 1, MAX_ATTEMPT_QUERIES),
    # No file to insert, and no deferred column read back for the final write.
    ("input", Status.FAILED, 0, MAX_ATTEMPT_QUERIES - 1),
])
def test_a_trivial_job_attempt_is_a_few_queries(user, fail, status, files, most):
    params = {"seconds": 0, "steps": 1, **({"fail": fail} if fail else {})}
    job = lifecycle.submit(user, "test.sleep", params)
    n, sqls = _count(lambda: run_job_now(job))
    job.refresh_from_db()
    assert job.status == status and job.files.count() == files
    assert n <= most, "\n".join(sqls)
    # The final write leaves the (possibly megabyte) parameters alone.
    final = [s for s in sqls if s.startswith("UPDATE") and f"'{status}'" in s]
    assert final and all('"params"' not in s for s in final)
