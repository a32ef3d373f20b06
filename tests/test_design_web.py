"""Design pages and API without running jobs: targets and binding sites,
scoping of every design object, the shortlist, and field-naming 400s."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import ApiToken
from design.models import BindingSite, Campaign, CampaignRun, ShortlistEntry, Target
from workers.models import Job, Status

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "fixtures" / "design"
PROTEIN = FIXTURES / "1ia1_protein.pdb"
LIGAND = FIXTURES / "1ia1_TQ3_ligand.sdf"
EMPTY_BOX = {"center_x": 1.548, "center_y": 68.184, "center_z": 83.831, "size_x": 20, "size_y": 20, "size_z": 20}


def upload_target(client, name="DHFR 1IA1", path=PROTEIN, filename=None):
    upload = SimpleUploadedFile(filename or path.name, path.read_bytes())
    return client.post(reverse("design:target_new"), {"name": name, "structure": upload})


def add_site(client, target, **data):
    return client.post(reverse("design:target_detail", args=[target.pk]), data)


@pytest.fixture
def target(alice_client):
    upload_target(alice_client)
    return Target.objects.get()


@pytest.fixture
def ligand_site(alice_client, target):
    add_site(alice_client, target, name="TQ3 pocket", method="ligand", cutoff=5,
             ligand_file=SimpleUploadedFile("tq3.sdf", LIGAND.read_bytes()))
    return BindingSite.objects.get(name="TQ3 pocket")


@pytest.fixture
def campaign(user, target, ligand_site):
    return Campaign.objects.create(owner=user, name="DHFR leads", target=target, site=ligand_site)


def test_upload_pdb_lists_chains_and_hetero_groups(alice_client, target):
    assert target.format == "pdb" and target.n_atoms > 3000
    chains = {c["chain"]: c for c in target.chains}
    assert set(chains) == {"A", "B"} and chains["B"]["polymer"] == "PeptideL"
    assert "NDP 195" in chains["B"]["ligands"]
    page = alice_client.get(target.get_absolute_url())
    assert b"NDP 195" in page.content and b"gemmi" in page.content


def test_mmcif_upload_is_read_and_converted(alice_client, tmp_path):
    import gemmi

    structure = gemmi.read_structure(str(PROTEIN))
    structure.setup_entities()
    cif = tmp_path / "1ia1.cif"
    structure.make_mmcif_document().write_file(str(cif))
    upload_target(alice_client, "cif", cif)
    target = Target.objects.get()
    assert target.format == "cif"
    assert target.pdb_text().count("\nATOM") > 3000


def test_bad_structure_uploads_name_the_file(alice_client, settings):
    page = alice_client.post(reverse("design:target_new"), {
        "name": "x", "structure": SimpleUploadedFile("weights.pdb", b"\x00\x01" * 50)})
    assert page.status_code == 400
    assert "weights.pdb" in " ".join(page.context["form"].errors["structure"])
    page = alice_client.post(reverse("design:target_new"), {
        "name": "x", "structure": SimpleUploadedFile("notes.pdb", b"HEADER nothing here\nEND\n")})
    assert "notes.pdb" in " ".join(page.context["form"].errors["structure"])
    settings.BIOFM_UPLOAD_MAX_BYTES = 1000
    page = upload_target(alice_client)
    assert "limit" in " ".join(page.context["form"].errors["structure"])
    assert Target.objects.count() == 0


def test_site_by_ligand_lists_pocket_residues_and_box(alice_client, target, ligand_site):
    assert ligand_site.method == "ligand" and ligand_site.warnings == []
    assert "B:GLU:32" in ligand_site.residues and "B:PHE:36" in ligand_site.residues
    assert ligand_site.protein_atoms_in_box > 100 and len(ligand_site.center) == 3
    page = alice_client.get(target.get_absolute_url()).content.decode()
    assert "B:GLU:32" in page and "residues within 5 Å" in page


def test_site_by_box_warns_when_empty_or_large(alice_client, target):
    add_site(alice_client, target, name="empty", method="box", cutoff=5, **EMPTY_BOX)
    empty = BindingSite.objects.get(name="empty")
    assert empty.protein_atoms_in_box == 0
    assert any("no protein atoms" in w for w in empty.warnings)
    add_site(alice_client, target, name="huge", method="box", cutoff=5, center_x=10.1, center_y=36.0,
             center_z=18.4, size_x=40, size_y=40, size_z=40)
    assert any("large" in w for w in BindingSite.objects.get(name="huge").warnings)
    page = alice_client.get(target.get_absolute_url()).content.decode()
    assert "no protein atoms" in page and "Warning:" in page


def test_site_errors_are_shown_next_to_the_field(alice_client, target):
    page = add_site(alice_client, target, name="r", method="residues", cutoff=5, residues="B:999")
    assert page.status_code == 400 and "B:999" in " ".join(page.context["form"].errors["residues"])
    page = add_site(alice_client, target, name="l", method="ligand", cutoff=5)
    assert page.context["form"].errors["ligand_code"]
    page = add_site(alice_client, target, name="l", method="ligand", cutoff=5, ligand_code="XYZ")
    assert "B:NDP" in " ".join(page.context["form"].errors["ligand_code"])  # names what is there
    assert not BindingSite.objects.exists()


def test_site_by_a_ligand_inside_the_structure(alice_client, target):
    add_site(alice_client, target, name="cofactor", method="ligand", cutoff=4, ligand_code="B:NDP")
    site = BindingSite.objects.get(name="cofactor")
    assert "co-crystallised ligand B:NDP" in site.description
    assert site.residues and all(r.startswith(("A:", "B:")) for r in site.residues)
    # NADPH is long: its box (extent + 6 Å padding) is rightly flagged as large.
    assert site.protein_atoms_in_box > 100 and [w for w in site.warnings if "large" in w] == site.warnings != []


def test_other_users_objects_are_404(client, other_user, user, campaign):
    entry = ShortlistEntry.objects.create(owner=user, smiles="CCO")
    job = Job.objects.create(kind="design.campaign_run", owner=user, params={"campaign_id": campaign.pk})
    CampaignRun.objects.create(campaign=campaign, job=job)
    client.force_login(other_user)
    assert client.get(reverse("design:target_detail", args=[campaign.target.pk])).status_code == 404
    assert client.get(reverse("design:campaign_detail", args=[campaign.pk])).status_code == 404
    assert client.get(reverse("design:run_new", args=[campaign.pk])).status_code == 404
    assert client.get(reverse("design:run_detail", args=[job.pk])).status_code == 404
    assert client.get(reverse("design:run_history", args=[job.pk])).status_code == 404
    assert client.post(reverse("design:shortlist_remove", args=[entry.pk])).status_code == 404
    assert b"CCO" not in client.get(reverse("design:shortlist")).content
    assert b"DHFR" not in client.get(reverse("design:index")).content
    # Nor can they point a job at it: the form offers only their own targets.
    page = client.post(reverse("design:docking_new"), {
        "target": campaign.target.pk, "site": campaign.site.pk, "ligands": "CCO", "exhaustiveness": 1,
        "n_poses": 1, "cpu": 1, "random_seed": 0})
    assert page.status_code == 400 and "target" in page.context["form"].errors
    assert ShortlistEntry.objects.filter(pk=entry.pk).exists()


def test_shortlist_add_remove_and_export(alice_client, user):
    alice_client.post(reverse("design:shortlist_add"), {"smiles": "OCC", "name": "ethanol", "note": "small"})
    alice_client.post(reverse("design:shortlist_add"), {"smiles": "c1ccccc1O", "name": "phenol"})
    alice_client.post(reverse("design:shortlist_add"), {"smiles": "CCO"})  # same molecule as OCC
    entries = ShortlistEntry.objects.filter(owner=user)
    assert sorted(e.smiles for e in entries) == ["CCO", "Oc1ccccc1"]
    csv = alice_client.get(reverse("design:shortlist_export", args=["csv"])).content.decode()
    assert "ethanol,CCO,small" in csv and csv.count("\n") == 3
    sdf = alice_client.get(reverse("design:shortlist_export", args=["sdf"])).content.decode()
    assert sdf.count("$$$$") == 2
    phenol = entries.get(name="phenol")
    alice_client.post(reverse("design:shortlist_remove", args=[phenol.pk]))
    assert list(entries.values_list("smiles", flat=True)) == ["CCO"]
    page = alice_client.get(reverse("design:shortlist"))
    assert b"ethanol" in page.content and b"Oc1ccccc1" not in page.content


@pytest.mark.parametrize("next_url", [
    "https://evil.example/phish", "//evil.example/phish", "/\\evil.example", "\\\\evil.example",
    "javascript:alert(1)", "http://testserver/design/", " //evil.example",
])
def test_shortlist_add_redirects_only_to_a_relative_path_on_this_site(alice_client, next_url):
    response = alice_client.post(reverse("design:shortlist_add"), {"smiles": "CCO", "next": next_url})
    assert response.status_code == 302
    assert response["Location"] == reverse("design:shortlist")


def test_shortlist_add_follows_a_relative_next(alice_client):
    response = alice_client.post(reverse("design:shortlist_add"), {"smiles": "CCO", "next": "/design/compare/?runs=1"})
    assert response.status_code == 302 and response["Location"] == "/design/compare/?runs=1"


def test_depiction_is_rdkit_svg(alice_client):
    svg = alice_client.get(reverse("design:depict"), {"smiles": "c1ccccc1O"})
    assert svg["Content-Type"] == "image/svg+xml" and svg.content.startswith(b"<svg")
    assert alice_client.get(reverse("design:depict"), {"smiles": "C1CC"}).status_code == 404


def test_run_form_prefills_from_a_previous_run(alice_client, campaign, no_broker,
                                               django_capture_on_commit_callbacks):
    from design.kind import clean_campaign_params

    params = clean_campaign_params({"campaign_id": campaign.pk, "seeds": ["CCOc1ccccc1"], "generations": 3,
                                    "population_size": 12, "random_seed": 5,
                                    "objectives": [{"property": "clogp", "direction": "min"}]})
    old = Job.objects.create(kind="design.campaign_run", owner=campaign.owner, params=params,
                             status=Status.SUCCEEDED)
    page = alice_client.get(reverse("design:run_new", args=[campaign.pk]), {"from": old.pk})
    form = page.context["form"]
    assert form.initial["objective_1"] == "clogp" and form.initial["random_seed"] == 5
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(generations=4, rerun_of=str(old.pk), direction_2="max", direction_3="max",
                weight_2=1, weight_3=1, dock_exhaustiveness=4, max_dockings=10, dock_weight=1)
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("design:run_new", args=[campaign.pk]), data)
    new = Job.objects.exclude(pk=old.pk).get()
    assert response.status_code == 302 and new.rerun_of_id == old.pk
    assert [job.pk for job in no_broker] == [new.pk]  # the rerun went to a worker
    assert new.params["generations"] == 4 and new.params["objectives"][0]["property"] == "clogp"
    assert new.campaign_run.campaign == campaign


# ---------------------------------------------------------------- API

def post(client, url, data):
    return client.post(url, data, content_type="application/json")


def test_api_submits_each_design_kind(api, user, campaign, no_broker, django_capture_on_commit_callbacks):
    user.profile.max_running_jobs = 3
    user.profile.save()
    with django_capture_on_commit_callbacks(execute=True):
        submitted = _submit_each_design_kind(api, campaign)
    # Each accepted submission is sent to a worker on its own queue, once.
    assert [(str(job.pk), job.kind) for job in no_broker] == submitted
    assert {job.kind: job.queue for job in no_broker} == {
        "design.properties": "cpu", "design.docking": "cpu", "design.campaign_run": "cpu"}


def _submit_each_design_kind(api, campaign):
    submitted = []
    r = post(api, "/api/v1/design/properties", {"molecules": "smiles,name\nCCO,ethanol\n[AlH3](O)(O)O,bad\n"})
    assert r.status_code == 202 and r.json()["kind"] == "design.properties"
    submitted.append((r.json()["id"], "design.properties"))
    r = post(api, "/api/v1/design/docking", {"target_id": campaign.target.pk, "site_id": campaign.site.pk,
                                              "ligands": [{"name": "TQ3", "smiles": "Nc1nc(N)c2c(Sc3ccccc3)cccc2n1"}],
                                              "exhaustiveness": 1, "n_poses": 1})
    assert r.status_code == 202 and r.json()["kind"] == "design.docking"
    submitted.append((r.json()["id"], "design.docking"))
    r = post(api, f"/api/v1/design/campaigns/{campaign.pk}/runs", {"seeds": ["CCO"], "generations": 2})
    assert r.status_code == 202
    job = Job.objects.get(pk=r.json()["id"])
    assert job.campaign_run.campaign == campaign
    submitted.append((str(job.pk), "design.campaign_run"))
    return submitted


@pytest.mark.parametrize("url, body, field", [
    ("/api/v1/design/properties", {}, "molecules"),
    # The web side counts records without RDKit (a bad SMILES is a row error in the worker).
    ("/api/v1/design/properties", {"molecules": "# only a comment\n\n"}, "molecules"),
    ("/api/v1/design/properties", {"smiles": ["CCO", "C\nC"]}, "smiles"),
    ("/api/v1/design/properties", {"molecules": "name,x\na,1\n"}, "molecules"),
    ("/api/v1/design/docking", {"target_id": 999999, "ligands": [{"smiles": "CCO"}]}, "target_id"),
    ("/api/v1/design/docking", {"target_id": "T", "ligands": [{"smiles": "CCO"}]}, "site_id"),
    ("/api/v1/design/docking", {"target_id": "T", "site_id": "S", "ligands": [{"smiles": "C1CC"}]}, "ligands[0].smiles"),
    ("/api/v1/design/docking", {"target_id": "T", "site_id": "S", "ligands": [{"smiles": "CCO"}],
                                "exhaustiveness": 0}, "exhaustiveness"),
    ("/api/v1/design/docking", {"target_id": "T", "center": [1, 2], "ligands": [{"smiles": "CCO"}]}, "center"),
    ("/api/v1/design/campaigns/C/runs", {"objectives": [{"property": "potency"}]}, "objectives[0].property"),
    ("/api/v1/design/campaigns/C/runs", {"seeds": ["C1CC"]}, "seeds[0]"),
    ("/api/v1/design/campaigns/C/runs", {"population_size": 1}, "population_size"),
    ("/api/v1/design/campaigns/C/runs", {"filters": {"mw_min": 600, "mw_max": 300}}, "filters.mw_min"),
    # A docking cap below one generation would end the run before any offspring.
    ("/api/v1/design/campaigns/C/runs", {"population_size": 12, "generations": 3,
                                         "docking": {"enabled": True, "max_dockings": 8}}, "docking.max_dockings"),
])
def test_api_400s_name_the_field(api, campaign, url, body, field):
    url = url.replace("/C/", f"/{campaign.pk}/")
    body = {k: (campaign.target.pk if v == "T" else campaign.site.pk if v == "S" else v) for k, v in body.items()}
    r = post(api, url, body)
    assert r.status_code == 400, r.content
    assert r.json()["field"] == field
    assert not Job.objects.exists()


def test_api_refuses_other_users_target_and_campaign(client, other_user, campaign):
    _, raw = ApiToken.issue(other_user, "t")
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    r = post(client, "/api/v1/design/docking", {"target_id": campaign.target.pk, "site_id": campaign.site.pk,
                                                 "ligands": [{"smiles": "CCO"}]})
    assert r.status_code == 400 and r.json()["field"] == "target_id"
    r = post(client, f"/api/v1/design/campaigns/{campaign.pk}/runs", {})
    assert r.status_code == 404
    assert not Job.objects.exists()


def test_generic_jobs_api_refuses_other_users_records_as_if_missing(client, other_user, campaign):
    # POST /api/v1/jobs reaches the design kinds without the design views:
    # the kind's access check must refuse another user's ids at submission,
    # with the same answer as an id that does not exist.
    _, raw = ApiToken.issue(other_user, "t")
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    missing = campaign.target.pk + 1000

    def submit(kind, params):
        r = post(client, "/api/v1/jobs", {"kind": kind, "params": params})
        assert r.status_code == 400, r.content
        return r.json()

    ligands = [{"smiles": "CCO"}]
    theirs = submit("design.docking", {"target_id": campaign.target.pk, "site_id": campaign.site.pk,
                                       "ligands": ligands})
    absent = submit("design.docking", {"target_id": missing, "site_id": campaign.site.pk, "ligands": ligands})
    assert theirs["field"] == absent["field"] == "target_id"
    assert theirs["error"] == f"No target with id {campaign.target.pk}."
    assert absent["error"] == f"No target with id {missing}."
    r = submit("design.campaign_run", {"campaign_id": campaign.pk})
    assert r == {"error": f"No campaign with id {campaign.pk}.", "field": "campaign_id"}
    assert not Job.objects.exists()


# ---------------------------------------------------------------- heavy work in the web process (issue 15)

def test_depiction_refuses_molecules_over_the_caps_with_a_400(alice_client, settings):
    url = reverse("design:depict")
    r = alice_client.get(url, {"smiles": "C" * 200})
    assert r.status_code == 400
    assert "200 heavy atoms, over the limit of 150" in r.content.decode()
    r = alice_client.get(url, {"smiles": "C" * 1500})
    assert r.status_code == 400 and "1,500 characters, over the limit of 1,000" in r.content.decode()
    settings.BIOFM_DEPICT_MAX_HEAVY_ATOMS = 250
    assert alice_client.get(url, {"smiles": "C" * 200}).status_code == 200
    # A 60-membered ring: CoordGen took minutes on it; drawn at once now.
    assert alice_client.get(url, {"smiles": "C1" + "C" * 58 + "1"}).content.startswith(b"<svg")


def test_shortlist_refuses_a_molecule_too_large_to_draw(alice_client, user):
    r = alice_client.post(reverse("design:shortlist_add"), {"smiles": "C" * 400}, follow=True)
    assert "400 heavy atoms, over the limit of 150" in r.content.decode()
    assert not ShortlistEntry.objects.exists()


def test_docking_ligands_and_seeds_over_the_caps_are_400s_naming_the_cap(api, campaign, no_broker):
    peptide = "N" + "C(Cc1ccccc1)C(=O)N" * 12 + "CC(=O)O"  # 137 heavy atoms
    r = post(api, "/api/v1/design/docking", {"target_id": campaign.target.pk, "site_id": campaign.site.pk,
                                              "ligands": [{"name": "pep", "smiles": peptide}]})
    assert r.status_code == 400 and r.json()["field"] == "ligands[0].smiles"
    assert "pep: 137 heavy atoms, over the limit of 100" in r.json()["error"]
    r = post(api, f"/api/v1/design/campaigns/{campaign.pk}/runs", {"seeds": ["CCO", "C" * 80]})
    assert r.status_code == 400 and r.json()["field"] == "seeds[1]"
    assert "seed 2: 80 heavy atoms, over the limit of 60" in r.json()["error"]
    assert not Job.objects.exists()


def _big_table(size: int) -> bytes:
    rows, i, length = ["smiles,name,note"], 0, 17
    smiles = ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "C1CC", "CCN(CC)CC"]
    while length < size - 300:
        rows.append(f"{smiles[i % 5]},m{i},{'x' * 260}")
        length += len(rows[-1]) + 1
        i += 1
    return ("\n".join(rows) + "\n").encode()


@pytest.mark.parametrize("how", ["form", "api"])
def test_a_5_mb_property_upload_is_counted_not_parsed_in_the_web_process(alice_client, api, no_broker, how):
    import json
    import tracemalloc

    from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

    raw = _big_table(5 * 1024 * 1024 - 1024)
    n = raw.count(b"\n") - 1
    assert n <= 20_000
    # The request body is built before measuring: only the server side counts.
    if how == "form":
        url, status, content_type = reverse("design:properties_new"), 302, MULTIPART_CONTENT
        body = encode_multipart(BOUNDARY, {"molecules_file": SimpleUploadedFile("big.csv", raw)})
    else:
        url, status, content_type = "/api/v1/design/properties", 202, "application/json"
        body = json.dumps({"molecules": raw.decode()}).encode()
    tracemalloc.start()
    try:
        r = alice_client.generic("POST", url, body, content_type=content_type)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.status_code == status, r.content[:500]
    job = Job.objects.get()
    assert job.input_facts["n_molecules"] == n and job.params["format"] == "csv"
    # The text a few times over (the test client's copy of the body, the
    # decoded text, the job's JSON on its way to the database: about 5.4x
    # measured), not parsed molecules: parsing them with RDKit here cost
    # 47 MB of Python objects for a 5 MB file, and 450 MB of process memory.
    assert peak < 6 * len(raw), f"peak {peak / 1e6:.1f} MB for a {len(raw) / 1e6:.1f} MB upload"


def test_site_ligand_file_over_the_caps_is_refused_next_to_the_field(alice_client, target, settings):
    settings.BIOFM_MOLECULE_MAX_HEAVY_ATOMS = 10
    page = add_site(alice_client, target, name="big", method="ligand", cutoff=5,
                    ligand_file=SimpleUploadedFile("tq3.sdf", LIGAND.read_bytes()))
    assert page.status_code == 400
    assert "19 heavy atoms, over the limit of 10" in " ".join(page.context["form"].errors["ligand_file"])
    assert not BindingSite.objects.exists()


# ---------------------------------------------------------------- docking input (issue 9 item 7)

def _bad_record() -> str:
    """An SDF record RDKit rejects: a carbon with five bonds."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles("C(C)(C)(C)(C)C", sanitize=False)
    mol.UpdatePropertyCache(strict=False)
    return Chem.MolToMolBlock(mol, kekulize=False) + "$$$$\n"


