"""ATOMICA jobs: the page, downloads (.npz, Parquet, JSON) equal to the
reference embeddings, per-block importance, similarity search, the scoring
API through a real worker (URL, base64 and bad items), missing weights, the
command line in both checkpoint layouts."""

from __future__ import annotations

import base64
import gzip
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from tests.conftest import run_job_now
from tests.processes import WorkerProcess, flush_redis, free_port
from workers.models import Job, Status

pytestmark = pytest.mark.django_db
FIX = Path(__file__).parent / "fixtures" / "atomica"
SMALL = ("1rmd_A_A_ZN_0", "1rmd_A_A_ZN_2")


def records_gz(ids=SMALL) -> bytes:
    lines = [line for line in gzip.open(FIX / "inputs" / "shared.jsonl.gz", "rt")
             if json.loads(line)["id"] in ids]
    return gzip.compress("".join(lines).encode())


def reference(record_id: str):
    return np.load(FIX / "outputs" / "weights_bs1" / f"{record_id}.npz")


@pytest.fixture
def atomica_weights(settings):
    settings.BIOFM_ATOMICA_CONFIG = str(FIX / "model" / "config.json")
    settings.BIOFM_ATOMICA_WEIGHTS = str(FIX / "model" / "weights.pt")
    import analysis.atomica.jobs as jobs

    jobs._model = None  # each test loads the weights it configured
    yield
    jobs._model = None


@pytest.mark.django_db(transaction=True)
def test_page_job_downloads_match_the_reference(alice_client, user, atomica_weights, settings):
    settings.BIOFM_ATOMICA_IMPORTANCE_MAX_BLOCKS = 20  # the first complex only: CPU time
    settings.BIOFM_WORKER_HARDWARE = "gpu"  # the worker's guess; the model says where it ran
    response = alice_client.post(reverse("analysis:atomica_new"), {
        "records": SimpleUploadedFile("two.jsonl.gz", records_gz()), "importance": "on"})
    job = Job.objects.get()
    assert response["Location"] == job.get_absolute_url()
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    phases = [p["name"] for p in job.attempt_log.get().phases]
    assert phases == ["reading inputs", "loading model", "computing", "writing results"]
    # A GPU-queue job is charged to the hardware its model ran on.
    import torch

    ran_on = "gpu" if torch.cuda.is_available() else "cpu"
    assert job.queue == "gpu" and job.hardware == job.attempt_log.get().hardware == ran_on

    arrays = np.load(io.BytesIO(job.files.get(name="atomica_embeddings.npz").file.read()))
    for rid in SMALL:
        ref = reference(rid)
        for scale in ("graph_embedding", "block_embedding", "atom_embedding"):
            assert np.abs(arrays[f"{rid}/{scale}"] - ref[scale]).max() <= 1e-5, (rid, scale)
        assert arrays[f"{rid}/is_global_block"].sum() == 2  # one global block per segment

    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(job.files.get(name="atomica_blocks.parquet").file.read()))
    assert table.num_rows == sum(len(reference(r)["block_embedding"]) for r in SMALL)
    assert set(table.column("complex_id").to_pylist()) == set(SMALL)
    payload = json.loads(job.files.get(name="atomica_embeddings.json").file.read())
    assert [c["id"] for c in payload["complexes"]] == list(SMALL)
    assert payload["complexes"][0]["block_labels"][1].startswith("A:2 (")  # chain:residue (type)

    assert "importance" not in job.result["charts"][1]  # over the block budget
    chart = job.result["charts"][0]
    assert chart["atoms"]["data"][0]["type"] == "scatter3d"
    importance = chart["importance_values"]
    non_global = int((~arrays[f"{SMALL[0]}/is_global_block"]).sum())
    assert len(importance) == non_global and all(0 <= v <= 2 for v in importance.values())
    assert max(importance.values()) > 0  # masking a block changes the complex embedding

    page = alice_client.get(job.get_absolute_url())
    assert b"atomica-table" in page.content and b"atomica-charts" in page.content
    similar = alice_client.get(reverse("analysis:atomica_similar", args=[job.pk, 0]))
    assert similar.status_code == 200 and SMALL[1].encode() in similar.content


