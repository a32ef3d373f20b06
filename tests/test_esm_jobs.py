"""ESM-2 embedding jobs: parameters and API errors, a job run on a tiny
checkpoint in fair-esm's file format, its downloads, the page, missing
weights, the management command, and ?wait=true through a real worker."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch
from django.core.management import call_command
from django.urls import reverse

from tests.conftest import run_job_now
from tests.esm_fixtures import write_tiny_esm2
from tests.processes import WorkerProcess, flush_redis, wait_until
from workers.models import Job, Status
from workers.quotas import labs_usage

pytestmark = pytest.mark.django_db

MODEL = "esm2_t6_8M_UR50D"  # the name; the weights are a tiny random stand-in
SEQS = [
    {"id": "sp|P69905|HBA_HUMAN", "sequence": "MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHF"},
    {"id": "short", "sequence": "MKTAYIAKQR"},
    {"id": "third", "sequence": "GSHMLEDPVAGGKRLLEELLKQAEALAKQG"},
]


@pytest.fixture
def esm_weights(tmp_path_factory, settings):
    hub = tmp_path_factory.mktemp("hub")
    write_tiny_esm2(hub, name=MODEL, num_layers=6, embed_dim=32, heads=4, seed=1)
    settings.BIOFM_ESM_WEIGHTS_DIR = str(hub / "checkpoints")
    settings.BIOFM_ESM_ALLOW_DOWNLOAD = False
    return hub / "checkpoints"


def post(client, data, wait=False):
    url = "/api/v1/esm/embeddings" + ("?wait=true" if wait else "")
    return client.post(url, data, content_type="application/json")


@pytest.mark.parametrize("payload, field, text", [
    ({"model": "esm3_huge", "sequences": SEQS}, "model", "Unknown model"),
    ({"sequences": [SEQS[0], {"id": "bad", "sequence": "MKTJAYIAKQR"}]}, "sequences[1].sequence", "Record 2 (bad)"),
    ({"sequences": []}, "sequences", "No input"),
    ({}, "sequences", "No input"),
    ({"sequences": SEQS, "repr_layers": [7]}, "repr_layers", "layers 0 to 6"),
    ({"sequences": SEQS, "model": MODEL, "repr_layers": [-8]}, "repr_layers", "Layer -8 does not exist"),
    ({"fasta": ">a\nMKTAYIAKQR\n>a\nMKTAYIAKQR\n"}, "fasta", "Record 2 (a): the id is already used"),
])
def test_bad_requests_name_record_and_field(api, payload, field, text):
    payload = {"model": MODEL, **payload} if "model" not in payload else payload
    response = post(api, payload)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["field"] == field
    assert text in body["error"]
    assert Job.objects.count() == 0


def test_include_must_be_known(api):
    response = post(api, {"model": MODEL, "sequences": SEQS, "include": ["mean", "logits"]})
    assert response.status_code == 400 and response.json()["field"].startswith("include")


def test_too_many_sequences(api, settings):
    settings.BIOFM_ESM_MAX_SEQUENCES = 2
    response = post(api, {"model": MODEL, "sequences": SEQS})
    assert response.status_code == 400 and "limit" in response.json()["error"]


def test_skip_invalid_embeds_the_rest(api, esm_weights):
    response = post(api, {"model": MODEL, "skip_invalid": True,
                          "sequences": SEQS + [{"id": "bad", "sequence": "MK1TAY"}]})
    assert response.status_code == 202
    job = Job.objects.get()
    assert job.input_facts["n_records"] == 3 and job.input_facts["rejected"][0]["id"] == "bad"
    assert job.input_facts["rejected"][0]["index"] == 4
    assert ">bad" not in job.params["fasta"] and "rejected" not in job.params


@pytest.mark.django_db(transaction=True)
def test_job_outputs_match_fair_esm_and_load_in_one_line(api, esm_weights, tmp_path):
    from analysis.esm.compute.checkpoints import fair_esm_model, load_checkpoint

    response = post(api, {"model": MODEL, "sequences": SEQS, "repr_layers": [0, 3, -1],
                          "include": ["mean", "per_tok", "bos", "contacts"]})
    job = Job.objects.get(pk=response.json()["id"])
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    assert job.result["layers"] == [0, 3, 6]
    phases = [p["name"] for p in job.attempt_log.get().phases]
    assert phases == ["loading model", "computing", "writing results"]

    npz_bytes = job.files.get(name="embeddings.npz").file.read()
    arrays = np.load(io.BytesIO(npz_bytes))
    assert list(arrays["__ids__"]) == [s["id"] for s in SEQS]
    hba = arrays["sp|P69905|HBA_HUMAN/per_tok/6"]
    assert hba.shape == (len(SEQS[0]["sequence"]), 32)
    assert arrays["short/contacts"].shape == (10, 10)

    # The same numbers as fair-esm's own forward pass, as extract.py computes them.
    model, alphabet = fair_esm_model(load_checkpoint(MODEL, weights_dir=esm_weights, allow_download=False))
    model.eval()
    _, _, tokens = alphabet.get_batch_converter()([(SEQS[0]["id"], SEQS[0]["sequence"])])
    with torch.no_grad():
        ref = model(tokens, repr_layers=[0, 3, 6], return_contacts=True)
    n = len(SEQS[0]["sequence"])
    for layer in (0, 3, 6):
        expected = ref["representations"][layer][0, 1:n + 1].numpy()
        assert np.abs(arrays[f"sp|P69905|HBA_HUMAN/per_tok/{layer}"] - expected).max() <= 1e-5
        assert np.abs(arrays[f"sp|P69905|HBA_HUMAN/mean/{layer}"] - expected.mean(0)).max() <= 1e-5
        bos = ref["representations"][layer][0, 0].numpy()
        assert np.abs(arrays[f"sp|P69905|HBA_HUMAN/bos/{layer}"] - bos).max() <= 1e-5
    assert np.abs(arrays["sp|P69905|HBA_HUMAN/contacts"] - ref["contacts"][0].numpy()).max() <= 1e-5

    # extract.py's layout, loadable without unpickling code.
    with zipfile.ZipFile(io.BytesIO(job.files.get(name="extract_pt.zip").file.read())) as zf:
        assert sorted(zf.namelist()) == sorted(["sp|P69905|HBA_HUMAN.pt", "short.pt", "third.pt"])
        pt = torch.load(io.BytesIO(zf.read("short.pt")), weights_only=True)
    assert pt["label"] == "short"
    assert set(pt["representations"]) == {0, 3, 6}
    assert torch.allclose(pt["mean_representations"][6], torch.from_numpy(arrays["short/mean/6"]))

    # The page: summary, PCA and a contact map (pages use the session, not the token).
    api.force_login(job.owner)
    page = api.get(job.get_absolute_url())
    assert b"esm-table" in page.content and b"pca-data" in page.content
    assert job.result["pca"]["method"].startswith("PCA")
    contact = api.get(reverse("analysis:esm_contacts", args=[job.pk, 1]))
    assert contact.status_code == 200 and b"contact map" in contact.content
    assert api.get(reverse("analysis:esm_contacts", args=[job.pk, 9])).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_gpu_queue_job_run_on_the_cpu_is_charged_cpu_hours(api, user, esm_weights, settings):
    """It was charged to the GPU quota, its kind's queue, whatever ran it."""
    settings.BIOFM_WORKER_HARDWARE = "gpu"  # the worker's guess, before the model picks its device
    settings.BIOFM_ESM_DEVICE = "cpu"  # as "auto" picks on a worker without CUDA
    lab = user.profile.default_lab
    lab.gpu_hours_per_month = 0  # used up: the job would be refused, not run
    lab.save()
    assert post(api, {"model": MODEL, "sequences": SEQS[:2]}).status_code == 403
    lab.gpu_hours_per_month = 10
    lab.save()
    body = post(api, {"model": MODEL, "sequences": SEQS[:2]}).json()
    job = Job.objects.get(pk=body["id"])
    assert job.queue == "gpu"
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    assert job.hardware == "cpu" and [a.hardware for a in job.attempt_log.all()] == ["cpu"]
    usage = labs_usage([lab])[lab.pk]
    assert job.run_seconds > 0
    assert usage["cpu"].used_hours == pytest.approx(job.run_seconds / 3600)
    assert usage["gpu"].used_hours == 0