def test_docking_keeps_the_good_ligands_and_lists_the_bad_ones(api, campaign, no_broker):
    peptide = "N" + "C(Cc1ccccc1)C(=O)N" * 12 + "CC(=O)O"  # 137 heavy atoms
    r = post(api, "/api/v1/design/docking", {
        "target_id": campaign.target.pk, "site_id": campaign.site.pk, "exhaustiveness": 1,
        "ligands": [{"name": "ethanol", "smiles": "CCO"}, {"name": "ring", "smiles": "C1CC"},
                    {"name": "pep", "smiles": peptide}, {"name": "phenol", "smiles": "c1ccccc1O"}]})
    assert r.status_code == 202, r.content
    job = Job.objects.get()
    assert [(l["row"], l["name"]) for l in job.params["ligands"]] == [(1, "ethanol"), (4, "phenol")]
    facts = job.input_facts
    assert facts["n_ligands"] == 4 and facts["n_invalid"] == 2
    bad = {e["name"]: e for e in facts["invalid_ligands"]}
    assert bad["ring"]["row"] == 2 and "unclosed ring" in bad["ring"]["error"]
    assert bad["pep"]["row"] == 3 and "137 heavy atoms, over the limit of 100" in bad["pep"]["error"]
    # Only a list with no valid ligand at all is refused, naming the first.
    r = post(api, "/api/v1/design/docking", {"target_id": campaign.target.pk, "site_id": campaign.site.pk,
                                              "ligands": [{"smiles": "C1CC"}, {"smiles": "C(C)(C)(C)(C)C"}]})
    assert r.status_code == 400 and r.json()["field"] == "ligands[0].smiles"
    assert r.json()["error"].startswith("No valid ligand among 2")
    assert Job.objects.count() == 1


def test_docking_takes_sdf_text_split_here_and_parsed_in_the_worker(api, campaign, no_broker):
    from rdkit import Chem

    sdf = LIGAND.read_text() + _bad_record() + Chem.MolToMolBlock(Chem.MolFromSmiles("CCO")) + "$$$$\n"
    r = post(api, "/api/v1/design/docking", {"target_id": campaign.target.pk, "site_id": campaign.site.pk,
                                              "ligands_sdf": sdf, "exhaustiveness": 1})
    assert r.status_code == 202, r.content
    job = Job.objects.get()
    # The records are counted on submission; the bad one is found by the worker.
    assert job.params["ligands_sdf"] == sdf and job.params["ligands"] == []
    assert job.input_facts["n_ligands"] == 3 and job.input_facts["n_invalid"] == 0
    assert job.title == "Dock 3 ligands from SDF (exhaustiveness 1)"
    r = post(api, "/api/v1/design/docking", {"target_id": campaign.target.pk, "site_id": campaign.site.pk,
                                              "molecules": "CCO ethanol\nC1CC ring\n"})
    assert r.status_code == 202
    job = Job.objects.latest("created_at")
    assert [l["name"] for l in job.params["ligands"]] == ["ethanol"]
    assert job.input_facts["invalid_ligands"][0]["name"] == "ring"