def test_similarity_and_pages_are_scoped(client, other_user, user):
    job = Job.objects.create(kind="analysis.atomica_embeddings", owner=other_user, params={},
                             status=Status.SUCCEEDED, result={"complexes": [{"id": "x", "graph_embedding": [1.0] * 32}]})
    client.force_login(user)
    assert client.get(reverse("analysis:atomica_similar", args=[job.pk, 0])).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_missing_weights_offline_fail_clearly(alice_client, settings, tmp_path):
    import analysis.atomica.jobs as jobs

    jobs._model = None
    settings.BIOFM_ATOMICA_CONFIG = settings.BIOFM_ATOMICA_WEIGHTS = ""
    settings.BIOFM_ATOMICA_CHECKPOINT_DIR = str(tmp_path / "none")
    settings.BIOFM_ATOMICA_ALLOW_DOWNLOAD = False
    alice_client.post(reverse("analysis:atomica_new"), {"records": SimpleUploadedFile("a.jsonl.gz", records_gz())})
    job = Job.objects.get()
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.FAILED and job.error_kind == "system"
    assert "pretrain_model_weights.pt" in job.error_message and str(tmp_path / "none") in job.error_message


def test_form_refuses_non_gzip_upload(alice_client):
    page = alice_client.post(reverse("analysis:atomica_new"), {"records": SimpleUploadedFile("a.pdb", b"ATOM ...")})
    assert page.status_code == 400 and "not a gzip file" in " ".join(page.context["form"].errors["records"])


@pytest.mark.parametrize("payload, field", [
    ({"input_data": {"columns": ["other"], "data": [["x"]]}}, "input_data.columns"),
    ({"input_data": {"columns": ["pdb_data"], "index": [0, 1], "data": [["x"]]}}, "input_data.index"),
    ({"input_data": {"columns": ["pdb_data"], "data": [["ftp://host/x.jsonl.gz"]]}}, "input_data.data[0]"),
    ({"input_data": {"columns": ["pdb_data"], "data": [["bm90IGd6aXA="]]}}, "input_data.data[0]"),
])
def test_score_requests_with_no_usable_item_are_400(api, payload, field):
    response = api.post("/api/v1/atomica/score", payload, content_type="application/json")
    assert response.status_code == 400 and response.json()["field"] == field


class RecordsHandler(BaseHTTPRequestHandler):
    body = b""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