def test_missing_weights_offline_fail_with_a_message_for_the_user(api, settings, tmp_path, caplog):
    """No worker has reported (so the submission is accepted) and the one
    that runs the job lacks the file: the user is told so in words, and the
    server paths go to the operators only (error_detail, the log)."""
    settings.BIOFM_ESM_WEIGHTS_DIR = str(tmp_path / "empty")
    settings.BIOFM_ESM_ALLOW_DOWNLOAD = False
    job_id = post(api, {"model": "esm2_t12_35M_UR50D", "sequences": SEQS}).json()["id"]
    job = Job.objects.get(pk=job_id)
    with caplog.at_level("ERROR", logger="analysis.esm.jobs"):
        run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.FAILED and job.error_kind == "system"
    assert job.error_message.startswith("This model (esm2_t12_35M_UR50D) is not installed on the worker "
                                        "that ran the job; the operators have been told.")
    assert str(tmp_path) not in job.error_message and ".pt" not in job.error_message
    assert "esm2_t12_35M_UR50D.pt" in job.error_detail and str(tmp_path / "empty") in job.error_detail
    assert str(tmp_path / "empty") in caplog.text
    # The job's page shows the user's message, not the path.
    api.force_login(job.owner)
    page = api.get(job.get_absolute_url()).content.decode()
    assert "not installed on the worker that ran the job" in page and str(tmp_path) not in page


def test_management_command_writes_extract_layout(esm_weights, tmp_path):
    fasta = tmp_path / "in.fasta"
    fasta.write_text("".join(f">{s['id']}\n{s['sequence']}\n" for s in SEQS))
    out = tmp_path / "out"
    call_command("esm_embed", MODEL, str(fasta), str(out), "--repr-layers", "-1", "2",
                 "--include", "mean", "per_tok")
    names = sorted(p.name for p in out.glob("*.pt"))
    assert names == sorted(["sp|P69905|HBA_HUMAN.pt", "short.pt", "third.pt"])
    pt = torch.load(out / "third.pt", weights_only=True)
    assert set(pt["mean_representations"]) == {2, 6}
    assert pt["representations"][6].shape == (len(SEQS[2]["sequence"]), 32)
    arrays = np.load(out / "embeddings.npz")
    assert np.allclose(arrays["third/mean/6"], pt["mean_representations"][6].numpy())


def test_management_command_refuses_invalid_records(esm_weights, tmp_path):
    from django.core.management.base import CommandError

    fasta = tmp_path / "in.fasta"
    fasta.write_text(">ok\nMKTAYIAKQR\n>bad\nMKTJ\n")
    with pytest.raises(CommandError, match="bad"):
        call_command("esm_embed", MODEL, str(fasta), str(tmp_path / "o"))


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_wait_true_answers_with_embeddings_from_a_real_worker(api, esm_weights, tmp_path):
    flush_redis()
    # A worker taken for a GPU one, whose model runs on its CPU (BIOFM_ESM_DEVICE).
    worker = WorkerProcess(tmp_path, env={"BIOFM_ESM_WEIGHTS_DIR": str(esm_weights),
                                          "BIOFM_ESM_ALLOW_DOWNLOAD": "0", "BIOFM_WORKER_HARDWARE": "gpu",
                                          "BIOFM_ESM_DEVICE": "cpu"}).start()
    try:
        response = post(api, {"model": MODEL, "sequences": SEQS[:2], "include": ["mean", "contacts"]},
                        wait=True)
    finally:
        worker.stop()
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["queue"] == "gpu" and body["hardware"] == "cpu"  # charged to the CPU that ran it
    assert len(body["embeddings"]["short"]["mean"]["6"]) == 32
    assert np.array(body["embeddings"]["short"]["contacts"]).shape == (10, 10)


def test_wait_is_refused_for_large_requests(api, esm_weights, settings):
    settings.BIOFM_ESM_SYNC_MAX_SEQUENCES = 2
    response = post(api, {"model": MODEL, "sequences": SEQS}, wait=True)
    assert response.status_code == 202 and "Not waited" in response.json()["wait"]
    assert response["Location"] == f"/api/v1/jobs/{response.json()['id']}" and response["Retry-After"]