def test_docking_form_takes_an_sdf_file(alice_client, campaign, no_broker):
    upload = SimpleUploadedFile("ligands.sdf", (LIGAND.read_text() + _bad_record()).encode())
    r = alice_client.post(reverse("design:docking_new"), {
        "target": campaign.target.pk, "site": campaign.site.pk, "ligands_file": upload, "exhaustiveness": 1,
        "n_poses": 1, "cpu": 1, "random_seed": 0})
    assert r.status_code == 302, r.context["form"].errors
    job = Job.objects.get()
    assert "1IA1_TQ3_B_196" in job.params["ligands_sdf"] and job.input_facts["n_ligands"] == 2
    # Pasted lines with one bad SMILES: the bad line is named, the job goes through.
    r = alice_client.post(reverse("design:docking_new"), {
        "target": campaign.target.pk, "site": campaign.site.pk, "ligands": "CCO ethanol\nC1CC ring",
        "exhaustiveness": 1, "n_poses": 1, "cpu": 1, "random_seed": 0})
    assert r.status_code == 302
    assert Job.objects.latest("created_at").input_facts["invalid_ligands"][0]["name"] == "ring"


def test_docking_takes_campaign_sized_lists_up_to_the_cap_and_the_work_budget(api, campaign, no_broker, settings):
    from workers import kinds

    many = [{"name": f"m{i}", "smiles": "C" * (i % 8 + 1) + "O"} for i in range(120)]
    body = {"target_id": campaign.target.pk, "site_id": campaign.site.pk, "ligands": many, "exhaustiveness": 8}
    r = post(api, "/api/v1/design/docking", body)
    assert r.status_code == 202, r.content
    assert len(Job.objects.get().params["ligands"]) == 120
    # 120 x 64 is over the work budget of 500 ligands at exhaustiveness 8.
    r = post(api, "/api/v1/design/docking", {**body, "exhaustiveness": 64})
    assert r.status_code == 400 and r.json()["field"] == "exhaustiveness"
    assert "lower the exhaustiveness to 33" in r.json()["error"]
    settings.BIOFM_DOCK_MAX_LIGANDS = 100
    r = post(api, "/api/v1/design/docking", body)
    assert r.status_code == 400 and "120 ligands: the limit is 100 per job" in r.json()["error"]
    # The kind's time limit covers the largest job the caps allow.
    kind = kinds.get("design.docking")
    assert kind.soft_time_limit >= settings.BIOFM_DOCK_MAX_WORK * settings.BIOFM_DOCK_SECONDS_PER_UNIT


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_campaign_sized_docking_table_is_paged_and_sorted_in_the_browser(live_server, make_user, monkeypatch):
    """design_table.js pages a long result table (50 rows a page) and sorts
    all of its rows, not only the page shown. The result is written here as
    the runner writes it; the page and its script are what is tested."""
    from playwright.sync_api import sync_playwright

    from tests.test_e2e_browser import CHROMIUM_ARGS

    alice = make_user("alice@example.org", password="a-long-passphrase-1")
    ligands = [{"row": i + 1, "name": f"m{i + 1}", "smiles": "C" * (i % 5 + 1) + "O", "best_score": -3 - i / 100,
                "scores": [-3 - i / 100], "rmsd": None, "error": None} for i in range(120)]
    job = Job.objects.create(kind="design.docking", owner=alice, status=Status.SUCCEEDED, params={}, result={
        "target": {"id": 1, "name": "DHFR"}, "site": {"name": "box", "method": "explicit box", "center": [0, 0, 0],
                                                     "size": [20, 20, 20], "warnings": []},
        "receptor": {"failures_by_reason": {}, "kept_hetero": [], "actions": []}, "ligands": ligands,
        "invalid": [], "n_invalid": 0, "reference": None, "method": "AutoDock Vina",
        "options": {"exhaustiveness": 8, "n_poses": 1, "cpu": 1, "random_seed": 0}})
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        try:
            page.goto(f"{live_server.url}/accounts/login/")
            page.fill("input[name=login]", "alice@example.org")
            page.fill("input[name=password]", "a-long-passphrase-1")
            page.click("form button[type=submit]")
            page.wait_for_url(f"{live_server.url}/")
            page.goto(f"{live_server.url}{job.get_absolute_url()}")
            visible = page.locator("#docking-table tbody tr:visible")
            page.wait_for_selector("#docking-table-pager:text('page 1 of 3')")
            assert visible.count() == 50 and visible.first.locator("td").first.inner_text() == "1"
            page.click("#docking-table-pager button:text('next')")
            assert visible.count() == 50 and visible.first.locator("td").first.inner_text() == "51"
            # Sorting by affinity (best, i.e. lowest, first) reaches the last row and goes back to page 1.
            page.click("#docking-table th:text('Affinity')")
            assert "page 1 of 3" in page.locator("#docking-table-pager").inner_text()
            assert visible.first.locator("td").first.inner_text() == "120"
            page.fill("#table-filter", "m11")
            page.wait_for_selector("#docking-table-pager:text('')", state="attached")
            assert sorted(r.locator("td").first.inner_text() for r in visible.all()) == ["11", "110", "111", "112",
                                                                                           "113", "114", "115",
                                                                                           "116", "117", "118",
                                                                                           "119"]
        finally:
            browser.close()


