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
    import analysis.atomica_jobs as jobs

    jobs._model = None  # each test loads the weights it configured
    yield
    jobs._model = None


@pytest.mark.django_db(transaction=True)
def test_page_job_downloads_match_the_reference(alice_client, user, atomica_weights, settings):
    settings.BIOFM_ATOMICA_IMPORTANCE_MAX_BLOCKS = 20  # the first complex only: CPU time
    response = alice_client.post(reverse("analysis:atomica_new"), {
        "records": SimpleUploadedFile("two.jsonl.gz", records_gz()), "importance": "on"})
    job = Job.objects.get()
    assert response["Location"] == job.get_absolute_url()
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    phases = [p["name"] for p in job.attempt_log.get().phases]
    assert phases == ["reading inputs", "loading model", "computing", "writing results"]

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
    import analysis.atomica_jobs as jobs

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


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_score_api_through_a_real_worker(api, tmp_path, settings):
    """URL and base64 items answered in index order; a refused URL and a bad
    item give errors naming their index while the good items return."""
    RecordsHandler.body = records_gz(("1rmd_A_A_ZN_2",))
    httpd = ThreadingHTTPServer(("127.0.0.2", free_port()), RecordsHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.2:{httpd.server_address[1]}/one.jsonl.gz"
    flush_redis()
    worker = WorkerProcess(tmp_path, env={
        "BIOFM_ATOMICA_CONFIG": str(FIX / "model" / "config.json"),
        "BIOFM_ATOMICA_WEIGHTS": str(FIX / "model" / "weights.pt"),
        "BIOFM_FETCH_ALLOW_HOSTS": "127.0.0.2"}).start()
    try:
        response = api.post("/api/v1/atomica/score", {"input_data": {
            "columns": ["pdb_data"], "index": [10, 11, 12, 13],
            "data": [[url], [base64.b64encode(records_gz(("1rmd_A_A_ZN_0",))).decode()],
                     ["http://127.0.0.1:9/secret.jsonl.gz"], ["%%%not base64"]]}},
            content_type="application/json")
    finally:
        worker.stop()
        httpd.shutdown()
    assert response.status_code == 200, response.content
    predictions = response.json()["predictions"]
    assert len(predictions) == 4
    for prediction, rid in ((predictions[0], "1rmd_A_A_ZN_2"), (predictions[1], "1rmd_A_A_ZN_0")):
        ref = reference(rid)
        assert np.abs(np.array(prediction["graph_embedding"]) - ref["graph_embedding"]).max() <= 1e-5
        assert np.array(prediction["atom_embedding"]).shape == ref["atom_embedding"].shape
    assert "12" in predictions[2]["error"] and "not a public address" in predictions[2]["error"]
    assert "13" in predictions[3]["error"]


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
    assert job.params["items"][0]["records_path"].endswith(".jsonl.gz")
    # The form converted the structure to check it; the worker uses those records.
    monkeypatch.setattr("analysis.atomica_inputs.convert_structure",
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
    {"source": "stored", "path": "atomica_inputs/../jobs/x/result.npz"},
    {"source": "stored", "path": "jobs/" + "a" * 32 + ".jsonl.gz"},
    {"source": "structure", "path": "atomica_inputs/" + "a" * 32 + "-1rmd.pdb",
     "records_path": "atomica_inputs/" + "a" * 32 + "/../../jobs/x.jsonl.gz"},
    {"source": "structure", "path": "atomica_inputs/" + "a" * 32 + "-1rmd.pdb", "ligand_sdf_path": "/etc/passwd"},
])
def test_items_cannot_name_files_outside_the_inputs_folder(item):
    from analysis.atomica_params import clean_atomica_params
    from workers.errors import ParamsError

    with pytest.raises(ParamsError) as caught:
        clean_atomica_params({"items": [item]})
    assert caught.value.field == "items[0]"
    ok = {"source": "stored", "path": "atomica_inputs/" + "a" * 32 + ".jsonl.gz"}
    assert clean_atomica_params({"items": [ok]})["items"] == [ok]