def test_wait_that_ends_before_the_job_answers_202_with_location(api, esm_weights, settings):
    """No worker runs the job: the wait ends within its bound and the answer
    says where to follow the job and when to look again."""
    import time

    settings.BIOFM_ESM_SYNC_WAIT_SECONDS = 1
    started = time.monotonic()
    response = post(api, {"model": MODEL, "sequences": SEQS[:1]}, wait=True)
    assert time.monotonic() - started < 5
    assert response.status_code == 202, response.content
    job = Job.objects.get()
    assert response["Location"] == f"/api/v1/jobs/{job.id}"
    assert int(response["Retry-After"]) > 0
    assert response.json()["status"] == "queued" and "Location" in response.json()["wait"]
    assert api.get(response["Location"]).json()["id"] == str(job.id)


def test_waiting_requests_never_take_every_thread(api, esm_weights, settings):
    """With every wait slot of the process taken, a ?wait=true request
    answers 202 at once instead of holding one more thread."""
    import time

    from workers import waiting

    settings.BIOFM_SYNC_MAX_WAITING = 1
    settings.BIOFM_ESM_SYNC_WAIT_SECONDS = 30
    slots = waiting._wait_slots()
    assert slots.acquire(blocking=False)
    try:
        started = time.monotonic()
        response = post(api, {"model": MODEL, "sequences": SEQS[:1]}, wait=True)
        assert time.monotonic() - started < 5
    finally:
        slots.release()
    assert response.status_code == 202 and response["Location"].startswith("/api/v1/jobs/")


def test_esm_form_page(alice_client, esm_weights):
    page = alice_client.get(reverse("analysis:esm_new"))
    assert page.status_code == 200 and b"esm2_t33_650M_UR50D" in page.content
    bad = alice_client.post(reverse("analysis:esm_new"), {
        "model": MODEL, "sequences": ">x\nMKTAYIAKQR", "repr_layers": "9", "include": ["mean"],
        "long_sequences": "truncate"})
    assert bad.status_code == 400 and "layers 0 to 6" in " ".join(bad.context["form"].errors["repr_layers"])
    ok = alice_client.post(reverse("analysis:esm_new"), {
        "model": MODEL, "sequences": ">x\nMKTAYIAKQR\n>y\nMK1\n", "repr_layers": "-1",
        "include": ["mean", "contacts"], "long_sequences": "window"})
    job = Job.objects.get()
    assert ok["Location"] == job.get_absolute_url()
    assert job.input_facts["n_records"] == 1 and job.params["long_sequences"] == "window"


@pytest.mark.django_db(transaction=True)
def test_web_form_lists_left_out_records_on_the_result_page(alice_client, esm_weights):
    """The form's skipped records reach the result page, and the flash message
    counts the same records (they were lost when the input was cleaned twice)."""
    response = alice_client.post(reverse("analysis:esm_new"), {
        "model": MODEL, "sequences": ">good\nMKTAYIAKQR\n>bad_one\nMK1TAYIAKQ\n>good2\nGSHMLEDPVA\n",
        "repr_layers": "-1", "include": ["mean"], "long_sequences": "truncate"}, follow=True)
    job = Job.objects.get()
    flashed = [str(m) for m in response.context["messages"]]
    assert flashed == ["1 record(s) were left out; 2 will be embedded."]
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    assert job.result["n_records"] == 2 and job.result["n_rejected"] == 1
    page = alice_client.get(job.get_absolute_url()).content.decode()
    assert 'id="rejected-records"' in page and "bad_one" in page
    assert "Record 2 (bad_one)" in page


A = {"id": "a", "sequence": "MKTAYIAKQR"}