# ---------------------------------------------------------------- compare, shortlist display (issue 9)

def _run(campaign, params, **job):
    job = Job.objects.create(kind="design.campaign_run", owner=campaign.owner, params=params,
                             status=Status.SUCCEEDED, result={"population": [], "history": []}, **job)
    CampaignRun.objects.create(campaign=campaign, job=job)
    return job


def test_compare_lists_only_real_differences_key_by_key(alice_client, campaign):
    base = {"campaign_id": campaign.pk, "generations": 3, "random_seed": 5, "seeds": ["CCO", "c1ccccc1"],
            "objectives": [{"property": "qed", "direction": "max", "weight": 1.0},
                           {"property": "clogp", "direction": "min", "weight": 0.5}]}
    other = {**base, "random_seed": 6,
             "objectives": [base["objectives"][0], {**base["objectives"][1], "weight": 2.0}]}
    a, b = _run(campaign, base), _run(campaign, other)
    page = alice_client.get(reverse("design:compare"), {"a": a.pk, "b": b.pk})
    assert page.context["differences"] == [("objectives.1.weight", "0.5", "2"), ("random_seed", "5", "6")]
    html = page.content.decode()
    assert "{&#x27;" not in html and "{'" not in html  # no raw Python dicts
    assert 'class="table-scroll"' in html
    same = alice_client.get(reverse("design:compare"), {"a": a.pk, "b": _run(campaign, dict(base)).pk})
    assert same.context["differences"] == [] and b'id="param-diff-none"' in same.content


