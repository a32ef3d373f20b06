"""End to end, as a scientist would: log in with Chromium, submit an analysis
through the web form, watch the live progress reach "succeeded", see the
charts, and receive the notification email over SMTP from a real worker."""

from __future__ import annotations

import pytest

from tests.processes import SmtpCatcher, WorkerProcess, flush_redis
from workers.models import Job, Status

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

FASTA = """>sp|P69905|HBA_HUMAN Hemoglobin subunit alpha
MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHFDLSHGSAQVKGHGKKVADALTNAVAHVDDMPNALSALSDLHAHKLRVDPVNFKLLSHCLLVTLAAHLPAEFTPAVHASLDKFLASVSTVLTSKYR
>dna_by_mistake
ATGGCGTACGATCGATCGATCGATCGTAGCTAGCTAGCATCGATCG
>sp|P01308|INS_HUMAN Insulin
MALWMRLLPLLALLALWGPDPAAAFVNQHLCGSHLVEALYLVCGERGFFYTPKTRREAEDLQVGQVELGGGPGAGSLQPLALEGSLQKRGIVEQCCTSICSLYQLENYCN
"""


@pytest.fixture
def smtp():
    server = SmtpCatcher().start()
    yield server
    server.stop()


@pytest.fixture
def browser_page(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the test's own
    # ORM calls are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        yield page
        browser.close()


def test_submit_analysis_in_browser_and_get_email(live_server, smtp, browser_page, make_user, tmp_path):
    flush_redis()
    alice = make_user("alice@example.org", password="a-long-passphrase-1")
    worker = WorkerProcess(tmp_path, env={
        "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp.port),
        "BIOFM_SITE_URL": live_server.url,
    }).start()
    page = browser_page
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=login]", "alice@example.org")
        page.fill("input[name=password]", "a-long-passphrase-1")
        page.click("form button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")

        page.goto(f"{live_server.url}/analysis/new/")
        page.fill("textarea[name=sequences]", FASTA)
        page.fill("input[name=title]", "globins and insulin")
        page.click("form.card button[type=submit]")
        page.wait_for_url(f"{live_server.url}/jobs/*/")
        job = Job.objects.get(owner=alice)
        assert page.url.endswith(f"/jobs/{job.id}/")

        # The progress partial polls until the job ends, then the page reloads with results.
        page.wait_for_selector("#job-status:text('Succeeded')", timeout=60_000)
        page.wait_for_selector("#composition-chart .main-svg", timeout=20_000)
        page.wait_for_selector("#hydropathy-chart .main-svg", timeout=20_000)
        # htmx swaps in the server-paged table; the header's description has its own column.
        page.wait_for_selector("#protparam-table th a.sort")
        rows = page.locator("#protparam-table tbody tr")
        assert rows.count() == 2
        assert "sp|P69905|HBA_HUMAN" in rows.nth(0).locator("td").nth(0).inner_text()
        assert rows.nth(0).locator("td.description").inner_text() == "Hemoglobin subunit alpha"
        page.click("#protparam-table th a:text('Length')")  # shortest first: insulin (110) before 142
        page.wait_for_selector("#protparam-table th[aria-sort=ascending]")
        assert "INS_HUMAN" in page.locator("#protparam-table tbody tr").nth(0).inner_text()
        page.fill("#protparam-q", "hemoglobin")
        page.wait_for_function("document.querySelectorAll('#protparam-table tbody tr').length === 1")
        assert "HBA_HUMAN" in page.locator("#protparam-table tbody tr").inner_text()
        # The hydropathy plot shows one record at a time; the picker switches it.
        assert page.locator("#hydropathy-chart .scatterlayer .trace").count() == 1
        page.click("#hydropathy-chart .updatemenu-header")
        page.click("#hydropathy-chart .updatemenu-dropdown-button >> nth=-1")  # "All 2 records"
        page.wait_for_function("document.querySelectorAll('#hydropathy-chart .scatterlayer .trace').length === 2")
        # Every axis of every chart on the page carries a title.
        for chart in ("#composition-chart", "#hydropathy-chart"):
            axes = page.locator(f"{chart} .xaxislayer-above").count() + page.locator(f"{chart} .yaxislayer-above").count()
            assert page.locator(f"{chart} .g-xtitle, {chart} .g-ytitle").count() >= 2
            assert axes >= 2
        rejected = page.locator("#rejected-records").inner_text()
        assert "dna_by_mistake" in rejected and "DNA" in rejected
        # The progress block no longer polls once the job has ended.
        assert page.locator("#job-progress[hx-trigger]").count() == 0
        page.screenshot(path=str(tmp_path / "job.png"), full_page=True)

        messages = smtp.wait_for(1, timeout=30)
        assert len(messages) == 1
        mail = messages[0]
        assert mail["To"] == "alice@example.org"
        assert "succeeded" in mail["Subject"]
        text = mail.get_body(("plain",)).get_content()
        html = mail.get_body(("html",)).get_content()
        job_url = f"{live_server.url}/jobs/{job.id}/"
        assert job_url in text and job_url in html

        # The CSV download carries both good records.
        with page.expect_download() as download_info:
            page.click("text=protparam.csv")
        csv_text = open(download_info.value.path()).read()
        assert csv_text.count("\n") == 3 and "sp|P01308|INS_HUMAN" in csv_text
    finally:
        worker.stop()
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED
