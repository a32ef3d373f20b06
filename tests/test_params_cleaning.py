"""A kind's clean_params is the one validator of its input: cleaning its own
answer changes nothing (so a rerun is the same job), the facts it learns
stay out of the parameters, a submission is cleaned once, and a ParamsError
from the submission is shown next to the form field it names."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from design.models import BindingSite, Campaign, Target
from workers import kinds
from workers.models import Job

pytestmark = pytest.mark.django_db
PROTEIN = Path(__file__).parent / "fixtures" / "design" / "1ia1_protein.pdb"
SEQ = "MKTAYIAKQRQISFVKSHFSRQ"


@pytest.fixture
def design_objects(user):
    target = Target(owner=user, name="DHFR", format="pdb")
    target.structure.save("1ia1.pdb", ContentFile(PROTEIN.read_bytes()), save=False)
    target.save()
    site = BindingSite.objects.create(target=target, name="box", method="box",
                                      center=[1.0, 2.0, 3.0], size=[20.0, 20.0, 20.0])
    campaign = Campaign.objects.create(owner=user, name="leads", target=target, site=site)
    return target, site, campaign


def training_dataset(owner):
    from tests.training_fixtures import esol_csv, make_dataset
    from training.models import Dataset

    return (Dataset.objects.filter(owner=owner, name="esol-mini").first()
            or make_dataset(owner, esol_csv(30), {"logS": None, "mw": None}, keep=("set",)))


def examples(design_objects) -> dict[str, list[dict]]:
    """Submitted parameters per kind, as a form or an API client sends them:
    defaults left out, bad records mixed in, strings for numbers."""
    target, site, campaign = design_objects
    dataset = training_dataset(target.owner)
    stored = {"source": "stored", "input_id": "00000000-0000-4000-8000-000000000000", "name": "a.jsonl.gz"}
    return {
        "analysis.protparam": [
            {"fasta": f">p1 first protein\n{SEQ.lower()}*\n>bad\nMK1TAYIAKQ\n>dna\nACGTACGTACGTAC\n",
             "source": "paste", "window": "9"},
            {"sequences": [{"id": "a", "sequence": SEQ}, {"sequence": SEQ}]},
            {"example": "uniref50"},
        ],
        "analysis.esm_embeddings": [
            {"model": "esm2_t6_8M_UR50D", "fasta": f"\ufeff>a  desc  here \r\n{SEQ}\r\n>bad\nMKTJ\n>a\n{SEQ}\n",
             "repr_layers": "0, -1, 6", "include": "contacts,mean", "skip_invalid": True,
             "long_sequences": "window"},
            {"sequences": [{"id": "x", "sequence": SEQ}]},
            {"example": "uniref50", "include": ["per_tok", "mean", "per_tok"]},
        ],
        "analysis.atomica_embeddings": [
            {"items": [{"source": "url", "url": "https://example.org/a.jsonl.gz"}, stored],
             "importance": 1, "origin": "api"},
        ],
        "design.properties": [
            {"molecules": "smiles,name\nCCO,ethanol\nC1CC,broken\n", "smiles_column": None},
            {"smiles": ["CCO", "c1ccccc1"]},
        ],
        "design.docking": [
            {"target_id": str(target.pk), "site_id": site.pk, "smiles": "CCO", "exhaustiveness": "2"},
            {"target_id": target.pk, "center": [1, 2, 3], "size": 22,
             "ligands": ["CCO", {"name": "benzene", "smiles": " c1ccccc1 "}, "C1CC"]},
            {"target_id": target.pk, "site_id": site.pk, "ligands_sdf": "\n  RDKit\n\n  0  0  0  0  0  0  0  0"
             "  0  0999 V2000\nM  END\n$$$$\n", "molecules": "not read: ligands_sdf comes first"},
        ],
        "design.campaign_run": [
            {"campaign_id": campaign.pk, "seeds": "CCO ethanol\n\nc1ccccc1\n", "generations": "3",
             "filters": {"mw_min": "", "mw_max": 500}, "docking": {"enabled": True, "max_dockings": "60"},
             "scatter": {"x": ""}},
            {"campaign_id": str(campaign.pk)},
        ],
        "training.train": [
            {"dataset_id": str(dataset.pk)},
            {"dataset_id": dataset.pk, "targets": "mw", "family": "dmpnn", "hparams": {"max_epochs": "3"},
             "split": {"method": "scaffold", "sizes": "0.6 0.2 0.2", "seed": "7"}, "ensemble": "2", "seed": 3},
            {"dataset_id": dataset.pk, "family": "attentivefp", "folds": "3", "split": {"method": "random"}},
            {"dataset_id": dataset.pk, "split": {"method": "column", "column": "set", "sizes": None}},
        ],
        "test.sleep": [{"seconds": "0.5"}, {"seconds": 0, "steps": 1, "marker": "/tmp/m"}],
        "test.sleep_gpu": [{"seconds": "0.5"}],
    }


def test_every_kind_has_an_example(design_objects):
    # A new kind gets examples here, so the test below covers it too.
    assert {k.name for k in kinds.all_kinds()} <= set(examples(design_objects))


def test_cleaning_canonical_params_changes_nothing(design_objects):
    for kind in kinds.all_kinds():
        for submitted in examples(design_objects)[kind.name]:
            once = kind.clean(submitted)
            # Jobs store JSON, so what comes back from the database is cleaned on a rerun.
            stored = json.loads(json.dumps(once.params))
            assert stored == once.params, kind.name
            twice = kind.clean(stored)
            assert twice.params == once.params, (kind.name, submitted)
            json.dumps(once.facts)  # facts are stored as JSON too


def test_facts_stay_out_of_the_params(design_objects):
    by_kind = examples(design_objects)
    esm = kinds.get("analysis.esm_embeddings").clean(by_kind["analysis.esm_embeddings"][0])
    assert [e["message"][:16] for e in esm.facts["rejected"]] == ["Record 2 (bad): ", "Record 3 (a): th"]
    assert esm.facts["n_records"] == 1 and "rejected" not in esm.params and "n_records" not in esm.params
    assert esm.params["fasta"] == f">a desc  here\n{SEQ}\n"
    protparam = kinds.get("analysis.protparam").clean(by_kind["analysis.protparam"][0])
    assert protparam.facts["n_records"] == 1 and protparam.facts["n_rejected"] == 2
    assert protparam.params == {"fasta": f">p1 first protein\n{SEQ}\n", "source": "paste", "window": 9}
    properties = kinds.get("design.properties").clean(by_kind["design.properties"][0])
    assert properties.facts == {"n_molecules": 2}  # RDKit judges the rows in the worker
    assert set(properties.params) == {"molecules", "format", "filename"}
    docking = kinds.get("design.docking").clean(by_kind["design.docking"][1])
    assert [l["name"] for l in docking.params["ligands"]] == ["ligand1", "benzene"]
    assert docking.facts["n_ligands"] == 3 and docking.facts["invalid_ligands"][0]["row"] == 3
    assert "invalid_ligands" not in docking.params


def test_a_form_submission_is_cleaned_once(alice_client, monkeypatch, no_broker):
    calls = []
    kind = kinds.get("analysis.esm_embeddings")

    def counting(params):
        calls.append(params)
        return kind.clean_params(params)

    monkeypatch.setitem(kinds._REGISTRY, kind.name, dataclasses.replace(kind, clean_params=counting))
    response = alice_client.post(reverse("analysis:esm_new"), {
        "model": "esm2_t6_8M_UR50D", "sequences": f">a\n{SEQ}\n>b\nMK1\n", "repr_layers": "-1",
        "include": ["mean"], "long_sequences": "truncate"})
    assert response.status_code == 302
    assert len(calls) == 1 and calls[0]["fasta"] == f">a\n{SEQ}\n>b\nMK1"  # the raw input
    assert Job.objects.get().input_facts["n_rejected"] == 1


@pytest.mark.parametrize("url_name, data, field, text", [
    ("analysis:new", {"sequences": ">dna\nACGTACGTACGTACGTACGT\n", "window": 9}, "sequences", "DNA"),
    ("analysis:new", {"fasta_file": "only_bad.fasta", "window": 9}, "fasta_file", "Record 1 (x)"),
    ("analysis:esm_new", {"fasta_file": "only_bad.fasta", "model": "esm2_t6_8M_UR50D", "repr_layers": "-1",
                          "include": ["mean"], "long_sequences": "truncate"}, "fasta_file", "Record 1 (x)"),
    ("analysis:esm_new", {"sequences": f">a\n{SEQ}", "model": "esm2_t6_8M_UR50D", "repr_layers": "1.5",
                          "include": ["mean"], "long_sequences": "truncate"}, "repr_layers", "“1.5”"),
    ("analysis:atomica_new", {"urls": "ftp://example.org/a.jsonl.gz", "mode": "default"}, "urls", "http"),
    ("design:properties_new", {"molecules": "smiles,name\n"}, "molecules", "No molecule"),
    ("design:properties_new", {"molecules": "name,x\na,1\n", "smiles_column": ""}, "smiles_column", "column"),
])
def test_params_errors_land_on_the_field_they_name(alice_client, url_name, data, field, text):
    data = dict(data)
    if data.get("fasta_file"):
        data["fasta_file"] = SimpleUploadedFile(data["fasta_file"], b">x\nMK1TAYIAKQRQ\n")
    page = alice_client.post(reverse(url_name), data)
    assert page.status_code == 400
    errors = page.context["form"].errors
    assert field in errors, errors
    assert text in " ".join(errors[field])
    assert not Job.objects.exists()


def test_design_run_and_docking_errors_land_on_their_fields(alice_client, design_objects):
    target, site, campaign = design_objects
    run = {"mode": "weighted", "population_size": 10, "generations": 2, "random_seed": 0, "brics_seeds": 0,
           "objective_1": "qed", "direction_1": "max", "weight_1": 1, "direction_2": "max", "weight_2": 1,
           "direction_3": "max", "weight_3": 1, "dock_exhaustiveness": 4, "max_dockings": 10, "dock_weight": 1}
    url = reverse("design:run_new", args=[campaign.pk])
    for extra, field, text in [({"seeds": "CCO\nC1CC"}, "seeds", "seeds[1]:"),
                               ({"mw_min": 600, "mw_max": 300}, "mw_min", "empty"),
                               ({"objective_2": "qed"}, "objective_2", "listed twice")]:
        page = alice_client.post(url, {**run, **extra})
        assert page.status_code == 400
        errors = page.context["form"].errors
        assert text in " ".join(errors.get(field, [])), (field, errors)
    # A bad line among good ones is left out and listed; with no good line the first bad one is named.
    page = alice_client.post(reverse("design:docking_new"), {
        "target": target.pk, "site": site.pk, "ligands": "C1CC ring\nC(C)(C)(C)(C)C pent", "exhaustiveness": 1,
        "n_poses": 1, "cpu": 0, "random_seed": 0})
    assert page.status_code == 400 and "ligands[0].smiles" in " ".join(page.context["form"].errors["ligands"])
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_migration_moves_facts_of_earlier_jobs_out_of_their_params(user):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("workers", "0001_initial")])
    executor.loader.build_graph()
    OldJob = executor.loader.project_state([("workers", "0001_initial")]).apps.get_model("workers", "Job")
    esm = OldJob.objects.create(kind="analysis.esm_embeddings", owner_id=user.pk, params={
        "model": "esm2_t6_8M_UR50D", "fasta": f">a\n{SEQ}\n", "n_records": 1, "max_length": 22,
        "rejected": [{"index": 2, "id": "b", "field": "sequence", "message": "Record 2 (b): ..."}]})
    protparam = OldJob.objects.create(kind="analysis.protparam", owner_id=user.pk, params={
        "fasta": f">a\n{SEQ}\n>bad\nMK1\n", "source": "paste", "window": 9, "n_records": 1, "n_rejected": 1})
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    esm, protparam = Job.objects.get(pk=esm.pk), Job.objects.get(pk=protparam.pk)
    assert esm.params == {"model": "esm2_t6_8M_UR50D", "fasta": f">a\n{SEQ}\n"}
    assert esm.input_facts["n_records"] == 1 and esm.input_facts["rejected"][0]["id"] == "b"
    assert protparam.params == {"fasta": f">a\n{SEQ}\n", "source": "paste", "window": 9}
    assert protparam.input_facts["n_rejected"] == 1 and protparam.input_facts["rejected"][0]["id"] == "bad"
