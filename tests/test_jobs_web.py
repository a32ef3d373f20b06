"""Job pages: scoping, list filters, the live progress partial, actions."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.conftest import run_job_now
from workers import lifecycle
from workers.models import Job, Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def bobs_job(other_user):
    return Job.objects.create(kind="test.sleep", owner=other_user, lab=other_user.profile.default_lab,
                              params={"seconds": 0}, title="bob's secret")


@pytest.mark.parametrize("name, method", [
    ("job_detail", "get"), ("job_progress", "get"), ("job_cancel", "post"), ("job_rerun", "post"),
])
def test_another_users_job_is_404(alice_client, bobs_job, name, method):
    response = getattr(alice_client, method)(reverse(name, args=[bobs_job.pk]))
    assert response.status_code == 404
    assert b"bob's secret" not in response.content
    bobs_job.refresh_from_db()
    assert bobs_job.status == Status.QUEUED


def test_another_users_download_is_404(alice_client, bobs_job):
    url = reverse("job_download", args=[bobs_job.pk, "result.txt"])
    assert alice_client.get(url).status_code == 404


@pytest.mark.parametrize("name", ["protparam.csv%00", "%00", "result.txt%00.png"])
def test_a_file_name_with_nul_is_404(alice_client, user, name):
    job = Job.objects.create(kind="test.sleep", owner=user, lab=user.profile.default_lab, params={})
    response = alice_client.get(f"/jobs/{job.pk}/files/{name}")
    assert response.status_code == 404
    # And for a caller other than a request (the middleware answers those first).
    assert job.files.named(name.replace("%00", "\x00")) is None


def test_unknown_job_is_404(alice_client):
    assert alice_client.get(reverse("job_detail", args=[uuid.uuid4()])).status_code == 404


def test_pages_need_login(client, bobs_job):
    response = client.get(reverse("job_detail", args=[bobs_job.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_list_filters_by_kind_and_status_and_paginates(alice_client, user):
    for i in range(30):
        Job.objects.create(kind="test.sleep", owner=user, params={}, title=f"sleep {i}",
                           status=Status.SUCCEEDED if i % 2 else Status.FAILED)
    Job.objects.create(kind="analysis.protparam", owner=user, params={}, title="an analysis")
    page = alice_client.get(reverse("job_list"), {"kind": "test.sleep", "status": "failed"})
    assert page.status_code == 200
    assert page.context["page"].paginator.count == 15
    assert b"an analysis" not in page.content
    everything = alice_client.get(reverse("job_list"))
    assert everything.context["page"].paginator.count == 31
    assert everything.context["page"].paginator.num_pages == 2
    # htmx asks for the table alone.
    partial = alice_client.get(reverse("job_list"), {"kind": "analysis.protparam"}, HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content and b"an analysis" in partial.content


def test_progress_partial_polls_until_the_job_ends(alice_client, user):
    job = Job.objects.create(kind="test.sleep", owner=user, params={}, status=Status.RUNNING,
                             progress=42, progress_message="step 4 of 10")
    partial = alice_client.get(reverse("job_progress", args=[job.pk]), {"was": "running"})
    assert b'hx-trigger="every 2s"' in partial.content and b"step 4 of 10" in partial.content
    assert "HX-Refresh" not in partial
    Job.objects.filter(pk=job.pk).update(status=Status.SUCCEEDED, progress=100)
    partial = alice_client.get(reverse("job_progress", args=[job.pk]), {"was": "running"})
    assert b"hx-trigger" not in partial.content
    assert partial["HX-Refresh"] == "true"


def test_detail_page_reads_without_javascript(alice_client, user):
    job = Job.objects.create(kind="test.sleep", owner=user, params={}, status=Status.FAILED,
                             error_kind="input", error_message="Record 3 is empty")
    page = alice_client.get(reverse("job_detail", args=[job.pk]))
    assert b"Problem with the input" in page.content and b"Record 3 is empty" in page.content


def test_cancel_button_cancels_a_waiting_job(alice_client, user):
    job = lifecycle.submit(user, "test.sleep", {"seconds": 0})
    response = alice_client.post(reverse("job_cancel", args=[job.pk]))
    assert response.status_code == 302
    assert Job.objects.get(pk=job.pk).status == Status.CANCELLED


def test_cancel_of_running_job_asks_it_to_stop(alice_client, user):
    job = lifecycle.submit(user, "test.sleep", {"seconds": 0})
    lifecycle.claim(job.pk, host="w", task_id="t")
    response = alice_client.post(reverse("job_cancel", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert b"Cancelling" in response.content
    job.refresh_from_db()
    assert job.cancel_requested and job.status == Status.RUNNING


def test_lab_member_sees_shared_job_but_cannot_cancel_it(client, user, make_user):
    carol = make_user("carol@example.org")
    lab = user.profile.default_lab
    lab.memberships.create(user=carol)
    job = Job.objects.create(kind="test.sleep", owner=user, lab=lab, params={}, shared=True)
    client.force_login(carol)
    assert client.get(reverse("job_detail", args=[job.pk])).status_code == 200
    assert client.post(reverse("job_cancel", args=[job.pk])).status_code == 404
    Job.objects.filter(pk=job.pk).update(shared=False)
    assert client.get(reverse("job_detail", args=[job.pk])).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_rerun_and_download(alice_client, user):
    job = lifecycle.submit(user, "test.sleep", {"seconds": 0, "steps": 1})
    run_job_now(job)
    download = alice_client.get(reverse("job_download", args=[job.pk, "result.txt"]))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"slept 0.0 s\n"
    response = alice_client.post(reverse("job_rerun", args=[job.pk]))
    new = Job.objects.exclude(pk=job.pk).get()
    assert response["Location"] == new.get_absolute_url()
    assert new.params == Job.objects.get(pk=job.pk).params


def test_dashboard_shows_limit_and_quota(alice_client, user):
    lab = user.profile.default_lab
    lab.gpu_hours_per_month = 7
    lab.save()
    page = alice_client.get(reverse("dashboard"))
    assert page.status_code == 200
    assert b"7 h" in page.content
    assert b"Protein sequence analysis" in page.content


def test_dashboard_shows_hours_by_the_hardware_that_ran_them(alice_client, user):
    lab = user.profile.default_lab
    job = Job.objects.create(kind="test.sleep_gpu", owner=user, lab=lab, queue="gpu", hardware="cpu",
                             started_at=timezone.now(), run_seconds=1800)
    page = alice_client.get(reverse("dashboard")).content.decode()
    cells = re.findall(r"<td>(CPU|GPU)</td>\s*<td class=\"num\">([\d.]+) h</td>", page)
    assert cells == [("CPU", "0.50"), ("GPU", "0.00")], page
    assert "charged to CPU" in alice_client.get(job.get_absolute_url()).content.decode()


def test_job_page_shows_parameters_elapsed_time_and_asks_before_cancel(alice_client, user):
    fasta = ">p1\n" + "M" * 5000
    job = lifecycle.submit(user, "test.sleep", {"seconds": 0, "marker": fasta})
    lifecycle.claim(job.pk, host="w", task_id="t")
    page = alice_client.get(reverse("job_detail", args=[job.pk])).content.decode()
    params = page[page.index('id="job-params"'):page.index("</details>", page.index('id="job-params"'))]
    assert "<th>seconds</th>" in params and "<th>marker</th>" in params
    assert "(5,004 characters in all)" in params and "M" * 301 not in params  # a long value is cut
    assert 'id="job-elapsed"' in page and "running for" in page
    assert "hx-confirm=" in page and "confirm(" in page


def test_cancelled_job_reads_once(alice_client, user):
    job = lifecycle.submit(user, "test.sleep", {"seconds": 0})
    lifecycle.cancel(job)
    page = alice_client.get(reverse("job_detail", args=[job.pk])).content.decode()
    progress = page[page.index('id="job-progress"'):page.index('class="actions"')]
    assert progress.count("Cancelled") == 2  # the status, and the message saying when
    assert "Cancelled before it finished." in progress and "<strong>:</strong>" not in progress
    assert "Cancelled</span>\n     <span" not in progress


def test_navigation_reaches_every_job_form(alice_client):
    from workers import kinds

    page = alice_client.get(reverse("dashboard")).content.decode()
    menu = page[page.index('id="new-job-menu"'):page.index("</details>", page.index('id="new-job-menu"'))]
    for kind in kinds.all_kinds():
        if kind.submit_url_name:
            assert f'href="{reverse(kind.submit_url_name)}"' in menu, kind.name
    assert reverse("analysis:esm_new") in menu and reverse("design:docking_new") in menu


def test_running_job_shows_time_left_from_its_progress_rate(alice_client, user):
    job = lifecycle.submit(user, "test.sleep", {"seconds": 0})
    lifecycle.claim(job.pk, host="w", task_id="t")
    url = reverse("job_progress", args=[job.pk])
    assert 'id="job-time-left"' not in alice_client.get(url).content.decode()  # progress 0: no guess
    Job.objects.filter(pk=job.pk).update(progress=1, started_at=timezone.now() - timedelta(seconds=60))
    assert 'id="job-time-left"' not in alice_client.get(url).content.decode()  # too little to tell
    Job.objects.filter(pk=job.pk).update(progress=25)
    part = alice_client.get(url).content.decode()
    # 60 s for 25 %: 180 s for the other 75 %.
    left = part[part.index('id="job-time-left"'):part.index("</span>", part.index('id="job-time-left"'))]
    assert "about 3 min left" in left and "from the progress so far" in left
    Job.objects.filter(pk=job.pk).update(status=Status.SUCCEEDED, progress=100, finished_at=timezone.now())
    assert 'id="job-time-left"' not in alice_client.get(url).content.decode()


def test_list_searches_titles_filters_dates_and_sorts_by_column(alice_client, user):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    old = Job.objects.create(kind="test.sleep", owner=user, params={}, title="Old DHFR screen",
                             status=Status.SUCCEEDED, started_at=now - timedelta(days=10, minutes=5),
                             finished_at=now - timedelta(days=10), run_seconds=0)
    Job.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=10, minutes=6))
    mid = Job.objects.create(kind="analysis.protparam", owner=user, params={}, title="dhfr analysis",
                             status=Status.FAILED, run_seconds=42.0, started_at=now, finished_at=now)
    Job.objects.filter(pk=mid.pk).update(created_at=now - timedelta(days=3))
    new = Job.objects.create(kind="test.sleep", owner=user, params={}, title="kinase", status=Status.QUEUED)

    def ids(**query):
        page = alice_client.get(reverse("job_list"), query)
        assert page.status_code == 200
        return [j.pk for j in page.context["page"].object_list]

    assert ids() == [new.pk, mid.pk, old.pk]
    assert ids(q="DHFR") == [mid.pk, old.pk]  # case-insensitive title search
    since = (now - timedelta(days=5)).date().isoformat()
    until = (now - timedelta(days=5)).date().isoformat()
    assert ids(since=since) == [new.pk, mid.pk]
    assert ids(until=until) == [old.pk]
    assert ids(sort="title") == [mid.pk, new.pk, old.pk]  # case-insensitive
    assert ids(sort="-title") == [old.pk, new.pk, mid.pk]
    # Run time: recorded worker time, else finished minus started; never-started last.
    assert ids(sort="-runtime") == [old.pk, mid.pk, new.pk]
    assert ids(sort="runtime") == [mid.pk, old.pk, new.pk]
    assert ids(sort="status", q="dhfr") == [mid.pk, old.pk]
    assert ids(sort="owner__password") == [new.pk, mid.pk, old.pk]  # not on the whitelist: the default
    bad = alice_client.get(reverse("job_list"), {"since": "yesterday", "q": "kinase"})
    assert bad.status_code == 200 and [j.pk for j in bad.context["page"].object_list] == [new.pk]
    assert "Enter a valid date" in bad.content.decode()
    html = alice_client.get(reverse("job_list"), {"q": "dhfr"}).content.decode()
    assert "Run time" in html and "42 s" in html and "5 min" in html
    assert "sort=-runtime" in html and "q=dhfr" in html  # header links keep the search
