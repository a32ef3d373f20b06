"""Design jobs run end to end in-process: property prediction with row-level
errors and exports, docking on the 1IA1 fixture, and a small GA campaign
with its live history, scatter and comparison page."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from design.models import BindingSite, Campaign, CampaignRun, Target
from tests.conftest import run_job_now
from workers.models import Job, Status

FIXTURES = Path(__file__).parent / "fixtures" / "design"
TQ3 = "Nc1nc(N)c2c(Sc3ccccc3)cccc2n1"
# Tox21 rows around two of its aluminium compounds that RDKit rejects (valence).
TOX21_ROWS = ("TOX24723", "TOX7518")


def download(client, job, name) -> str:
    response = client.get(reverse("job_download", args=[job.pk, name]))
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()


def tox21_sample() -> str:
    lines = (FIXTURES / "tox21.csv").read_text().splitlines()
    bad = [l for l in lines if any(l.split(",")[-2] == t for t in TOX21_ROWS)]
    assert len(bad) == 2
    return "\n".join([lines[0]] + lines[1:9] + bad) + "\n"


@pytest.fixture
def target(alice_client):
    alice_client.post(reverse("design:target_new"), {
        "name": "DHFR", "structure": SimpleUploadedFile("1ia1.pdb", (FIXTURES / "1ia1_protein.pdb").read_bytes())})
    target = Target.objects.get()
    alice_client.post(target.get_absolute_url(), {
        "name": "TQ3 pocket", "method": "ligand", "cutoff": 5,
        "ligand_file": SimpleUploadedFile("tq3.sdf", (FIXTURES / "1ia1_TQ3_ligand.sdf").read_bytes())})
    return target


@pytest.mark.django_db(transaction=True)
def test_property_job_scores_valid_rows_and_reports_invalid_ones(alice_client, user):
    upload = SimpleUploadedFile("tox21_sample.csv", tox21_sample().encode())
    response = alice_client.post(reverse("design:properties_new"), {"molecules_file": upload, "title": "tox"})
    job = Job.objects.get()
    # Submission counts the rows; RDKit reads them in the worker only.
    assert response.status_code == 302 and job.input_facts["n_molecules"] == 10 and "n_invalid" not in job.input_facts
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    r = job.result
    assert r["n_valid"] == 8 and r["n_invalid"] == 2
    assert {e["name"] for e in r["errors"]} == set(TOX21_ROWS)
    assert all("Valence" in e["error"] or "valence" in e["error"] for e in r["errors"])
    assert all(isinstance(row["values"]["qed"], float) for row in r["rows"])
    page = alice_client.get(job.get_absolute_url()).content.decode()
    assert "TOX24723" in page and "Invalid rows" in page
    assert page.count('class="depiction"') == 8 and reverse("design:depict") in page
    # Every figure's method is named on the page.
    for method in ("ESOL, Delaney 2004", "Bickerton 2012", "Ertl &amp; Schuffenhauer 2009", "Martin 2005",
                   "Wildman-Crippen", "PAINS"):
        assert method in page, method
    csv = download(alice_client, job, "properties.csv")
    assert csv.count("\n") == 1 + 10 and "TOX24723" in csv
    sdf = download(alice_client, job, "properties.sdf")
    assert sdf.count("$$$$") == 8 and ">  <esol_logs>" in sdf
    api_csv = alice_client.get(f"/api/v1/design/jobs/{job.pk}/results", {"format": "csv"})
    assert api_csv.status_code == 200
    assert alice_client.get(f"/api/v1/design/jobs/{job.pk}/results").json()["result"]["n_valid"] == 8


@pytest.mark.django_db(transaction=True)
def test_docking_job_keeps_pose_and_names_the_method(alice_client, user, target):
    site = BindingSite.objects.get()
    alice_client.post(reverse("design:docking_new"), {
        "target": target.pk, "site": site.pk, "ligands": f"{TQ3} TQ3\nC1CC broken", "exhaustiveness": 1,
        "n_poses": 2, "cpu": 2, "random_seed": 0})
    job = Job.objects.get(kind="design.docking")
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    phases = [p["name"] for p in job.attempt_log.get().phases]
    assert phases == ["preparing receptor", "computing", "writing results"]
    ligand = job.result["ligands"][0]
    assert ligand["error"] is None and -12 < ligand["best_score"] < -5
    failures = job.result["receptor"]["failures_by_reason"]
    assert "B:45 LYS" in failures["no Meeko template matched (missing or extra heavy atoms)"]
    page = alice_client.get(job.get_absolute_url()).content.decode()
    assert "AutoDock Vina" in page and "Meeko" in page and "kcal/mol" in page
    # Formatted as the page formats it (Django rounds halves up, Python's :.2f to even).
    from django.template.defaultfilters import floatformat

    assert floatformat(ligand["best_score"], 2) in page and "B:45 LYS" in page
    # The bad line was left out at submission and is listed with RDKit's reason.
    assert job.result["invalid"][0]["row"] == 2 and "unclosed ring" in job.result["invalid"][0]["error"]
    assert "Invalid ligands" in page and "broken" in page
    # What Meeko's failed template match did to each residue, read from the PDBQT it wrote.
    action = {a["residue"]: a["action"] for a in job.result["receptor"]["actions"]}
    assert action["B:45 LYS"].startswith("removed from the receptor: all 8 heavy atoms")
    assert "removed from the receptor" in page
    poses = download(alice_client, job, "poses.sdf")
    # Vina keeps at most n_poses, fewer when the others fall outside its energy range.
    assert 1 <= poses.count("$$$$") == len(ligand["scores"]) <= 2 and "VINA_SCORE" in poses
    api_sdf = alice_client.get(f"/api/v1/design/jobs/{job.pk}/results", {"format": "sdf"})
    assert b"VINA_SCORE" in b"".join(api_sdf.streaming_content)


def _campaign_run(client, campaign, **changes):
    data = {"mode": "pareto", "population_size": 12, "generations": 3, "random_seed": 1, "brics_seeds": 4,
            "seeds": "CCOc1ccccc1C(=O)N\nc1ccc2[nH]ccc2c1", "no_pains": "on", "mw_max": 450,
            "objective_1": "qed", "direction_1": "max", "weight_1": 1,
            "objective_2": "sa_score", "direction_2": "min", "weight_2": 0.5,
            "objective_3": "", "direction_3": "max", "weight_3": 1,
            "dock_exhaustiveness": 4, "max_dockings": 10, "dock_weight": 1,
            "scatter_x": "qed", "scatter_y": "sa_score", **changes}
    response = client.post(reverse("design:run_new", args=[campaign.pk]), data)
    assert response.status_code == 302, response.context["form"].errors
    job = Job.objects.filter(kind="design.campaign_run").order_by("-created_at").first()
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    return job


@pytest.mark.django_db(transaction=True)
def test_campaign_run_history_scatter_compare_and_shortlist(alice_client, user, target):
    campaign = Campaign.objects.create(owner=user, name="DHFR leads", target=target, site=BindingSite.objects.get())
    first = _campaign_run(alice_client, campaign)
    r = first.result
    assert [h["generation"] for h in r["history"]] == [0, 1, 2, 3]
    assert all(h["best_score"] >= h["median_score"] for h in r["history"])
    assert CampaignRun.objects.get(job=first).history == r["history"]  # written live, generation by generation
    assert any(m["front"] for m in r["population"]) and all("qed" in m["properties"] for m in r["population"])
    assert all(450 >= m["properties"]["mw"] for m in r["population"])
    page = alice_client.get(reverse("design:run_detail", args=[first.pk])).content.decode()
    for marker in ('id="history-chart"', 'id="population-chart"', 'id="population-data"', "Pareto front",
                   "NSGA-II", "Bickerton 2012", "BRICS"):
        assert marker in page, marker
    live = alice_client.get(reverse("design:run_history", args=[first.pk])).json()
    assert len(live["history"]) == 4
    second = _campaign_run(alice_client, campaign, mode="weighted", random_seed=2)
    page = alice_client.get(reverse("design:compare"), {"a": first.pk, "b": second.pk}).content.decode()
    assert "random_seed" in page and "compare-data" in page and "pareto" in page and "weighted" in page
    campaign_page = alice_client.get(campaign.get_absolute_url()).content.decode()
    assert str(first.pk) in campaign_page and str(second.pk) in campaign_page
    best = r["population"][0]["smiles"]
    alice_client.post(reverse("design:shortlist_add"), {"smiles": best, "source_job": first.pk})
    entry = user.design_shortlistentry_set.get()
    assert entry.source_job == first and "qed" in entry.scores


@pytest.mark.django_db(transaction=True)
def test_docking_an_sdf_file_reports_bad_records_and_the_rmsd_to_the_crystal_ligand(alice_client, user, target):
    """Redocking TQ3 from an uploaded SDF into the site defined from that
    crystal ligand: its poses get their RMSD to it (under 2 Å for the best),
    another molecule gets none, and a record RDKit rejects is a row error."""
    from rdkit import Chem

    bad = Chem.MolFromSmiles("C(C)(C)(C)(C)C", sanitize=False)
    bad.UpdatePropertyCache(strict=False)
    sdf = ((FIXTURES / "1ia1_TQ3_ligand.sdf").read_text() + Chem.MolToMolBlock(bad, kekulize=False) + "$$$$\n"
           + Chem.MolToMolBlock(Chem.MolFromSmiles("OCCO")) + "$$$$\n")
    site = BindingSite.objects.get()
    alice_client.post(reverse("design:docking_new"), {
        "target": target.pk, "site": site.pk, "ligands_file": SimpleUploadedFile("ligands.sdf", sdf.encode()),
        "exhaustiveness": 4, "n_poses": 3, "cpu": 2, "random_seed": 0})
    job = Job.objects.get(kind="design.docking")
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    r = job.result
    tq3, glycol = r["ligands"]
    assert tq3["name"] == "1IA1_TQ3_B_196" and tq3["row"] == "SDF 1" and glycol["row"] == "SDF 3"
    assert tq3["rmsd"][0] < 2.0, tq3["rmsd"] and len(tq3["rmsd"]) == len(tq3["scores"])
    assert glycol["error"] is None and glycol["rmsd"] is None
    assert r["invalid"] == [{"row": "SDF 2", "name": "record 2", "input": "record 2",
                             "error": "record 2: Explicit valence for atom # 0 C, 5, is greater than permitted"}]
    page = alice_client.get(job.get_absolute_url()).content.decode()
    assert "RMSD to the crystal ligand 1IA1_TQ3_B_196, symmetry-aware heavy atoms, no alignment" in page
    from django.template.defaultfilters import floatformat

    assert f'<td class="num rmsd">{floatformat(tq3["rmsd"][0], 2)}</td>' in page
    assert "not the reference molecule" in page and "Explicit valence" in page
    csv = download(alice_client, job, "docking.csv")
    assert "pose_rmsd_to_reference_angstrom" in csv and "SDF 2" in csv
    poses = download(alice_client, job, "poses.sdf")
    assert poses.count("$$$$") == len(tq3["scores"]) + len(glycol["scores"])
    assert poses.count(">  <RMSD_TO_REFERENCE>") == len(tq3["scores"]) and ">  <VINA_SCORE>" in poses


@pytest.mark.django_db(transaction=True)
def test_campaign_run_with_docking_scores_molecules_by_vina(alice_client, user, target):
    """The GA with the docking score as an objective: molecules carry Vina
    scores (kcal/mol) from real docking into the campaign's site, capped."""
    campaign = Campaign.objects.create(owner=user, name="docked", target=target, site=BindingSite.objects.get())
    job = _campaign_run(alice_client, campaign, population_size=6, generations=1, brics_seeds=0,
                        dock="on", dock_exhaustiveness=1, max_dockings=6, objective_2="",
                        scatter_x="docking_score", scatter_y="qed")
    docked = [m for m in job.result["population"] if m["properties"].get("docking_score") is not None]
    assert docked, "no molecule was docked"
    assert len({m["smiles"] for m in docked}) <= 6
    assert all(-20 < m["properties"]["docking_score"] < 5 for m in docked)
    page = alice_client.get(reverse("design:run_detail", args=[job.pk])).content.decode()
    assert "Vina" in page
    # 2 seeds, then 6 offspring wanted in generation 1: the cap of 6 cuts it
    # short, and the page says so instead of ending without a word.
    assert job.result["budget"]["generation"] == 1 and job.result["evaluated"] == 6
    assert "The docking cap of 6 molecules was reached during generation 1 of 1" in page


@pytest.mark.django_db(transaction=True)
def test_property_job_from_sdf_keeps_good_records_and_names_bad_ones(alice_client, user):
    good = (FIXTURES / "1ia1_TQ3_ligand.sdf").read_text()
    # A record whose atom block is broken: RDKit cannot read it.
    broken = "broken\n  RDKit\n\n  1  0  0  0  0  0  0  0  0  0999 V2000\n    0.0 garbage\nM  END\n$$$$\n"
    upload = SimpleUploadedFile("mixed.sdf", (good + broken).encode())
    response = alice_client.post(reverse("design:properties_new"), {"molecules_file": upload})
    job = Job.objects.get()
    assert response.status_code == 302
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    assert job.result["n_valid"] == 1 and job.result["n_invalid"] == 1
    assert "record 2 (broken)" in job.result["errors"][0]["error"]  # named, with RDKit's reason
    assert download(alice_client, job, "properties.sdf").count("$$$$") == 1


@pytest.mark.django_db(transaction=True)
def test_property_job_reports_poison_rows_by_cap_and_scores_the_rest(alice_client, user):
    """A molecule over the size caps is a row error naming the cap, in the
    worker; the rest of the batch is scored. A batch with no valid row fails
    with the rows' reasons."""
    text = f"smiles,name\nCCO,ethanol\n{'C' * 5000},wax\n{'C' * 10_001},long\nc1ccccc1O,phenol\n"
    response = alice_client.post(reverse("design:properties_new"), {"molecules": text})
    assert response.status_code == 302
    job = Job.objects.get()
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    assert job.result["n_valid"] == 2 and [r["name"] for r in job.result["rows"]] == ["ethanol", "phenol"]
    errors = {e["name"]: e["error"] for e in job.result["errors"]}
    assert errors == {"wax": "row 2 (wax): 5,000 heavy atoms, over the limit of 1,000",
                      "long": "row 3 (long): a SMILES of 10,001 characters, over the limit of 10,000"}
    assert all(len(e["input"]) <= 200 for e in job.result["errors"])  # cut in the result, whole in the CSV
    assert "C" * 10_001 in download(alice_client, job, "invalid_rows.csv")

    alice_client.post(reverse("design:properties_new"), {"molecules": "C1CC broken\nC(C)(C)(C)(C)C five\n"})
    bad = Job.objects.exclude(pk=job.pk).get()
    run_job_now(bad)
    bad.refresh_from_db()
    assert bad.status == Status.FAILED
    assert "No valid molecule" in bad.error_message and "row 1 (broken)" in bad.error_message