@pytest.mark.parametrize("params, field, text", [
    # Values of the wrong type were a TypeError (a 500), or read as something else.
    ({"sequences": [A], "model": ["esm2_t6_8M_UR50D"]}, "model", "Unknown model"),
    ({"example": ["uniref50"]}, "example", "Unknown example"),
    ({"sequences": [A], "repr_layers": [1.5]}, "repr_layers", "“1.5” is not a layer number"),
    ({"sequences": [A], "repr_layers": [True]}, "repr_layers", "not a layer number"),
    ({"sequences": [A, {"id": "b", "sequence": "MK1"}], "skip_invalid": "false"}, "skip_invalid", "true or false"),
    ({"sequences": [A], "include": [["mean"]]}, "include", "Unknown output"),
    ({"sequences": [{"id": {"x": 1}, "sequence": "MKT"}]}, "sequences[0].id", "must be text"),
    ({"sequences": [{"id": "a\tb", "sequence": "MKT"}]}, "sequences[0].id", "control characters"),
    # One item is one record: a ">" would smuggle in records of its own.
    ({"sequences": [{"id": "a", "sequence": "MKT\n>b\nMKT"}]}, "sequences[0].sequence", "cannot contain “>”"),
    # An id too long for a file name failed the job at its zip file (a system error).
    ({"sequences": [{"id": "x" * 70000, "sequence": "MKT"}]}, "sequences[0].id", "at most 200 bytes"),
    ({"sequences": [{"id": "é" * 101, "sequence": "MKT"}]}, "sequences[0].id", "at most 200 bytes"),
    # Two ids that make the same file in extract_pt.zip: one would hide the other.
    ({"sequences": [{"id": "a/b", "sequence": "MKT"}, {"id": "a_b", "sequence": "MKT"}]}, "sequences[1].id",
     "Record 2 (a_b): its result file a_b.pt would be the same as record 1's (a/b)"),
    # str.upper() made "ß" into "SS", letters nobody typed.
    ({"fasta": ">a\nMKTß\n"}, "fasta", "'ß' at position 4"),
    ({"fasta": ">a\n"}, "fasta", "Record 1 (a): the sequence is empty"),
    ({"fasta": ">a\nMK*T\n"}, "fasta", "stop codon"),
    ({"fasta": ">a\nMK1\n>b\nJJJ\n", "skip_invalid": True}, "fasta", "No valid protein sequence in the input: "
                                                                     "Record 1 (a)"),
])
def test_hostile_inputs_are_params_errors(api, params, field, text):
    response = api.post("/api/v1/jobs", {"kind": "analysis.esm_embeddings", "params": {"model": MODEL, **params}},
                        content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert text in response.json()["error"]
    assert not Job.objects.exists()


def test_duplicate_ids_skipped_keep_the_first_record(api):
    # The good first "a" was dropped with its duplicate, leaving no valid record.
    response = post(api, {"model": MODEL, "skip_invalid": True, "sequences": [A, {**A, "sequence": "MKTAY"}]})
    assert response.status_code == 202, response.content
    job = Job.objects.get()
    assert job.input_facts["n_records"] == 1 and job.params["fasta"] == ">a\nMKTAYIAKQR\n"
    assert "already used by record 1" in job.input_facts["rejected"][0]["message"]


@pytest.mark.django_db(transaction=True)
def test_odd_but_valid_inputs_run(api, esm_weights):
    """Inputs that look hostile but are fine run to the end, none as a system error."""
    response = post(api, {"model": MODEL, "repr_layers": ["-1", 6, 0], "include": ["mean", "per_tok"],
                          "sequences": [{"id": "../../x", "sequence": "XXXXXXXX"},
                                        {"id": "α→β", "sequence": "mktayiakqr*"},
                                        {"id": "m", "sequence": "M"}]})
    assert response.status_code == 202, response.content
    job = Job.objects.get()
    assert job.params["repr_layers"] == [-1, 6, 0]
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    arrays = np.load(io.BytesIO(job.files.get(name="embeddings.npz").file.read()))
    assert arrays["α→β/per_tok/6"].shape == (10, 32) and arrays["m/mean/0"].shape == (32,)
    with zipfile.ZipFile(io.BytesIO(job.files.get(name="extract_pt.zip").file.read())) as zf:
        assert sorted(zf.namelist()) == sorted([".._.._x.pt", "α→β.pt", "m.pt"])


# --- Which models the GPU workers have (analysis/esm/inventory.py) ------------

BIG = "esm2_t33_650M_UR50D"


def consumer(hostname, *queues):
    """What Celery's worker_ready passes: the worker's consumer, with its
    node name and the kombu queues it consumes from."""
    from types import SimpleNamespace

    from kombu import Queue

    return SimpleNamespace(hostname=hostname, task_consumer=SimpleNamespace(queues=[Queue(q) for q in queues]))


@pytest.fixture
def gpu_worker(esm_weights):
    """A GPU worker that reported, through the real start-up handler, having
    only MODEL (tiny weights), downloads off."""
    from analysis.esm import inventory

    inventory.on_worker_ready(sender=consumer("gpu@box1", "gpu"))
    yield "gpu@box1"
    inventory.on_worker_shutdown()


def test_worker_start_reports_its_checkpoints(esm_weights, settings):
    from analysis.esm import inventory
    from analysis.esm.models import WorkerInventory

    inventory.on_worker_ready(sender=consumer("cpu@box2", "cpu", "notify"))
    assert not WorkerInventory.objects.exists()  # not an ESM-2 worker: nothing to say

    inventory.on_worker_ready(sender=consumer("gpu@box1", "notify", "gpu"))
    try:
        row = WorkerInventory.objects.get()
        assert row.worker == "gpu@box1" and row.queues == ["gpu", "notify"]
        assert list(row.checkpoints) == [MODEL] and row.may_download is False
        assert row.checkpoints[MODEL]["path"] == str(esm_weights / f"{MODEL}.pt")
        assert row.checkpoints[MODEL]["contacts"] is True and row.checkpoints[MODEL]["bytes"] > 0
        assert row.search_dirs[0] == str(esm_weights)
        assert inventory._refresher is not None and inventory._refresher.is_alive()
        # A file the operator adds is in the next report (the refresher's, or a job's).
        write_tiny_esm2(esm_weights.parent, name="esm2_t12_35M_UR50D", num_layers=2)
        inventory.report("gpu@box1")
        row.refresh_from_db()
        assert sorted(row.checkpoints) == ["esm2_t12_35M_UR50D", MODEL] and row.queues == ["gpu", "notify"]
    finally:
        inventory.on_worker_shutdown()
    # A stopped worker offers nothing.
    assert not WorkerInventory.objects.exists() and inventory._refresher is None


def test_form_lists_installed_models_first_and_defaults_to_one(alice_client, gpu_worker, settings):
    page = alice_client.get(reverse("analysis:esm_new"))
    field = page.context["form"]["model"]
    options = [(value, label) for value, label in field.field.choices]
    assert options[0] == (MODEL, f"{MODEL} (8M): installed")
    assert (BIG, f"{BIG} (650M): not installed") in options
    assert field.value() == MODEL
    html = page.content.decode()
    assert f'<option value="{MODEL}" selected>' in html
    assert f'<option value="{BIG}" disabled>' in html

    # Downloads allowed on the worker: the others would download, with their size.
    settings.BIOFM_ESM_ALLOW_DOWNLOAD = True
    from analysis.esm import inventory

    inventory.report(gpu_worker)
    options = dict(alice_client.get(reverse("analysis:esm_new")).context["form"].fields["model"].choices)
    assert options[MODEL] == f"{MODEL} (8M): installed"
    assert options[BIG] == f"{BIG} (650M): downloads on first use (2,610 MB)"
    assert options["esm2_t6_8M_UR50D"].endswith("installed")


def test_default_is_the_preferred_installed_model(esm_weights, settings):
    from analysis.esm import inventory
    from analysis.esm.kind import clean_esm_params

    write_tiny_esm2(esm_weights.parent, name="esm2_t30_150M_UR50D", num_layers=2)
    write_tiny_esm2(esm_weights.parent, name="esm2_t36_3B_UR50D", num_layers=2)
    inventory.report("gpu@box1", ["gpu"])
    # 150M, not the smallest (8M) nor the slowest (3B); 650M is not installed.
    assert inventory.availability().default_model() == "esm2_t30_150M_UR50D"
    assert clean_esm_params({"sequences": [A]}).params["model"] == "esm2_t30_150M_UR50D"


def test_form_without_reports_says_so_and_accepts(alice_client, esm_weights):
    page = alice_client.get(reverse("analysis:esm_new"))
    assert "No GPU worker has reported its models yet" in page.content.decode()
    assert page.context["form"]["model"].value() == BIG
    ok = alice_client.post(reverse("analysis:esm_new"), {
        "model": BIG, "sequences": ">x\nMKTAYIAKQR", "repr_layers": "-1", "include": ["mean"],
        "long_sequences": "truncate"})
    assert ok.status_code == 302 and Job.objects.get().params["model"] == BIG


def test_missing_model_is_refused_on_the_page(alice_client, gpu_worker):
    response = alice_client.post(reverse("analysis:esm_new"), {
        "model": BIG, "sequences": ">x\nMKTAYIAKQR", "repr_layers": "-1", "include": ["mean"],
        "long_sequences": "truncate"})
    assert response.status_code == 400
    errors = " ".join(response.context["form"].errors["model"])
    assert f"{BIG} (650M) is not installed on the GPU workers" in errors
    assert f"Available: {MODEL}." in errors
    assert not Job.objects.exists()


@pytest.mark.parametrize("url, body", [
    ("/api/v1/esm/embeddings", {"model": BIG, "sequences": SEQS}),
    ("/api/v1/jobs", {"kind": "analysis.esm_embeddings", "params": {"model": BIG, "sequences": SEQS}}),
])
def test_missing_model_is_refused_by_the_api(api, gpu_worker, url, body):
    response = api.post(url, body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["field"] == "model"
    assert "not installed on the GPU workers" in response.json()["error"] and MODEL in response.json()["error"]
    assert "/" not in response.json()["error"]  # no server path
    assert not Job.objects.exists()


def test_api_without_a_model_gets_an_installed_one(api, gpu_worker):
    response = post(api, {"sequences": SEQS})
    assert response.status_code == 202, response.content
    assert Job.objects.get().params["model"] == MODEL


def test_only_fresh_reports_of_gpu_workers_count(api, gpu_worker, settings):
    from datetime import timedelta

    from django.utils import timezone

    from analysis.esm.models import WorkerInventory

    # A CPU-queue worker that has the big model does not make it available.
    WorkerInventory.objects.create(worker="cpu@box2", queues=["cpu"], checkpoints={BIG: {}},
                                   may_download=True, reported_at=timezone.now())
    assert post(api, {"model": BIG, "sequences": SEQS}).status_code == 400
    # The GPU worker's report is stale (it died): as if no worker had reported.
    WorkerInventory.objects.filter(worker=gpu_worker).update(
        reported_at=timezone.now() - timedelta(seconds=settings.BIOFM_ESM_INVENTORY_MAX_AGE + 1))
    assert post(api, {"model": BIG, "sequences": SEQS}).status_code == 202


def test_operators_see_the_reports_with_their_paths(client, make_user, gpu_worker, esm_weights):
    from analysis.esm.models import WorkerInventory

    operator = make_user("ops@example.org", is_staff=True, is_superuser=True)
    client.force_login(operator)
    listing = client.get("/admin/analysis_esm/workerinventory/").content.decode()
    assert gpu_worker in listing and MODEL in listing
    row = WorkerInventory.objects.get()
    page = client.get(f"/admin/analysis_esm/workerinventory/{row.pk}/change/")
    assert page.status_code == 200 and str(esm_weights / f"{MODEL}.pt") in page.content.decode()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_reports_its_models_and_refreshes_them_after_a_missing_one(
        alice_client, esm_weights, tmp_path):
    """A worker process reports on start; a job that still finds the weights
    missing (its report was gone when the job was accepted) tells the user in
    words and puts the report back, so the next submission is refused."""
    from analysis.esm.models import WorkerInventory

    flush_redis()
    worker = WorkerProcess(tmp_path, queues="gpu", env={"BIOFM_ESM_WEIGHTS_DIR": str(esm_weights),
                                                        "BIOFM_ESM_ALLOW_DOWNLOAD": "0"}).start()
    form = {"model": BIG, "sequences": ">x\nMKTAYIAKQR", "repr_layers": "-1", "include": ["mean"],
            "long_sequences": "truncate"}
    try:
        row = WorkerInventory.objects.get()  # written before the worker said "ready"
        assert row.worker.startswith(worker.name.split("@")[0] + "@") and row.queues == ["gpu"]
        assert list(row.checkpoints) == [MODEL]
        page = alice_client.get(reverse("analysis:esm_new")).content.decode()
        assert f"{MODEL} (8M): installed" in page and f"{BIG} (650M): not installed" in page

        WorkerInventory.objects.all().delete()  # as if its report had not arrived yet
        alice_client.post(reverse("analysis:esm_new"), form)
        job = Job.objects.get()
        job = wait_until(lambda: Job.objects.filter(pk=job.pk, status=Status.FAILED).first(), 60,
                         what="the job to fail")
        assert "not installed on the worker that ran the job" in job.error_message
        assert str(esm_weights) not in job.error_message and str(esm_weights) in job.error_detail
        assert list(WorkerInventory.objects.get().checkpoints) == [MODEL]
        assert alice_client.post(reverse("analysis:esm_new"), form).status_code == 400
    finally:
        worker.stop()
    assert str(esm_weights) in worker.log()  # the operators' log has the path
    assert not WorkerInventory.objects.exists()  # the stopped worker removed its report


def test_a_cancel_stops_the_runner_within_a_layer_not_a_batch(esm_weights, tmp_path, settings):
    """One batch of a big model takes a minute on a CPU; the cancel used to wait for it."""
    import time

    from analysis.esm.jobs import load_engine, run_esm_embeddings
    from workers.context import LocalContext
    from workers.errors import JobCancelled

    settings.BIOFM_ESM_DEVICE = "cpu"
    engine = load_engine(MODEL, "cpu")  # the worker's cached engine, which the runner gets
    hooks = [layer.final_layer_norm.register_forward_hook(lambda *a: time.sleep(0.4))
             for layer in engine.model.layers]  # 6 layers: one batch takes 2.4 s
    try:
        fasta = "".join(f">s{i}\n{SEQS[2]['sequence']}{'A' * i}\n" for i in range(40))
        ctx = LocalContext(tmp_path, {"fasta": fasta, "model": MODEL, "include": ["mean"], "repr_layers": [-1],
                                      "long_sequences": "truncate"}, cancel_after=0.6)
        asked_at = time.monotonic() + 0.6
        with pytest.raises(JobCancelled):
            run_esm_embeddings(ctx)
        assert time.monotonic() - asked_at < 1.5
    finally:
        for hook in hooks:
            hook.remove()


@pytest.mark.django_db(transaction=True)
def test_cancel_of_a_running_esm_job_takes_effect_in_seconds(api, esm_weights, settings):
    """Through the worker's own task and database context: the cancel flag comes
    back from a progress write, which now happens every few seconds inside a batch."""
    import threading
    import time

    from django.db import connection

    from analysis.esm.jobs import load_engine
    from tests.processes import wait_until
    from workers import lifecycle

    settings.BIOFM_ESM_DEVICE = "cpu"
    engine = load_engine(MODEL, "cpu")
    hooks = [layer.final_layer_norm.register_forward_hook(lambda *a: time.sleep(1.5))
             for layer in engine.model.layers]  # 9 s a batch, as a big model's on a CPU
    try:
        seqs = [{"id": f"s{i}", "sequence": SEQS[0]["sequence"] + "A" * i} for i in range(60)]
        job = Job.objects.get(pk=post(api, {"model": MODEL, "sequences": seqs}).json()["id"])

        def work():
            try:
                run_job_now(job)
            finally:
                connection.close()

        thread = threading.Thread(target=work)
        thread.start()
        wait_until(lambda: Job.objects.get(pk=job.pk).progress >= 3, 60, what="embedding started")
        time.sleep(0.5)  # inside the first batch
        asked = time.monotonic()
        lifecycle.cancel(Job.objects.get(pk=job.pk))
        thread.join(60)
        took = time.monotonic() - asked
    finally:
        for hook in hooks:
            hook.remove()
    assert Job.objects.get(pk=job.pk).status == Status.CANCELLED
    assert took < 4.5, f"the cancel took {took:.1f} s"  # waiting for the batches took 8 s or more
