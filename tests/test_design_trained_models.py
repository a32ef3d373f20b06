"""A registered model inside design: a property of property prediction and a
campaign objective, named with its display name (method and test metric) and
its training data. A tiny fingerprint forest is trained once with the real
pipeline, packed and registered as a ModelVersion; jobs run in-process as a
worker runs them."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from design.models import Campaign, CampaignRun, Target
from tests.conftest import run_job_now
from workers.models import Job, Status

TARGET = "logS"
MOLECULES = ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "CCCCCCCC", "Clc1ccc(Cl)cc1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(bundle bytes, the loaded TrainedModel): 40 ESOL molecules, two members of ten trees."""
    from training.compute.builtin import get_builtin
    from training.compute.bundle import load_model, pack, unpack
    from training.compute.pipeline import RunSpec, train_model
    from training.compute.splits import make_split
    from training.compute.table import Table

    esol = get_builtin("esol").load().subset(range(40))
    table = Table(smiles=esol.smiles, y=esol.y, targets=[TARGET], tasks=esol.tasks, rows=esol.rows)
    spec = RunSpec("fingerprint_rf", {"n_estimators": 10, "fp_size": 256, "descriptors": False}, ensemble=2,
                   split=make_split(table, "random", (0.7, 0.15, 0.15), seed=0),
                   data={"name": "esol-40", "version": 1, "hash": "ab" * 32})
    root = tmp_path_factory.mktemp("model")
    model = train_model(table, spec, None, root / "work")
    model.save(root / "model")
    data = pack(root / "model")
    unpack(data, root / "check")
    return data, load_model(root / "check")


def register(owner, trained, name="solubility-esol"):
    """The registry's own path, as a finished run's "register" button takes it."""
    from training.registry import register_bundle

    data, model = trained
    return register_bundle(owner, name, data, model.card, model.describe())


def key(record, target=TARGET) -> str:
    return f"model:{record.pk}:{target}"


def canonical(smiles):
    from rdkit import Chem

    return [Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in smiles]


def download(client, job, name) -> str:
    response = client.get(reverse("job_download", args=[job.pk, name]))
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()


@pytest.fixture
def model(user, trained):
    register(user, trained)  # v1, so the one used is v2 as in the issue's example
    return register(user, trained)


@pytest.fixture
def campaign(user):
    target = Target(owner=user, name="T", format="pdb", chains=["A"], n_atoms=1)
    target.structure.save("t.pdb", ContentFile(b"END\n"), save=False)
    target.save()
    return Campaign.objects.create(owner=user, name="Soluble leads", target=target)


# ---------------------------------------------------------------- who sees the model

@pytest.mark.django_db
def test_a_model_is_offered_to_its_owner_only_and_refused_to_others_as_missing(
        client, alice_client, user, other_user, model, campaign, no_broker):
    assert model.display_name.startswith("solubility-esol v2 (Random forest") and "test RMSE" in model.display_name
    page = alice_client.get(reverse("design:properties_new")).content.decode()
    assert key(model) in page and model.display_name in page
    run_page = alice_client.get(reverse("design:run_new", args=[campaign.pk])).content.decode()
    assert run_page.count(key(model)) >= 2  # an objective choice and a scatter axis
    listed = alice_client.get("/api/v1/design/properties/available").json()
    mine = [p for p in listed if p["key"] == key(model)]
    assert mine and mine[0]["objective"] and model.display_name in mine[0]["label"]
    assert "esol-40 v1" in mine[0]["method"]  # the training data is named with the number
    assert any(p["key"] == "qed" for p in listed)

    client.force_login(other_user)
    assert key(model) not in client.get(reverse("design:properties_new")).content.decode()
    assert all(p["key"] != key(model) for p in client.get("/api/v1/design/properties/available").json())
    # Posting the key anyway: the API says what a missing id gets, the form refuses the choice.
    answers = []
    for pk in (model.pk, model.pk + 1000):
        response = client.post("/api/v1/design/properties", {"smiles": ["CCO"],
                               "model_properties": [f"model:{pk}:{TARGET}"]}, content_type="application/json")
        assert response.status_code == 400
        answers.append(response.json())
    assert answers[0]["error"] == f"No model with id {model.pk}." and answers[0]["field"] == "model_properties[0]"
    assert answers[1]["error"] == f"No model with id {model.pk + 1000}."
    response = client.post(reverse("design:properties_new"), {"molecules": "CCO", "model_properties": [key(model)]})
    assert response.status_code == 400 and "model_properties" in response.context["form"].errors
    own = Campaign.objects.create(owner=other_user, name="bob's", target=campaign.target)
    response = client.post(f"/api/v1/design/campaigns/{own.pk}/runs",
                           {"objectives": [{"property": key(model)}], "generations": 1},
                           content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"error": f"No model with id {model.pk}.", "field": "objectives[0].property"}
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_model_keys_are_checked_for_format_and_target(api, model, campaign, no_broker):
    cases = [("model:x:logS", "is not a model property"), (f"model:{model.pk}:pIC50", "has no target “pIC50”"),
             ("model:", "is not a model property")]
    for value, message in cases:
        response = api.post("/api/v1/design/properties", {"smiles": ["CCO"], "model_properties": [value]},
                            content_type="application/json")
        assert response.status_code == 400 and message in response.json()["error"], value
    response = api.post(f"/api/v1/design/campaigns/{campaign.pk}/runs",
                        {"objectives": [{"property": f"model:{model.pk}:pIC50"}]}, content_type="application/json")
    assert response.status_code == 400 and "has no target" in response.json()["error"]
    # Cleaning is idempotent with a model key, as a rerun needs.
    from workers import kinds

    kind = kinds.get("design.properties")
    once = kind.clean({"smiles": ["CCO"], "model_properties": [key(model), key(model)]})
    assert once.params["model_properties"] == [key(model)]
    assert kind.clean(once.params).params == once.params
    assert once.facts["model_labels"] == {key(model): f"{model.display_name} · {TARGET}"}
    assert model.display_name in kind.summarize_params(once.params, once.facts)


