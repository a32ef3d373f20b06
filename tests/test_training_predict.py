"""Using a trained model: the train_model / predict / import_model commands and
the training.predict job (form, API, page, files), on a tiny fingerprint forest
trained once for the module. The same model predicts the same file the same way
from the command line and from the portal."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from tests.conftest import run_job_now
from training.compute.bundle import AD_THRESHOLD, load_model
from training.models import ModelVersion
from workers.models import Job, Status

ESOL = Path(__file__).parent / "fixtures" / "training_pipeline" / "esol_200.csv"
TARGET = "measured log solubility in mols per litre"
TINY = ["--hparam", "n_estimators=10", "--hparam", "descriptors=false"]
# An input with a name column, a bad SMILES, a blank line, padded SMILES and a
# column named like the target (its values are kept, renamed).
INPUT = (f"id,smiles,{TARGET}\n"
         "ethanol,CCO,-0.77\n"
         "broken,C1CC,1.0\n"
         "\n"
         "phenol, c1ccccc1O ,\n"
         "acid,CCCCCC(=O)O,x\n"
         "valence,C(C)(C)(C)(C)C,\n")


def train(tmp_path, *extra, name="model") -> Path:
    data = tmp_path / "esol_60.csv"
    if not data.exists():
        lines = ESOL.read_text().splitlines()
        data.write_text("\n".join(lines[:61]) + "\n")
    out = tmp_path / name
    call_command("train_model", str(data), "--smiles-column", "smiles", "--target-column", TARGET,
                 "--family", "fingerprint_rf", "--out", str(out), *TINY, *extra)
    return out


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return train(tmp_path_factory.mktemp("cli"), "--ensemble", "2", "--sizes", "0.7", "0.15", "0.15", "--seed", "3")


def read_csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


# ---------------------------------------------------------------- commands

def test_train_model_writes_a_loadable_model_and_its_test_metrics(model_dir):
    assert (model_dir / "model.json").exists() and (model_dir / "train_fps.safetensors").exists()
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["family"] == "fingerprint_rf" and metrics["ensemble"] == 2 and metrics["seed"] == 3
    assert metrics["split"]["method"] == "random" and metrics["split"]["n_test"] == 9
    assert metrics["hparams"]["n_estimators"] == 10 and metrics["dataset"]["name"] == "esol_60.csv"
    test = metrics["metrics"]["per_target"][TARGET]
    assert 0 < test["rmse"] < 5 and set(test) >= {"rmse", "mae", "r2", "spearman"}
    model = load_model(model_dir)
    assert len(model.members) == 2 and model.targets == [TARGET]
    assert metrics["describe"] == model.describe()
    assert model.describe().startswith("Random forest") and "×2, random test RMSE" in model.describe()


def test_train_model_without_a_test_set_writes_no_metrics(tmp_path):
    out = train(tmp_path, "--sizes", "0.8", "0.2", "0")
    assert (out / "model.json").exists() and not (out / "metrics.json").exists()


@pytest.mark.parametrize("extra, message", [
    (["--hparam", "n_trees=3"], "fingerprint_rf has no hyperparameter n_trees"),
    (["--epochs", "3"], "fingerprint_rf does not train in epochs"),
    (["--hparam", "n_estimators=1"], "n_estimators must be between"),
    (["--sizes", "0.5", "0.2", "0.2"], "sum"),
])
def test_train_model_refuses_bad_options_by_name(tmp_path, extra, message):
    with pytest.raises(CommandError, match=message):
        train(tmp_path, *extra)
    assert not (tmp_path / "model").exists()


def test_train_model_names_a_bad_file(tmp_path):
    bad = tmp_path / "constant.csv"
    bad.write_text("smiles,y\nCCO,1.5\nCCC,1.5\nCCCC,1.5\n")
    with pytest.raises(CommandError, match="constant"):
        call_command("train_model", str(bad), "--smiles-column", "smiles", "--target-column", "y",
                     "--family", "fingerprint_rf", "--out", str(tmp_path / "m"))
    with pytest.raises(CommandError, match="no SMILES column 'smi'"):
        call_command("train_model", str(bad), "--smiles-column", "smi", "--target-column", "y",
                     "--family", "fingerprint_rf", "--out", str(tmp_path / "m"))


def predict_cli(model_dir, tmp_path, text=INPUT, name="input.csv", column="smiles") -> list[dict]:
    source, out = tmp_path / name, tmp_path / "pred.csv"
    source.write_text(text)
    args = ["--smiles-column", column] if column else []
    call_command("predict", str(model_dir), str(source), *args, "--out", str(out))
    return read_csv(out.read_text())


def test_predict_command_keeps_every_row_and_names_the_columns(model_dir, tmp_path):
    rows = predict_cli(model_dir, tmp_path)
    assert list(rows[0]) == ["id", "smiles", f"{TARGET} (input)", TARGET, f"{TARGET}_std", "error"]
    assert [r["id"] for r in rows] == ["ethanol", "broken", "phenol", "acid", "valence"]
    by_id = {r["id"]: r for r in rows}
    assert by_id["broken"][TARGET] == "" and "SMILES Parse Error" in by_id["broken"]["error"]
    assert by_id["valence"][TARGET] == "" and "valence" in by_id["valence"]["error"].lower()
    assert by_id["acid"][f"{TARGET} (input)"] == "x"      # the input's own columns, as they were
    model = load_model(model_dir)
    expected = model.predict(["CCO", "Oc1ccccc1", "CCCCCC(=O)O"])
    for i, key in enumerate(["ethanol", "phenol", "acid"]):
        assert by_id[key]["error"] == ""
        assert float(by_id[key][TARGET]) == pytest.approx(expected.mean[i, 0], abs=1e-12)
        assert float(by_id[key][f"{TARGET}_std"]) == pytest.approx(expected.std[i, 0], abs=1e-12)


def test_predict_command_reads_sdf_and_smiles_lists(model_dir, tmp_path):
    from rdkit import Chem

    sdf = io.StringIO()
    writer = Chem.SDWriter(sdf)
    for smiles, name in (("CCO", "ethanol"), ("c1ccccc1", "benzene")):
        mol = Chem.MolFromSmiles(smiles)
        mol.SetProp("_Name", name)
        mol.SetProp("batch", "B7")
        writer.write(mol)
    writer.close()
    rows = predict_cli(model_dir, tmp_path, sdf.getvalue(), "mols.sdf", column=None)
    assert [(r["name"], r["batch"]) for r in rows] == [("ethanol", "B7"), ("benzene", "B7")]
    assert all(r[TARGET] and not r["error"] for r in rows)
    rows = predict_cli(model_dir, tmp_path, "CCO ethanol\nC1CC broken\n", "mols.smi", column=None)
    assert [r["name"] for r in rows] == ["ethanol", "broken"] and rows[1]["error"]


def test_predict_command_reads_a_spreadsheets_csv(model_dir, tmp_path):
    # Byte-order mark, semicolons, CRLF line ends, a "SMILES" column: the datasets' own fixture.
    text = (Path(__file__).parent / "fixtures" / "training" / "rows.csv").read_bytes().decode("utf-8-sig")
    rows = predict_cli(model_dir, tmp_path, "\ufeff" + text, column="SMILES")
    assert list(rows[0])[:5] == ["name", "SMILES", "logS", "active", "set"]
    assert rows[0]["name"] == "ethanol" and rows[0]["logS"] == "-0.1" and rows[0][TARGET] and not rows[0]["error"]
    assert rows[1]["name"] == "broken ring" and "SMILES Parse Error" in rows[1]["error"]
    assert len(rows) == len([line for line in text.splitlines()[1:] if line.strip()])


def test_predict_command_errors(model_dir, tmp_path):
    with pytest.raises(CommandError, match="no SMILES column found"):
        predict_cli(model_dir, tmp_path, "name,x\na,1\n", column=None)
    with pytest.raises(CommandError, match="not a model folder"):
        predict_cli(tmp_path, tmp_path)


# ---------------------------------------------------------------- the registry and the job

@pytest.fixture
def registered(model_dir, user):
    call_command("import_model", str(model_dir), "--name", "esol", "--owner", user.username)
    return ModelVersion.objects.get(owner=user, name="esol")


def test_import_model_registers_versions_named_by_method_and_metric(registered, model_dir, user):
    model = load_model(model_dir)
    assert registered.version == 1 and registered.display_name == f"esol v1 ({model.describe()})"
    assert registered.targets == [{"name": TARGET, "task": "regression"}]
    assert registered.card["data"]["name"] == "esol_60.csv"
    call_command("import_model", str(model_dir), "--name", "esol", "--owner", user.username)
    assert list(ModelVersion.objects.filter(owner=user).values_list("version", flat=True).order_by("version")) \
        == [1, 2]


def test_import_model_refusals(model_dir, tmp_path, user):
    with pytest.raises(CommandError, match="no user 'nobody'"):
        call_command("import_model", str(model_dir), "--name", "x", "--owner", "nobody")
    with pytest.raises(CommandError, match="not a model folder"):
        call_command("import_model", str(tmp_path), "--name", "x", "--owner", user.username)
    with pytest.raises(CommandError, match="--shared needs --lab"):
        call_command("import_model", str(model_dir), "--name", "x", "--owner", user.username, "--shared")
    assert not ModelVersion.objects.exists()


def download(client, job, name) -> str:
    response = client.get(reverse("job_download", args=[job.pk, name]))
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()


@pytest.mark.django_db(transaction=True)
def test_the_job_predicts_as_the_command_line_does(registered, model_dir, alice_client, tmp_path):
    cli = predict_cli(model_dir, tmp_path)
    page = alice_client.get(reverse("training:predict_new") + f"?model={registered.pk}").content.decode()
    assert registered.display_name in page
    response = alice_client.post(reverse("training:predict_new"), {
        "model": registered.pk, "molecules_file": SimpleUploadedFile("input.csv", INPUT.encode()),
        "smiles_column": "smiles"})
    assert response.status_code == 302, response.content.decode()[-2000:]
    job = Job.objects.get(kind="training.predict")
    assert job.input_facts["n_molecules"] == 5 and job.input_facts["model"] == registered.display_name
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message

    rows = read_csv(download(alice_client, job, "predictions.csv"))
    assert len(rows) == len(cli) == 5
    for ours, theirs in zip(rows, cli):
        # The command's columns, under the same names, with the same values.
        for column in theirs:
            assert ours[column] == theirs[column], column
        if not ours["error"]:
            low, high, value = float(ours[f"{TARGET}_low"]), float(ours[f"{TARGET}_high"]), float(ours[TARGET])
            assert low < value < high
            assert 0 <= float(ours["max_tanimoto_to_training_set"]) <= 1
            assert ours["in_domain"] == ("yes" if float(ours["max_tanimoto_to_training_set"]) >= AD_THRESHOLD
                                         else "no")

    r = job.result
    assert r["n_predicted"] == 3 and r["n_errors"] == 2 and r["threshold"] == AD_THRESHOLD
    assert r["model"]["display_name"] == registered.display_name and r["model"]["training_data"].startswith(
        "esol_60.csv (sha256 ")
    assert r["targets"][0]["interval"] > 0 and "split-conformal" in r["interval_method"]
    first = r["rows"][0]
    assert first["name"] == "ethanol" and first["smiles"] == "CCO"
    assert first["predictions"][0]["value"] == pytest.approx(float(cli[0][TARGET]), abs=1e-12)
    assert first["predictions"][0]["std"] == pytest.approx(float(cli[0][f"{TARGET}_std"]), abs=1e-12)

    page = alice_client.get(job.get_absolute_url()).content.decode()
    # Every number is named with the model, its method, training data and test metric.
    for text in (registered.display_name, "esol_60.csv", "split-conformal", "Tanimoto", f"{AD_THRESHOLD}",
                 "Invalid rows", "SMILES Parse Error", "sd of the 2 members",
                 reverse("training:predict_new") + f"?model={registered.pk}"):
        assert text in page, text


@pytest.mark.django_db(transaction=True)
def test_api_predicts_smiles_and_returns_json_and_csv(registered, api):
    response = api.post(f"/api/v1/training/models/{registered.pk}/predict",
                        {"smiles": ["CCO", "C1CC", "c1ccccc1"]}, content_type="application/json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    run_job_now(job)
    body = api.get(f"/api/v1/training/predictions/{job.pk}").json()
    assert body["result"]["n_predicted"] == 2 and body["result"]["errors"][0]["row"] == 2
    csv_response = api.get(f"/api/v1/training/predictions/{job.pk}", {"format": "csv"})
    rows = read_csv(b"".join(csv_response.streaming_content).decode())
    assert [r["smiles"] for r in rows] == ["CCO", "C1CC", "c1ccccc1"] and rows[1]["error"]
    schema = api.get("/api/v1/openapi.json").json()
    assert "/api/v1/training/models/{model_id}/predict" in schema["paths"]


@pytest.mark.django_db
def test_another_users_model_is_answered_as_a_missing_one(registered, client, other_user, no_broker):
    from accounts.models import ApiToken

    _, raw = ApiToken.issue(other_user, "tests")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    theirs = client.post(f"/api/v1/training/models/{registered.pk}/predict", {"smiles": ["CCO"]},
                         content_type="application/json", **headers)
    missing = client.post("/api/v1/training/models/999999/predict", {"smiles": ["CCO"]},
                          content_type="application/json", **headers)
    assert theirs.status_code == missing.status_code == 404
    generic = client.post("/api/v1/jobs", {"kind": "training.predict", "params": {
        "model_id": registered.pk, "smiles": ["CCO"]}}, content_type="application/json", **headers)
    assert generic.status_code == 400 and generic.json() == {"error": f"No model with id {registered.pk}.",
                                                             "field": "model_id"}
    client.force_login(other_user)
    page = client.get(reverse("training:predict_new")).content.decode()
    assert registered.display_name not in page and "no registered model" in page
    refused = client.post(reverse("training:predict_new"), {"model": registered.pk, "molecules": "CCO"})
    assert refused.status_code == 400 and not Job.objects.exists()


@pytest.mark.django_db
def test_clean_params_names_the_field(registered):
    from workers import kinds
    from workers.errors import ParamsError

    kind = kinds.get("training.predict")
    for params, field, text in [
        ({"smiles": ["CCO"]}, "model_id", "Give the model id"),
        ({"model_id": 999999, "smiles": ["CCO"]}, "model_id", "No model with id 999999"),
        ({"model_id": registered.pk}, "molecules", "Give molecules"),
        ({"model_id": registered.pk, "molecules": "name,x\na,1\n", "format": "csv"}, "molecules", "SMILES column"),
    ]:
        with pytest.raises(ParamsError) as caught:
            kind.clean(params)
        assert caught.value.field == field and text in caught.value.message
    semicolons = kind.clean({"model_id": registered.pk, "molecules": "\ufeffname;SMILES\r\nethanol;CCO\r\n",
                             "format": "csv", "smiles_column": "SMILES"})
    assert semicolons.params["molecules"] == "name,SMILES\nethanol,CCO\n" and semicolons.facts["n_molecules"] == 1
    assert kind.clean(semicolons.params).params == semicolons.params
    cleaned = kind.clean({"model_id": str(registered.pk), "smiles": ["CCO", "C1CC"]})
    assert cleaned.params["model_id"] == registered.pk and cleaned.facts["n_molecules"] == 2
    assert kind.clean(cleaned.params).params == cleaned.params


@pytest.mark.django_db
def test_a_model_shared_with_a_lab_is_usable_by_its_members_only(model_dir, client, user, make_user, no_broker):
    from accounts.models import ApiToken, Lab, Membership

    lab = Lab.objects.create(name="Solubility", slug="solubility")
    colleague, stranger = make_user("carol@example.org"), make_user("dave@example.org")
    for member in (user, colleague):
        Membership.objects.create(lab=lab, user=member)
    with pytest.raises(CommandError, match="not a member of a lab 'solubility'"):
        call_command("import_model", str(model_dir), "--name", "esol", "--owner", stranger.username,
                     "--lab", "solubility", "--shared")
    call_command("import_model", str(model_dir), "--name", "esol", "--owner", user.username,
                 "--lab", "solubility", "--shared")
    model = ModelVersion.objects.get()
    assert model.lab == lab and model.shared

    def submit(who):
        _, raw = ApiToken.issue(who, "tests")
        return client.post(f"/api/v1/training/models/{model.pk}/predict", {"smiles": ["CCO"]},
                           content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert submit(colleague).status_code == 202
    assert submit(stranger).status_code == 404
    assert list(Job.objects.values_list("owner", flat=True)) == [colleague.pk]
    client.force_login(colleague)
    assert model.display_name in client.get(reverse("training:predict_new")).content.decode()


TOX21 = Path(__file__).parent / "fixtures" / "training_pipeline" / "tox21_150.csv"


@pytest.mark.django_db(transaction=True)
def test_a_single_multi_task_classifier_has_probabilities_and_no_std_or_interval(tmp_path, user, alice_client):
    from workers import lifecycle

    out = tmp_path / "tox"
    call_command("train_model", str(TOX21), "--smiles-column", "smiles", "--target-column", "NR-AhR",
                 "--target-column", "SR-ARE", "--family", "fingerprint_rf", "--split", "scaffold", "--out", str(out),
                 *TINY)
    source = tmp_path / "new.csv"
    source.write_text("mol_id,smiles\nA,CCOc1ccc2nc(S(N)(=O)=O)sc2c1\nB,C1CC\n")
    call_command("predict", str(out), str(source), "--smiles-column", "smiles", "--out", str(tmp_path / "p.csv"))
    rows = read_csv((tmp_path / "p.csv").read_text())
    # One member: no uncertainty, so no _std columns.
    assert list(rows[0]) == ["mol_id", "smiles", "NR-AhR", "SR-ARE", "error"]
    assert all(0 <= float(rows[0][t]) <= 1 for t in ("NR-AhR", "SR-ARE")) and rows[1]["error"]

    call_command("import_model", str(out), "--name", "tox", "--owner", user.username)
    job = lifecycle.submit(user, "training.predict", {"model_id": ModelVersion.objects.get().pk,
                                                      "molecules": source.read_text(), "format": "csv"})
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    r = job.result
    assert [t["interval"] for t in r["targets"]] == [None, None] and not r["has_std"] and r["uncertainty"] is None
    assert r["rows"][0]["predictions"][1]["value"] == pytest.approx(float(rows[0]["SR-ARE"]), abs=1e-12)
    files = read_csv(download(alice_client, job, "predictions.csv"))
    assert list(files[0]) == ["mol_id", "smiles", "NR-AhR", "SR-ARE", "max_tanimoto_to_training_set", "in_domain",
                              "error"]
    page = alice_client.get(job.get_absolute_url()).content.decode()
    assert "SR-ARE (P(1))" in page and "± sd" not in page


@pytest.mark.django_db(transaction=True)
def test_a_model_trained_in_the_portal_predicts_as_its_unpacked_bundle_does(user, tmp_path):
    """The whole path: a training.train job, its model registered, a predict job; the
    command line on the same bundle, unpacked, gives the same numbers."""
    from tests.training_fixtures import FOREST, esol_csv, make_dataset
    from training.compute.bundle import unpack
    from training.registry import register_run
    from training.runs import submit_run
    from workers import lifecycle

    dataset = make_dataset(user, esol_csv(40), {"logS": "regression"})
    train = submit_run(user, {"dataset_id": dataset.pk, "family": "fingerprint_rf", "hparams": FOREST,
                              "ensemble": 2})
    assert run_job_now(train) == Status.SUCCEEDED, Job.objects.get(pk=train.pk).error_detail
    train.refresh_from_db()
    model = register_run(train.training_run, user, "solubility")
    text = "smiles,name\nCCO,ethanol\nC1CC,broken\nc1ccccc1O,phenol\n"
    job = lifecycle.submit(user, "training.predict", {"model_id": model.pk, "molecules": text, "format": "csv"})
    assert run_job_now(job) == Status.SUCCEEDED, Job.objects.get(pk=job.pk).error_detail
    job.refresh_from_db()
    assert job.result["model"]["training_data"] == f"esol-mini v1 (sha256 {dataset.content_hash[:12]})"
    assert job.result["model"]["display_name"] == model.display_name
    portal = read_csv(job.files.named("predictions.csv").file.read().decode())

    with model.bundle.open("rb") as fh:
        folder = unpack(fh.read(), tmp_path / "bundle")
    cli = predict_cli(folder, tmp_path, text, column="smiles")
    assert [r["logS"] for r in portal] == [r["logS"] for r in cli] and cli[1]["logS"] == "" and cli[0]["logS"]
    assert [r["logS_std"] for r in portal] == [r["logS_std"] for r in cli]
