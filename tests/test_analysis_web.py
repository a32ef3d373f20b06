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