def out_of_vocabulary_line(record_id: str) -> str:
    """A well-formed record whose block type the model has no embedding for."""
    line = next(line for line in gzip.open(FIX / "inputs" / "shared.jsonl.gz", "rt")
                if json.loads(line)["id"] == "1rmd_A_A_ZN_1")
    record = json.loads(line)
    record["id"] = record_id
    record["data"]["B"][1] = 10**6
    return json.dumps(record) + "\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_score_api_through_a_real_worker(api, tmp_path, settings):
    """URL and base64 items answered in index order; an item of several
    records gives every record's prediction with its index and id; a refused
    URL, a bad item and a record the model cannot embed give errors naming
    their index while the good items and records return."""
    settings.BIOFM_ATOMICA_SYNC_WAIT_SECONDS = 150  # a busy test machine; production's bound is checked
    RecordsHandler.body = records_gz(("1rmd_A_A_ZN_2",))
    httpd = ThreadingHTTPServer(("127.0.0.2", free_port()), RecordsHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.2:{httpd.server_address[1]}/one.jsonl.gz"
    several = gzip.compress(gzip.decompress(records_gz(("1rmd_A_A_ZN_0", "1rmd_A_A_ZN_1")))
                            + out_of_vocabulary_line("odd_one").encode())
    flush_redis()
    worker = WorkerProcess(tmp_path, env={
        "BIOFM_ATOMICA_CONFIG": str(FIX / "model" / "config.json"),
        "BIOFM_ATOMICA_WEIGHTS": str(FIX / "model" / "weights.pt"),
        "BIOFM_FETCH_ALLOW_HOSTS": "127.0.0.2"}).start()
    try:
        response = api.post("/api/v1/atomica/score", {"input_data": {
            "columns": ["pdb_data"], "index": [10, 11, 12, 13, 14],
            "data": [[url], [b64(several)], ["http://127.0.0.1:9/secret.jsonl.gz"], ["%%%not base64"],
                     [b64(gzip.compress(out_of_vocabulary_line("unembeddable").encode()))]]}},
            content_type="application/json")
    finally:
        worker.stop()
        httpd.shutdown()
    assert response.status_code == 200, response.content
    predictions = response.json()["predictions"]
    assert [(p["index"], p.get("id"), "error" in p) for p in predictions] == [
        (10, "1rmd_A_A_ZN_2", False),
        (11, "1rmd_A_A_ZN_0", False), (11, "1rmd_A_A_ZN_1", False), (11, "odd_one", True),
        (12, None, True), (13, None, True), (14, "unembeddable", True)]
    for prediction in predictions[:3]:
        ref = reference(prediction["id"])
        assert np.abs(np.array(prediction["graph_embedding"]) - ref["graph_embedding"]).max() <= 1e-5
        assert np.array(prediction["atom_embedding"]).shape == ref["atom_embedding"].shape
    assert "11" in predictions[3]["error"] and "vocabulary" in predictions[3]["error"]
    assert "12" in predictions[4]["error"] and "not a public address" in predictions[4]["error"]
    assert "13" in predictions[5]["error"]
    assert "14" in predictions[6]["error"] and "vocabulary" in predictions[6]["error"]


@pytest.mark.django_db(transaction=True)
def test_score_answers_202_with_location_when_the_wait_ends(api, settings):
    """No worker: the wait ends within its bound with where to follow the job."""
    settings.BIOFM_ATOMICA_SYNC_WAIT_SECONDS = 1
    response = api.post("/api/v1/atomica/score", {"input_data": {
        "columns": ["pdb_data"], "data": [[b64(records_gz())]]}}, content_type="application/json")
    assert response.status_code == 202, response.content
    job = Job.objects.get()
    assert response["Location"] == f"/api/v1/jobs/{job.id}" and int(response["Retry-After"]) > 0
    assert response.json()["job"]["status"] == "queued"


@pytest.mark.parametrize("config, weights", [("config.json", "weights.pt"),
                                             ("pretrain_config.json", "pretrain_weights.pt")])
def test_command_line_in_both_layouts(tmp_path, config, weights):
    src = tmp_path / "in.jsonl.gz"
    src.write_bytes(records_gz(("1rmd_A_A_ZN_2",)))
    out = tmp_path / "out.npz"
    call_command("atomica_embed", str(src), "--config", str(FIX / "model" / config),
                 "--weights", str(FIX / "model" / weights), "--out", str(out))
    arrays = np.load(out)
    ref = reference("1rmd_A_A_ZN_2")
    assert arrays["1rmd_A_A_ZN_2/block_embedding"].shape == ref["block_embedding"].shape
    assert np.abs(arrays["1rmd_A_A_ZN_2/atom_embedding"] - ref["atom_embedding"]).max() <= 1e-5
    assert arrays["1rmd_A_A_ZN_2/is_global_atom"].sum() == 2


def test_sides_are_suggested_from_the_file(alice_client):
    upload = SimpleUploadedFile("1eve.pdb", (FIX / "structures" / "1eve.pdb").read_bytes())
    options = alice_client.post(reverse("analysis:atomica_sides"), {"structure": upload})
    assert options.status_code == 200
    first = options.content.decode().split("</option>")[0]
    assert "E20" in first and "selected" in first  # the drug, not the glycans, comes first


def test_structure_errors_are_reported_next_to_the_field(alice_client):
    upload = SimpleUploadedFile("1rmd.pdb", (FIX / "structures" / "1rmd.pdb").read_bytes())
    page = alice_client.post(reverse("analysis:atomica_new"), {
        "structure": upload, "chains1": "Q", "ligand_code": "ZN", "mode": "default", "cutoff": 8})
    assert page.status_code == 400
    message = " ".join(page.context["form"].errors["structure"])
    assert "Q" in message and message.startswith("1rmd.pdb") and "/tmp" not in message
    assert Job.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_structure_upload_is_converted_and_embedded(alice_client, atomica_weights, monkeypatch):
    upload = SimpleUploadedFile("1rmd.pdb", (FIX / "structures" / "1rmd.pdb").read_bytes())
    response = alice_client.post(reverse("analysis:atomica_new"), {
        "structure": upload, "mode": "atomica", "cutoff": 8})
    assert response.status_code == 302, response.context["form"].errors if response.context else ""
    job = Job.objects.get()
    from analysis.atomica.models import StoredInput

    item = job.params["items"][0]
    assert {r.name for r in job.atomica_inputs.all()} == {"1rmd.pdb", "1rmd.pdb.jsonl.gz"}
    assert StoredInput.objects.get(pk=item["records_input_id"]).file.name.endswith(".jsonl.gz")
    assert not any("path" in key for key in item)
    # The form converted the structure to check it; the worker uses those records.
    monkeypatch.setattr("analysis.atomica.inputs.convert_structure",
                        lambda item: pytest.fail("the worker converted the structure again"))
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    ids = [c["id"] for c in job.result["complexes"]]
    # ATOMICA-compatible conversion of the zinc sites gives ATOMICA's own records.
    assert "1rmd_A_A_ZN_0" in ids
    arrays = np.load(io.BytesIO(job.files.get(name="atomica_embeddings.npz").file.read()))
    ref = reference("1rmd_A_A_ZN_0")
    assert np.abs(arrays["1rmd_A_A_ZN_0/graph_embedding"] - ref["graph_embedding"]).max() <= 1e-5


@pytest.mark.parametrize("item", [
    {"source": "stored", "path": "atomica_inputs/" + "a" * 32 + ".jsonl.gz"},
    {"source": "stored", "input_id": "atomica_inputs/../jobs/x/result.npz"},
    {"source": "structure", "input_id": "a" * 32, "records_input_id": "../../jobs/x.jsonl.gz"},
    {"source": "structure", "input_id": "a" * 32, "ligand_sdf_input_id": "/etc/passwd"},
])
def test_items_name_stored_inputs_by_id_never_by_path(item):
    from analysis.atomica.kind import clean_atomica_params
    from workers.errors import ParamsError

    with pytest.raises(ParamsError) as caught:
        clean_atomica_params({"items": [item]})
    assert caught.value.field.startswith("items[0].") and "no stored input" in caught.value.message
    ok = {"source": "stored", "input_id": "a" * 32, "path": "jobs/x/result.npz"}
    cleaned = clean_atomica_params({"items": [ok]})["items"]
    assert cleaned == [{"source": "stored", "name": "", "input_id": "aaaaaaaa-aaaa-aaaa-aaaa-" + "a" * 12}]


def submit_stored(client, item):
    return client.post("/api/v1/jobs", {"kind": "analysis.atomica_embeddings", "params": {"items": [item]}},
                       content_type="application/json")


def test_someone_elses_stored_input_is_refused_like_a_missing_one(api, other_user, user):
    """The probe: bob's stored file, named by its storage path or by its id,
    is not embedded for alice; the answer is the one a missing id gets."""
    import uuid

    from analysis.atomica.inputs import store_input
    from analysis.atomica.models import StoredInput

    bobs = StoredInput.objects.get(pk=store_input(records_gz(), "bob.jsonl.gz", other_user)["input_id"])
    assert bobs.file.name.startswith("atomica_inputs/") and bobs.owner == other_user

    by_path = submit_stored(api, {"source": "stored", "path": bobs.file.name})
    assert by_path.status_code == 400 and by_path.json()["field"] == "items[0].input_id"
    by_id = submit_stored(api, {"source": "stored", "input_id": str(bobs.pk)})
    missing_id = uuid.uuid4()
    missing = submit_stored(api, {"source": "stored", "input_id": str(missing_id)})
    assert by_id.status_code == missing.status_code == 400
    same = missing.json()["error"].replace(str(missing_id), "<id>")
    assert by_id.json()["error"].replace(str(bobs.pk), "<id>") == same
    assert by_id.json()["field"] == missing.json()["field"] == "items[0].input_id"
    for key in ("records_input_id", "ligand_sdf_input_id"):
        refused = submit_stored(api, {"source": "structure", "input_id": str(bobs.pk), key: str(bobs.pk)})
        assert refused.status_code == 400
    assert Job.objects.count() == 0

    mine = store_input(records_gz(), "mine.jsonl.gz", user)
    accepted = submit_stored(api, {"source": "stored", "input_id": mine["input_id"]})
    assert accepted.status_code == 202, accepted.content
    job = Job.objects.get()
    assert [str(r.pk) for r in job.atomica_inputs.all()] == [mine["input_id"]]
    assert StoredInput.objects.referenced_paths() == {StoredInput.objects.get(pk=mine["input_id"]).file.name}
    assert list(StoredInput.objects.unreferenced()) == [bobs]


@pytest.mark.django_db(transaction=True)
def test_owner_and_lab_members_rerun_a_shared_job_on_its_inputs(api, client, user, other_user, make_user,
                                                                  atomica_weights):
    """The job's inputs go with the job: its owner reruns it, and so does a lab
    member who can see the shared job (its results already show them the
    inputs); someone outside the lab gets a 404."""
    from accounts.models import ApiToken, Lab, Membership

    lab = Lab.objects.create(name="Structure group", slug="structure-group")
    Membership.objects.create(lab=lab, user=user)
    Membership.objects.create(lab=lab, user=other_user)
    response = api.post("/api/v1/atomica/embeddings", {
        "items": [base64.b64encode(records_gz(("1rmd_A_A_ZN_2",))).decode()], "shared": True},
        content_type="application/json")
    assert response.status_code == 202, response.content
    original = Job.objects.get(pk=response.json()["id"])
    Job.objects.filter(pk=original.pk).update(lab=lab)
    input_id = original.params["items"][0]["input_id"]

    assert api.post(f"/api/v1/jobs/{original.pk}/rerun").status_code == 202

    def client_of(someone):
        from django.test import Client

        _, raw = ApiToken.issue(someone, "tests")
        return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")

    bob = client_of(other_user)
    rerun = bob.post(f"/api/v1/jobs/{original.pk}/rerun")
    assert rerun.status_code == 202, rerun.content
    bobs_job = Job.objects.get(pk=rerun.json()["id"])
    assert bobs_job.owner == other_user and bobs_job.params["items"][0]["input_id"] == input_id
    run_job_now(bobs_job)
    bobs_job.refresh_from_db()
    assert bobs_job.status == Status.SUCCEEDED, bobs_job.error_message
    assert [c["id"] for c in bobs_job.result["complexes"]] == ["1rmd_A_A_ZN_2"]

    outsider = client_of(make_user("carol@example.org"))
    assert outsider.post(f"/api/v1/jobs/{original.pk}/rerun").status_code == 404
    refused = outsider.post("/api/v1/jobs", {"kind": "analysis.atomica_embeddings", "params": {
        "items": [{"source": "stored", "input_id": input_id}]}}, content_type="application/json")
    assert refused.status_code == 400 and refused.json()["field"] == "items[0].input_id"


def test_jobs_from_before_stored_inputs_name_their_files_by_id(user):
    """The data migration: a job whose items named files by path gets
    StoredInput rows owned by its owner, named by id, and reruns."""
    from importlib import import_module

    from django.apps import apps
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from analysis.atomica.kind import check_access
    from analysis.atomica.models import StoredInput

    path = default_storage.save("atomica_inputs/" + "b" * 32 + ".jsonl.gz", ContentFile(records_gz()))
    job = Job.objects.create(kind="analysis.atomica_embeddings", owner=user, params={
        "items": [{"source": "stored", "path": path, "name": "old.jsonl.gz"}, {"source": "url", "url": "https://x/y"}]})
    import_module("analysis.atomica.migrations.0002_existing_jobs_name_inputs_by_id").forwards(apps, None)
    job.refresh_from_db()
    row = StoredInput.objects.get()
    assert job.params["items"][0] == {"source": "stored", "input_id": str(row.pk), "name": "old.jsonl.gz"}
    assert job.params["items"][1] == {"source": "url", "url": "https://x/y"}
    assert (row.owner, row.file.name, row.size) == (user, path, len(records_gz()))
    assert list(row.jobs.all()) == [job]
    check_access(job.params, user)


@pytest.mark.django_db(transaction=True)
def test_a_record_the_model_cannot_embed_fails_alone(alice_client, atomica_weights):
    """Next to a good file, a file with a record outside the model's
    vocabulary and a line that is not JSON: the job succeeds with the good
    records, and the page names the bad ones."""
    mixed = gzip.compress(gzip.decompress(records_gz(("1rmd_A_A_ZN_0",)))
                          + out_of_vocabulary_line("unembeddable").encode() + b"{not json\n")
    alice_client.post(reverse("analysis:atomica_new"), {"records": [
        SimpleUploadedFile("good.jsonl.gz", records_gz(("1rmd_A_A_ZN_2",))),
        SimpleUploadedFile("mixed.jsonl.gz", mixed)]})
    job = Job.objects.get()
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    assert [(c["id"], c["item"]) for c in job.result["complexes"]] == [("1rmd_A_A_ZN_2", 0), ("1rmd_A_A_ZN_0", 1)]
    errors = job.result["errors"]
    assert [(e["index"], e.get("record")) for e in errors] == [(1, None), (1, "unembeddable")]
    assert "line 3" in errors[0]["error"] and "vocabulary" in errors[1]["error"]
    page = alice_client.get(job.get_absolute_url()).content.decode()
    assert "unembeddable" in page and "line 3" in page


def test_importance_reports_progress_per_batch_of_masked_blocks_and_stops_on_a_cancel(atomica_weights, settings):
    from analysis.atomica.compute.records import read_records
    from analysis.atomica.jobs import block_importance, load_atomica_model

    record = next(r for r in read_records(FIX / "inputs" / "shared.jsonl.gz") if r.id == SMALL[0])
    model = load_atomica_model()
    blocks = int((~record.is_global_block).sum())
    calls = []
    scores = block_importance(model, record, 2, progress=lambda done, total: calls.append((done, total)))
    assert len(scores) == blocks and blocks > 4
    # One call per batch of two masked copies: the bar moves through the passes.
    assert calls == [(min(n, blocks), blocks) for n in range(2, blocks + 2, 2)]

    class Cancelled(Exception):
        pass

    def cancel_at_second_batch(done, total):
        if done >= 4:
            raise Cancelled()

    calls.clear()
    with pytest.raises(Cancelled):
        block_importance(model, record, 2, progress=cancel_at_second_batch)


def test_similarity_lists_each_distinct_complex_once_with_its_job_date(alice_client, user):
    """Three reruns of one input hold the same complexes: each is one row
    (under the newest run, naming the others), and copies of the query itself
    are not hits."""
    from datetime import timedelta

    from django.utils import timezone

    rng = np.random.default_rng(0)
    query, near, far = (rng.normal(size=32).tolist() for _ in range(3))
    noisy = (np.asarray(near) * (1 + 1e-7)).tolist()  # a rerun's GPU float noise
    runs = []
    for age, emb in ((3, near), (2, noisy), (1, near)):
        job = Job.objects.create(kind="analysis.atomica_embeddings", owner=user, params={}, title="zinc sites",
                                 status=Status.SUCCEEDED,
                                 result={"complexes": [{"id": "q", "graph_embedding": query},
                                                       {"id": "near", "graph_embedding": emb}]})
        Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(days=age))
        runs.append(Job.objects.get(pk=job.pk))
    other = Job.objects.create(kind="analysis.atomica_embeddings", owner=user, params={}, title="other",
                               status=Status.SUCCEEDED, result={"complexes": [{"id": "far", "graph_embedding": far},
                                                                              {"id": "near", "graph_embedding": far}]})
    page = alice_client.get(reverse("analysis:atomica_similar", args=[runs[0].pk, 0]))
    hits = page.context["hits"]
    near_hits = [h for h in hits if h["id"] == "near" and h["job"].pk != other.pk]
    assert len(near_hits) == 1 and near_hits[0]["job"].pk == runs[2].pk and near_hits[0]["other_runs"] == 2
    assert sorted((h["id"], h["job"].pk) for h in hits) == sorted(
        [("near", runs[2].pk), ("far", other.pk), ("near", other.pk)])  # same id, other embedding: distinct
    assert page.context["copies_of_query"] == 2 and page.context["searched"] == 3
    html = page.content.decode()
    assert html.count("zinc sites") == 1 and "also in 2 other runs" in html
    assert runs[2].created_at.strftime("%Y-%m-%d") in html and "Job date" in html


