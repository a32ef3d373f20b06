"""The protein analysis form: per-record errors, bad uploads, and a job whose
good records are processed while the bad ones are reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from analysis.esm.kind import clean_esm_params
from analysis.protparam.kind import clean_protparam_params
from tests.conftest import run_job_now
from workers.errors import ParamsError
from workers.models import Job, Status

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "fixtures" / "fasta"


def submit(client, **data):
    return client.post(reverse("analysis:new"), {"window": 9, **data})


def test_form_renders(alice_client):
    page = alice_client.get(reverse("analysis:new"))
    assert page.status_code == 200 and b"Paste sequences" in page.content


def test_binary_upload_is_refused_next_to_the_field(alice_client):
    upload = SimpleUploadedFile("weights.bin", b"\x00\x01\x02" * 100)
    page = submit(alice_client, fasta_file=upload)
    assert page.status_code == 400
    assert "binary file" in " ".join(page.context["form"].errors["fasta_file"])
    assert Job.objects.count() == 0


def test_upload_over_the_cap_is_refused(alice_client, settings):
    settings.BIOFM_UPLOAD_MAX_BYTES = 1000
    upload = SimpleUploadedFile("big.fasta", b">a\n" + b"M" * 2000)
    page = submit(alice_client, fasta_file=upload)
    assert "limit" in " ".join(page.context["form"].errors["fasta_file"])


def test_text_that_is_not_fasta_is_refused(alice_client):
    page = submit(alice_client, sequences="Dear colleague,\nplease find attached\n>x\nMKTAYIAKQR")
    assert page.status_code == 400 and page.context["form"].errors["sequences"]


def test_input_with_no_good_record_is_refused_naming_records(alice_client):
    page = submit(alice_client, sequences=">dna\nACGTACGTACGTACGTACGTACGT\n>short\nMKT\n")
    errors = " ".join(page.context["form"].errors["sequences"])
    assert "dna" in errors and "short" in errors


def test_exactly_one_source(alice_client):
    page = submit(alice_client, sequences=">a\nMKTAYIAKQRQ", example="uniref50")
    assert "exactly one way" in str(page.context["form"].non_field_errors())


@pytest.mark.django_db(transaction=True)
def test_mixed_upload_processes_good_records_and_reports_bad_ones(alice_client, user):
    upload = SimpleUploadedFile("mixed.fasta", (FIXTURES / "mixed.fasta").read_bytes())
    response = submit(alice_client, fasta_file=upload, title="mixed")
    job = Job.objects.get()
    assert response["Location"] == job.get_absolute_url()
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED
    result = job.result
    assert result["n_records"] == 4 and result["n_rejected"] == 7
    for error in result["errors"]:
        assert f"Record {error['index']}" in error["message"]
        assert error["field"] in {"id", "sequence"}
    page = alice_client.get(job.get_absolute_url())
    assert page.content.count(b"Record ") >= 7
    csv = b"".join(alice_client.get(reverse("job_download", args=[job.pk, "protparam.csv"])).streaming_content)
    assert csv.decode().count("\n") == 1 + 4


@pytest.mark.django_db(transaction=True)
def test_example_input_runs(alice_client, user):
    submit(alice_client, example="uniref50")
    job = Job.objects.get()
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED and job.result["n_records"] == 15
    assert job.result["charts"]["composition"]["data"]
    assert "Kyte" in str(job.result["charts"]["hydropathy"]["layout"]["title"])


@pytest.mark.parametrize("clean", [clean_protparam_params, clean_esm_params])
@pytest.mark.parametrize("text, message", [
    (">p1\n" + "MKTAYIAKQR\n" * 100, "the limit is"),  # InputTooLarge
    ("just some words, no header", "This is not FASTA"),  # NotFasta
])
def test_whole_input_errors_reach_the_user_on_the_fasta_field(settings, clean, text, message):
    # parse_fasta raises InputTooLarge or NotFasta for the whole input; each
    # job's parameter check must turn both into a ParamsError on the field.
    settings.BIOFM_UPLOAD_MAX_BYTES = 200
    with pytest.raises(ParamsError, match=message) as err:
        clean({"fasta": text})
    assert err.value.field == "fasta"


# ---------------------------------------------------------------- issue 9: the form, the table, the plot

def test_form_states_the_length_rule_and_what_each_example_leaves_out(alice_client):
    from analysis.examples import EXAMPLES, load_example
    from analysis.fasta import MAX_LENGTH, MIN_LENGTH, parse_fasta

    page = alice_client.get(reverse("analysis:new")).content.decode()
    assert f"{MIN_LENGTH:,} to {MAX_LENGTH:,} residues per protein" in page
    for example in EXAMPLES.values():
        assert example.description in page  # shown next to the example picker
        records, errors = parse_fasta(load_example(example.key))
        if not errors:
            assert "Every record is valid" in example.description
            continue
        # A built-in example may leave records out only if it says which and why.
        assert f"leaves out {len(errors)} records" in example.description
        assert f"the other {len(records)} are analysed" in example.description
        for error in errors:
            accession = error.id.split("|")[3] if error.id.count("|") >= 3 else error.id
            assert f"{error.index} ({accession})" in example.description, error
            assert f"{MAX_LENGTH:,}-residue limit" in example.description


def _fasta(n: int) -> str:
    # Lengths 20..(20 + n - 1): sorting by length is checkable; every 7th is a kinase.
    return "".join(f">p{i:04d} {'kinase' if i % 7 == 0 else 'transporter'} number {i}\n"
                   f"{('MKTAYIAKQRQISFVKSHFSRQ' * 200)[:20 + i]}\n" for i in range(n))


@pytest.mark.django_db(transaction=True)
def test_table_shows_descriptions_and_sorts_filters_and_pages_every_record(alice_client, client, other_user):
    submit(alice_client, sequences=_fasta(520), title="many")
    job = Job.objects.get()
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED and job.result["truncated"]
    page = alice_client.get(job.get_absolute_url()).content.decode()
    assert '<td class="description">kinase number 0</td>' in page  # the header's description, shown
    url = reverse("analysis:protparam_table", args=[job.pk])
    assert f'hx-get="{url}"' in page

    def ids(**query):
        response = alice_client.get(url, query, HTTP_HX_REQUEST="true")
        assert response.status_code == 200 and "<html" not in response.content.decode()
        return [row["id"] for row in response.context["page"].object_list], response

    first, response = ids()
    assert first[0] == "p0000" and len(first) == 50 and response.context["page"].paginator.count == 520
    last, _ = ids(page=11)
    assert last == [f"p{i:04d}" for i in range(500, 520)]  # past the 500 stored rows
    longest, _ = ids(sort="-length")
    assert longest[:2] == ["p0519", "p0518"]
    kinases, response = ids(q="KINASE", sort="-length")
    assert response.context["page"].paginator.count == len(range(0, 520, 7))
    assert kinases[0] == "p0518" and all(int(i[1:]) % 7 == 0 for i in kinases)
    assert "sort=-length" in response.content.decode() and "q=KINASE" in response.content.decode()
    ignored, _ = ids(sort="__class__")
    assert ignored == first
    # Without htmx it is a whole page (the no-JavaScript path), and it is the owner's.
    assert b"<html" in alice_client.get(url, {"page": 2}).content
    client.force_login(other_user)
    assert client.get(url).status_code == 404