def test_param_differences_name_missing_keys_and_nested_lists():
    from design.views import flatten_params, param_differences

    assert flatten_params({"a": {"b": [1, 2]}, "c": [{"d": None}]}) == {"a.b": [1, 2], "c.0.d": None}
    assert param_differences({"a": {"b": True}}, {"a": {}, "x": [1, 2]}) == [
        ("a.b", "yes", "(not set)"), ("x", "(not set)", "1, 2")]


def test_shortlist_add_from_htmx_swaps_the_button(alice_client, user):
    response = alice_client.post(reverse("design:shortlist_add"), {"smiles": "OCC", "next": "/design/"},
                                 HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "On shortlist ✓" in response.content.decode()
    assert "<html" not in response.content.decode()
    assert ShortlistEntry.objects.filter(owner=user, smiles="CCO").exists()
    again = alice_client.post(reverse("design:shortlist_add"), {"smiles": "CCO"}, HTTP_HX_REQUEST="true")
    assert "On shortlist ✓" in again.content.decode() and ShortlistEntry.objects.filter(owner=user).count() == 1
    bad = alice_client.post(reverse("design:shortlist_add"), {"smiles": "C1CC"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 200 and 'role="alert"' in bad.content.decode()
    assert "On shortlist" not in bad.content.decode()
    # The button carries both paths: htmx attributes and a plain form action.
    from django.template.loader import render_to_string
    button = render_to_string("design/partials/shortlist_button.html", {"smiles": "CCO"})
    assert 'hx-post="/design/shortlist/add/"' in button and 'action="/design/shortlist/add/"' in button


def test_shortlist_scores_are_rounded_for_display_only(alice_client, user):
    entry = ShortlistEntry.objects.create(owner=user, smiles="CCO",
                                          scores={"score": -0.3286999999999999, "qed": 0.41, "n": 5,
                                                  "ok": True})
    html = alice_client.get(reverse("design:shortlist")).content.decode()
    assert "-0.3286999999999999" not in html and "score -0.329" in html and "qed 0.41" in html
    assert "n 5" in html and "ok True" in html
    entry.refresh_from_db()
    assert entry.scores["score"] == -0.3286999999999999


def test_shortlist_note_is_editable_by_its_owner_only(client, alice_client, user, other_user):
    entry = ShortlistEntry.objects.create(owner=user, smiles="CCO", note="old")
    page = alice_client.get(reverse("design:shortlist")).content.decode()
    assert reverse("design:shortlist_note", args=[entry.pk]) in page
    response = alice_client.post(reverse("design:shortlist_note", args=[entry.pk]), {"note": "try the ester"})
    assert response.status_code == 302 and response["Location"].endswith(f"#entry-{entry.pk}")
    entry.refresh_from_db()
    assert entry.note == "try the ester"
    client.force_login(other_user)
    assert client.post(reverse("design:shortlist_note", args=[entry.pk]), {"note": "mine"}).status_code == 404
    entry.refresh_from_db()
    assert entry.note == "try the ester"