def _1eve_upload(drop: str | None = None) -> SimpleUploadedFile:
    """1eve.pdb, optionally without the lines holding `drop` (to make a residue incomplete)."""
    lines = (FIX / "structures" / "1eve.pdb").read_text().splitlines(keepends=True)
    return SimpleUploadedFile("1eve.pdb", "".join(line for line in lines if not drop or drop not in line).encode())


@pytest.mark.django_db(transaction=True)
def test_ligand_without_smiles_is_fragmented_and_labelled_block_by_block(alice_client, atomica_weights, settings):
    settings.BIOFM_ATOMICA_IMPORTANCE_MAX_BLOCKS = 20
    # A 4 A interface (20 blocks) keeps the importance passes short on a CPU;
    # test_atomica_convert checks the 63 blocks of the 8 A one.
    response = alice_client.post(reverse("analysis:atomica_new"), {
        "structure": _1eve_upload(), "mode": "default", "cutoff": 4, "importance": "on"})
    assert response.status_code == 302, response.context["form"].errors if response.context else ""
    job = Job.objects.get()
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    (complex_,) = job.result["complexes"]
    assert complex_["blocks"] == 20  # donepezil in 4 fragments, as with its SMILES (one per atom before)
    assert job.result["ligands"] == [{"index": 0, "ligand": "E20 A 2001", "fragmented": True, "blocks": 4,
                                      "bond_orders": "CONECT records + Open Babel PerceiveBondOrders",
                                      "warning": ""}]
    assert job.result["warnings"] == []

    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(job.files.get(name="atomica_blocks.parquet").file.read()))
    labels = table.column("block_label").to_pylist()
    assert len(labels) == len(set(labels)) == 20
    chart = job.result["charts"][0]
    bars = chart["importance"]["data"][0]["x"]
    assert len(bars) == len(set(bars)) == 18 == len(chart["importance_values"])  # all but the 2 global blocks
    assert sum(bar.startswith("A:2001 frag ") for bar in bars) == 4
    page = alice_client.get(job.get_absolute_url()).content.decode()
    assert "atomica-ligands" in page and "CONECT records + Open Babel PerceiveBondOrders" in page
    assert "atomica-warnings" not in page