@pytest.mark.django_db
def test_reference_ligand_of_a_site_from_a_hetero_code_is_read_from_the_structure(alice_client, user, target):
    from design.jobs import _reference_ligand

    assert _reference_ligand(BindingSite.objects.get(), target)[0] == "1IA1_TQ3_B_196"
    alice_client.post(target.get_absolute_url(), {"name": "NADPH", "method": "ligand", "cutoff": 5,
                                                  "ligand_code": "B:NDP"})
    name, mol = _reference_ligand(BindingSite.objects.get(name="NADPH"), target)
    assert name == "NDP (B:195)" and mol.GetNumAtoms() == 48
    box = BindingSite.objects.create(target=target, name="box", method="box", center=[0, 0, 0], size=[20] * 3)
    assert _reference_ligand(box, target) is None


@pytest.mark.django_db(transaction=True)
def test_docking_an_sdf_file_with_no_valid_record_fails_naming_them(alice_client, user, target):
    from rdkit import Chem

    bad = Chem.MolFromSmiles("C(C)(C)(C)(C)C", sanitize=False)
    bad.UpdatePropertyCache(strict=False)
    alice_client.post(reverse("design:docking_new"), {
        "target": target.pk, "site": BindingSite.objects.get().pk, "exhaustiveness": 1, "n_poses": 1, "cpu": 1,
        "random_seed": 0,
        "ligands_file": SimpleUploadedFile("bad.sdf", (Chem.MolToMolBlock(bad, kekulize=False) + "$$$$\n").encode())})
    job = Job.objects.get(kind="design.docking")
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.FAILED
    assert "No valid ligand: record 2" not in job.error_message
    assert "No valid ligand: record 1: Explicit valence for atom # 0 C, 5" in job.error_message