# ---------------------------------------------------------------- property prediction

@pytest.mark.django_db(transaction=True)
def test_a_registered_model_is_a_design_property(alice_client, user, model, trained):
    pasted = "\n".join(f"{s} m{i}" for i, s in enumerate(MOLECULES)) + "\nC1CC broken\n"
    response = alice_client.post(reverse("design:properties_new"), {"molecules": pasted,
                                                                    "model_properties": [key(model)]})
    assert response.status_code == 302, response.context["form"].errors
    job = Job.objects.get()
    assert model.display_name in job.title
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    r = job.result
    # The invalid line keeps its row error; the others are scored and predicted.
    assert r["n_valid"] == 5 and r["n_invalid"] == 1 and "broken" in r["errors"][0]["name"]
    expected = trained[1].predict(canonical(MOLECULES))
    k = key(model)
    rows = {row["smiles"]: row["values"] for row in r["rows"]}
    for i, smiles in enumerate(canonical(MOLECULES)):
        values = rows[smiles]
        assert values[k] == pytest.approx(float(expected.mean[i][0]), rel=1e-9)
        assert values[f"{k}:std"] == pytest.approx(float(expected.std[i][0]), rel=1e-9, abs=1e-12)
        assert values[f"{k}:in_domain"] is bool(expected.in_domain[i])
        assert isinstance(values["qed"], float)  # the built-in properties are still there
    column = next(c for c in r["columns"] if c["key"] == k)
    assert column["label"] == f"{model.display_name} · {TARGET}"
    assert "esol-40 v1" in column["method"] and "Random forest" in model.display_name
    assert r["models"][0]["display_name"] == model.display_name and r["models"][0]["ad_threshold"] == 0.3
    phases = [p["name"] for p in job.attempt_log.get().phases]
    assert "loading models" in phases
    page = alice_client.get(job.get_absolute_url()).content.decode()
    assert page.count(model.display_name) >= 3 and "trained on esol-40 v1" in page
    table = list(csv.reader(io.StringIO(download(alice_client, job, "properties.csv"))))
    header = table[0]
    assert {k, f"{k}:std", f"{k}:in_domain"} <= set(header)
    by_smiles = {row[header.index("smiles")]: row for row in table[1:]}
    first = canonical(MOLECULES)[0]
    assert float(by_smiles[first][header.index(k)]) == pytest.approx(float(expected.mean[0][0]))
    assert f">  <{k}>" in download(alice_client, job, "properties.sdf")


@pytest.mark.django_db(transaction=True)
def test_a_model_the_owner_lost_is_not_used_at_run_time(alice_client, user, other_user, model):
    response = alice_client.post(reverse("design:properties_new"), {"molecules": "CCO",
                                                                    "model_properties": [key(model)]})
    assert response.status_code == 302
    job = Job.objects.get()
    type(model).objects.filter(pk=model.pk).update(owner=other_user)
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.FAILED
    assert job.error_message == f"The model (id {model.pk}) does not exist or is not yours to use."


@pytest.mark.django_db(transaction=True)
def test_a_bundle_that_does_not_match_its_checksum_is_refused(alice_client, user, model):
    type(model).objects.filter(pk=model.pk).update(bundle_sha256="0" * 64)
    alice_client.post(reverse("design:properties_new"), {"molecules": "CCO", "model_properties": [key(model)]})
    job = Job.objects.get()
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.FAILED and "does not match its recorded sha256" in job.error_message