@pytest.mark.django_db(transaction=True)
def test_ligand_that_cannot_be_fragmented_is_said_on_the_form_and_the_result(alice_client, atomica_weights):
    form = {"mode": "default", "cutoff": 8, "chains1": "A", "chains2": "A", "ligand_code": "E20"}
    page = alice_client.post(reverse("analysis:atomica_new"), {"structure": _1eve_upload(" C28 E20 "), **form})
    assert page.status_code == 400 and Job.objects.count() == 0
    (warning,) = page.context["form"].errors["ligand_smiles"]
    assert warning.startswith("Ligand E20 A 2001 is not fragmented") and "atoms are missing" in warning
    assert "keep_unfragmented" in page.context["form"].errors

    response = alice_client.post(reverse("analysis:atomica_new"), {
        "structure": _1eve_upload(" C28 E20 "), "keep_unfragmented": "on", **form})
    assert response.status_code == 302
    job = Job.objects.get()
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    (ligand,) = job.result["ligands"]
    assert (ligand["fragmented"], ligand["bond_orders"], ligand["blocks"]) == (False, "none", 27)
    assert job.result["warnings"] == [f"Item 0: {warning}"]
    page = alice_client.get(job.get_absolute_url()).content.decode()
    assert "atomica-warnings" in page and "Ligand E20 A 2001 is not fragmented" in page


def test_block_atoms_give_the_viewer_each_blocks_coordinates_in_importance_order():
    from analysis.atomica import outputs
    from analysis.atomica.compute import convert

    record = convert.convert_structure(FIX / "structures" / "1rmd.pdb", ["A"], ["A"], ligand_code="ZN",
                                       mode="atomica", cutoff=8.0)[0]
    labels = outputs.block_labels(record)
    blocks = [i for i in range(record.num_blocks) if not record.is_global_block[i]]
    importance = [float((7 * n) % len(blocks)) for n in range(len(blocks))]  # a shuffled order
    rows = outputs.block_atoms(record, labels, importance)
    assert [r["value"] for r in rows] == sorted(importance, reverse=True)
    by_label = {labels[b]: b for b in blocks}
    for row in rows:
        b = by_label[row["label"]]
        expected = np.round(record.X[record.atom_block_index == b], 3).tolist()
        assert row["atoms"] == expected and len(expected) == record.block_lengths[b]
    assert any(r["label"] == "A:117 (Zn)" and len(r["atoms"]) == 1 for r in rows)  # the ion, one atom