# ---------------------------------------------------------------- campaign objective

@pytest.mark.django_db(transaction=True)
def test_a_registered_model_is_a_campaign_objective(alice_client, user, model, trained, campaign):
    k = key(model)
    response = alice_client.post(reverse("design:run_new", args=[campaign.pk]), {
        "mode": "weighted", "population_size": 6, "generations": 2, "random_seed": 3, "brics_seeds": 0,
        "seeds": "c1ccccc1O\nCCOc1ccccc1", "no_pains": "on", "mw_max": 400,
        "objective_1": k, "direction_1": "max", "weight_1": 1,
        "objective_2": "qed", "direction_2": "max", "weight_2": 0.5,
        "objective_3": "", "direction_3": "max", "weight_3": 1,
        "dock_exhaustiveness": 4, "max_dockings": 10, "dock_weight": 1, "scatter_x": k, "scatter_y": "qed"})
    assert response.status_code == 302, response.context["form"].errors
    job = Job.objects.get(kind="design.campaign_run")
    assert model.display_name in job.title
    live = alice_client.get(reverse("design:run_detail", args=[job.pk])).content.decode()
    assert "run-objectives" in live and f"{model.display_name} · {TARGET}" in live
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    r = job.result
    assert [h["generation"] for h in r["history"]] == [0, 1, 2]
    assert all(k in h["best"] for h in r["history"])
    population = r["population"]
    assert len(population) == 6
    # The recorded scores are the bundle's own predictions for those molecules.
    expected = trained[1].predict([m["smiles"] for m in population])
    for i, m in enumerate(population):
        assert m["values"][k] == pytest.approx(float(expected.mean[i][0]), rel=1e-9)
        assert m["properties"][k] == m["values"][k]
        assert m["properties"][f"{k}:in_domain"] is bool(expected.in_domain[i])
        assert m["score"] == pytest.approx(m["values"][k] + 0.5 * m["values"]["qed"])
    assert population[0]["score"] == max(m["score"] for m in population)
    objective = r["objectives"][0]
    assert objective["label"] == f"{model.display_name} · {TARGET}" and "esol-40 v1" in objective["method"]
    page = alice_client.get(reverse("design:run_detail", args=[job.pk])).content.decode()
    assert page.count(model.display_name) >= 3
    outside = sum(1 for m in population if m["properties"][f"{k}:in_domain"] is False)
    assert page.count("out-of-domain") == outside and (not outside or "Tanimoto" in page)
    history = alice_client.get(campaign.get_absolute_url()).content.decode()
    assert model.display_name in history
    table = list(csv.reader(io.StringIO(download(alice_client, job, "population.csv"))))
    assert k in table[0] and f"{k}:std" in table[0]
    # Compared with a run on QED alone, the differing objective is named by the model.
    other = Job.objects.create(kind="design.campaign_run", owner=user, status=Status.SUCCEEDED, result={},
                               params={**job.params, "objectives": [{"property": "qed", "direction": "max",
                                                                     "weight": 1.0}]})
    CampaignRun.objects.create(campaign=campaign, job=other)
    page = alice_client.get(reverse("design:compare"), {"a": job.pk, "b": other.pk}).content.decode()
    assert f"{model.display_name} · {TARGET}" in page and k not in page.split("differs", 1)[1].split("</tr>")[0]


def test_a_batch_objective_scores_each_generation_in_one_call():
    from rdkit.Chem import Crippen

    from design.compute.generate import Objective, property_objective, run_ga

    calls = {"batch": [], "one": 0}

    def one(mol):
        calls["one"] += 1
        return Crippen.MolLogP(mol)

    def batch(mols):
        calls["batch"].append(len(mols))
        return [Crippen.MolLogP(m) for m in mols]

    options = dict(population_size=8, generations=3, random_seed=4)
    seeds = ["CCOc1ccccc1C(=O)N", "c1ccc2[nH]ccc2c1"]
    batched = run_ga(seeds, [Objective("logp", one, batch=batch), property_objective("qed")], **options)
    assert calls["one"] == 0 and len(calls["batch"]) == 4  # generation 0 and three more
    assert sum(calls["batch"]) == batched.evaluated
    plain = run_ga(seeds, [Objective("logp", one), property_objective("qed")], **options)
    assert [c.as_dict() for c in plain.population] == [c.as_dict() for c in batched.population]

    # A batch that fails as a whole falls back to one molecule at a time.
    def broken(mols):
        raise RuntimeError("model unavailable")

    calls["one"] = 0
    fallback = run_ga(seeds, [Objective("logp", one, batch=broken), property_objective("qed")], **options)
    assert calls["one"] == fallback.evaluated
    assert [c.smiles for c in fallback.population] == [c.smiles for c in plain.population]
    assert not any(math.isnan(c.values["logp"]) for c in fallback.population)
    assert np.isfinite([c.score for c in fallback.population]).all()


@pytest.fixture(scope="module")
def trained_dmpnn(tmp_path_factory):
    """A one-member D-MPNN (two epochs) on 40 BBBP molecules: a classifier with no ensemble std."""
    from training.compute.builtin import get_builtin
    from training.compute.bundle import pack
    from training.compute.pipeline import RunSpec, train_model
    from training.compute.splits import make_split

    table = get_builtin("bbbp").load()
    table = table.subset(list(range(20)) + list(range(len(table) - 20, len(table))))
    spec = RunSpec("dmpnn", {"max_epochs": 2, "message_hidden_dim": 100, "ffn_hidden_dim": 100, "batch_size": 16},
                   split=make_split(table, "random", (0.7, 0.15, 0.15), seed=0), data={"name": "bbbp-40"})
    root = tmp_path_factory.mktemp("dmpnn")
    model = train_model(table, spec, None, root / "work")
    model.save(root / "model")
    return pack(root / "model"), model


@pytest.mark.django_db(transaction=True)
def test_a_single_torch_classifier_is_a_property_without_an_ensemble_std(alice_client, user, trained_dmpnn):
    data, trained = trained_dmpnn
    record = register(user, trained_dmpnn, name="bbbp-dmpnn")
    target = trained.targets[0]
    k = key(record, target)
    response = alice_client.post(reverse("design:properties_new"), {"molecules": "\n".join(MOLECULES),
                                                                    "model_properties": [k]})
    assert response.status_code == 302, response.context["form"].errors
    job = Job.objects.get()
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    expected = trained.predict(canonical(MOLECULES))
    assert expected.std is None
    values = {row["smiles"]: row["values"] for row in job.result["rows"]}
    for i, smiles in enumerate(canonical(MOLECULES)):
        assert values[smiles][k] == pytest.approx(float(expected.mean[i][0]), rel=1e-5)
        assert 0 <= values[smiles][k] <= 1 and values[smiles][f"{k}:std"] is None
    column = next(c for c in job.result["columns"] if c["key"] == k)
    assert column["unit"] == "probability" and "classification" in column["method"]
    assert "D-MPNN" in column["label"]


@pytest.mark.django_db
def test_a_model_shared_with_a_lab_is_a_property_for_its_members(client, user, other_user, trained, no_broker):
    from accounts.models import Lab, Membership
    from training.registry import register_bundle

    lab = Lab.objects.create(name="Solubility group", slug="solubility-group")
    Membership.objects.create(lab=lab, user=user, role=Membership.Role.OWNER)
    Membership.objects.create(lab=lab, user=other_user)
    data, model = trained
    shared = register_bundle(user, "shared-esol", data, model.card, model.describe(), lab=lab, shared=True)
    private = register_bundle(user, "private-esol", data, model.card, model.describe(), lab=lab, shared=False)
    client.force_login(other_user)
    page = client.get(reverse("design:properties_new")).content.decode()
    assert key(shared) in page and key(private) not in page
    response = client.post("/api/v1/design/properties", {"smiles": ["CCO"], "model_properties": [key(shared)]},
                           content_type="application/json")
    assert response.status_code == 202
    response = client.post("/api/v1/design/properties", {"smiles": ["CCO"], "model_properties": [key(private)]},
                           content_type="application/json")
    assert response.status_code == 400 and response.json()["error"] == f"No model with id {private.pk}."


def test_model_predictions_come_in_chunks_and_stop_at_the_deadline(trained, monkeypatch):
    import time
    from types import SimpleNamespace

    from design import model_properties as mp

    model = trained[1]
    loaded = mp.LoadedModel(SimpleNamespace(display_name="solubility-esol v2"), model, list(model.targets))
    monkeypatch.setattr(mp, "PREDICT_CHUNK", 2)
    seen = []
    result = mp.predict(loaded, canonical(MOLECULES), [TARGET], progress=lambda done, total: seen.append(done))
    assert seen == [2, 4, 5] and not result["errors"]
    expected = model.predict(canonical(MOLECULES))
    assert result["targets"][TARGET]["value"] == pytest.approx([float(v) for v in expected.mean[:, 0]])
    late = mp.predict(loaded, canonical(MOLECULES), [TARGET], deadline=time.monotonic() - 1)
    assert sorted(late["errors"]) == [0, 1, 2, 3, 4]
    assert late["errors"][0] == "not predicted by solubility-esol v2: the job's time budget ran out"
    assert late["targets"][TARGET]["value"] == [None] * 5
