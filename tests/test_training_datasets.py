"""Training datasets in the portal: the two-step upload (preview, columns),
row errors and whole-file errors on the form and the API, versions and
identical re-uploads, lab sharing, the built-in datasets, the API."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts.models import Lab, Membership
from tests.test_lab_sharing import token_client
from training import uploads
from training.models import Dataset

pytestmark = pytest.mark.django_db

# Row 4 is no molecule; row 6 is ethanol again (merged by the duplicate rule).
GOOD_CSV = (
    "smiles,solubility,active,name\n"
    "CCO,-0.77,1,ethanol\n"
    "c1ccccc1,-1.64,0,benzene\n"
    "CC(=O)O,0.5,1,acetic acid\n"
    "C1CC1(,1.0,0,broken\n"
    "CCCC,-2.5,0,butane\n"
    "OCC,-0.79,1,ethanol again\n"
)
COLUMNS = ["smiles", "solubility", "active", "name"]


def step1(client, content: bytes | str, filename="solubility.csv"):
    data = content.encode() if isinstance(content, str) else content
    return client.post(reverse("training:dataset_new"), {"file": SimpleUploadedFile(filename, data)})


def step2(client, response, targets: dict[str, str], columns=COLUMNS, **fields):
    """Posts the columns form behind step 1's redirect: `targets` maps a column to its task ("" infers)."""
    assert response.status_code == 302, getattr(response, "context", None) and response.context["form"].errors
    data = {"name": "solubility", "smiles_column": "smiles", **fields}
    for column, task in targets.items():
        i = columns.index(column)
        data[f"target_{i}"] = "on"
        data[f"task_{i}"] = task
    return client.post(response["Location"], data)


def upload(client, content=GOOD_CSV, targets=None, filename="solubility.csv", columns=COLUMNS, **fields):
    return step2(client, step1(client, content, filename), targets or {"solubility": "regression"},
                 columns=columns, **fields)


@pytest.fixture
def lab(user, make_user):
    lab = Lab.objects.create(name="Solubility group", slug="solubility-group")
    Membership.objects.create(lab=lab, user=user, role=Membership.Role.OWNER)
    colleague = make_user("carol@example.org")
    Membership.objects.create(lab=lab, user=colleague)
    lab.colleague = colleague
    return lab


def client_for(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


# ---------------------------------------------------------------- the upload pages

def test_preview_shows_columns_rows_and_inferred_tasks(alice_client):
    response = step1(alice_client, GOOD_CSV)
    page = alice_client.get(response["Location"])
    assert page.status_code == 200
    form = page.context["form"]
    assert form["smiles_column"].initial == "smiles"
    columns = {c["column"]: c for c in page.context["columns"]}
    assert set(columns) == set(COLUMNS)
    assert columns["solubility"]["inferred"] == "regression"
    assert columns["active"]["inferred"] == "classification"
    assert columns["name"]["inferred"] is None
    assert columns["solubility"]["values"][:2] == ["-0.77", "-1.64"]
    html = page.content.decode()
    assert "acetic acid" in html and 'name="task_2"' in html and "Solubility" not in html.split("<h1>")[0]


def test_upload_keeps_good_rows_and_lists_the_bad_one_with_rdkits_reason(alice_client, user):
    response = upload(alice_client, targets={"solubility": "regression", "active": "classification"},
                      description="from the bench", keep_columns=["name"])
    dataset = Dataset.objects.get()
    assert response.status_code == 302 and response["Location"] == dataset.get_absolute_url()
    assert dataset.owner == user and dataset.version == 1 and not dataset.shared
    assert dataset.targets == [{"name": "solubility", "task": "regression"},
                               {"name": "active", "task": "classification"}]
    assert dataset.n_source_rows == 6 and dataset.n_rows == 4 and dataset.columns == ["name"]
    [error] = dataset.row_errors
    assert error["row"] == 4 and error["column"] == "smiles"
    assert "SMILES Parse Error" in error["message"]
    [group] = dataset.duplicates["groups"]
    assert group["rows"] == [1, 6] and "averaged" in dataset.duplicates["rule"]
    assert dataset.stats["solubility"]["n"] == 4 and dataset.stats["active"]["counts"] == {"0": 2, "1": 2}

    page = alice_client.get(dataset.get_absolute_url())
    html = page.content.decode()
    assert page.status_code == 200
    assert "SMILES Parse Error" in html and "Merged as duplicates" in html and "1 row into 1 molecule" in html
    assert "vendor/plotly/plotly.min.js" in html and "class balance" in html
    figures = page.context["figures"]
    assert figures[0]["figure"]["data"][0]["type"] == "bar" and sum(figures[0]["figure"]["data"][0]["y"]) == 4
    assert figures[1]["figure"]["data"][0]["x"] == ["class 0", "class 1"]

    table = alice_client.get(reverse("training:dataset_table", args=[dataset.pk]))
    text = b"".join(table.streaming_content).decode()
    assert text.splitlines()[0] == "smiles,row,regression:solubility,classification:active,column:name"
    assert len(text.splitlines()) == 5 and "C1CC1(" not in text
    source = alice_client.get(reverse("training:dataset_source", args=[dataset.pk]))
    assert b"".join(source.streaming_content).decode() == GOOD_CSV
    # The stashed upload went with the dataset's creation.
    assert alice_client.session.get(uploads.SESSION_KEY) == {}


def test_sdf_upload_takes_the_records_molecules_and_sd_properties(alice_client):
    from rdkit import Chem

    out = io.StringIO()
    writer = Chem.SDWriter(out)
    for smiles, value in (("CCO", 1.5), ("c1ccccc1", 2.5), ("CCN", 0.5)):
        mol = Chem.MolFromSmiles(smiles)
        mol.SetProp("pKa", str(value))
        writer.write(mol)
    writer.close()
    response = step1(alice_client, out.getvalue(), "acids.sdf")
    page = alice_client.get(response["Location"])
    assert page.context["preview"].format == "sdf"
    columns = page.context["form"].preview.columns
    step2(alice_client, response, {"pKa": ""}, columns=columns, smiles_column=columns[0], name="acids")
    dataset = Dataset.objects.get(name="acids")
    assert dataset.n_rows == 3 and dataset.smiles_column == "" and dataset.targets[0]["task"] == "regression"


WHOLE_FILE_ERRORS = [
    # (file, targets, words the message must have)
    ("smiles,y\nCCO,abc\nCCC,def\n", {"y": ""}, "No numeric target"),
    ("smiles,y\nC1CC1(,1\nXx,2\n", {"y": "regression"}, "All 2 rows are invalid"),
    ("smiles,y\nCCO,1.0\nCCC,1.0\nCCCC,1.0\n", {"y": "regression"}, "is constant"),
    ("smiles,y\nCCO,1\nCCC,1\nCCCC,1\n", {"y": "classification"}, "one class only"),
    ("smiles,y\nCCO,1.5\n", {"y": "regression"}, "Only 1 valid molecule"),
]


@pytest.mark.parametrize("content,targets,words", WHOLE_FILE_ERRORS)
def test_whole_file_errors_are_named_on_the_form(alice_client, content, targets, words):
    response = step2(alice_client, step1(alice_client, content, "bad.csv"), targets, columns=["smiles", "y"])
    assert response.status_code == 400
    assert any(words in e for e in response.context["form"].non_field_errors()), \
        response.context["form"].errors
    assert words in response.content.decode() and not Dataset.objects.exists()


@pytest.mark.parametrize("content,targets,words", WHOLE_FILE_ERRORS)
def test_whole_file_errors_are_named_by_the_api(api, content, targets, words):
    data = {"file": SimpleUploadedFile("bad.csv", content.encode()), "name": "bad", "smiles_column": "smiles",
            "targets": list(targets), "tasks": [t or "infer" for t in targets.values()]}
    response = api.post(reverse("api:training_dataset_upload"), data)
    assert response.status_code == 400
    body = response.json()
    assert words in body["error"] and "bad.csv" in body["error"] and body["field"] == "file"
    assert not Dataset.objects.exists()


def test_empty_file_is_refused_on_both(alice_client, api):
    response = step1(alice_client, b"", "nothing.csv")
    assert response.status_code == 400
    assert "The file is empty" in " ".join(response.context["form"].errors["file"])
    response = step1(alice_client, b" \n\n", "blank.csv")
    assert "“blank.csv” is empty" in " ".join(response.context["form"].errors["file"])
    response = api.post(reverse("api:training_dataset_upload"), {
        "file": SimpleUploadedFile("nothing.csv", b"  \n"), "name": "x", "targets": ["y"]})
    assert response.status_code == 400 and "nothing.csv" in response.json()["error"]


def test_form_refuses_no_target_and_the_smiles_column_as_target(alice_client):
    response = step1(alice_client, GOOD_CSV)
    page = alice_client.post(response["Location"], {"name": "x", "smiles_column": "smiles"})
    assert page.status_code == 400 and "Tick at least one target column." in page.content.decode()
    page = step2(alice_client, response, {"solubility": "regression"}, smiles_column="solubility")
    assert "is ticked as a target too" in " ".join(page.context["form"].errors["smiles_column"])


def test_upload_cap_and_binary_files_name_the_file(alice_client, settings):
    settings.BIOFM_UPLOAD_MAX_BYTES = 20
    response = step1(alice_client, GOOD_CSV, "big.csv")
    assert "“big.csv” is 0.0 MB; the limit is 0.0 MB." in " ".join(response.context["form"].errors["file"])


def test_a_token_of_another_session_or_a_stale_one_starts_over(alice_client, other_user):
    location = step1(alice_client, GOOD_CSV)["Location"]
    bob = client_for(other_user)
    response = bob.get(location)
    assert response.status_code == 302 and response["Location"] == reverse("training:dataset_new")
    response = alice_client.get(reverse("training:dataset_columns", args=["x" * 30]), follow=True)
    assert "upload the file again" in response.content.decode()
    assert alice_client.get(location).status_code == 200


def test_a_session_keeps_its_last_uploads_only(alice_client, settings):
    locations = [step1(alice_client, GOOD_CSV)["Location"] for _ in range(uploads.MAX_PENDING + 1)]
    assert alice_client.get(locations[0]).status_code == 302
    assert all(alice_client.get(url).status_code == 200 for url in locations[1:])
    from workers.retention import walk

    assert len(list(walk(uploads.FOLDER))) == uploads.MAX_PENDING


# ---------------------------------------------------------------- versions

def test_reupload_makes_v2_and_identical_content_is_not_stored_twice(alice_client):
    upload(alice_client)
    first = Dataset.objects.get()
    response = upload(alice_client)
    assert Dataset.objects.count() == 1 and response["Location"] == first.get_absolute_url()
    page = alice_client.get(response["Location"])
    assert "already has exactly this content" in page.content.decode()

    # The same bytes with other column choices are other content: a new version.
    upload(alice_client, targets={"solubility": "regression", "active": "classification"})
    upload(alice_client, GOOD_CSV + "CCCCC,-3.0,0,pentane\n")
    versions = list(Dataset.objects.order_by("version").values_list("version", "n_rows"))
    assert versions == [(1, 4), (2, 4), (3, 5)]
    page = alice_client.get(Dataset.objects.get(version=3).get_absolute_url())
    assert [v.version for v in page.context["versions"]] == [3, 2, 1]
    assert Dataset.objects.values("content_hash").distinct().count() == 3


# ---------------------------------------------------------------- sharing

def test_lab_sharing_through_the_picker(user, lab, other_user):
    alice = client_for(user)
    upload(alice, name="private")
    upload(alice, name="for the group", shared="on", lab=str(lab.pk))
    private, shared = Dataset.objects.get(name="private"), Dataset.objects.get(name="for the group")
    assert shared.shared and shared.lab == lab
    carol = client_for(lab.colleague)
    listing = carol.get(reverse("training:dataset_list"))
    assert list(listing.context["shared"]) == [shared] and not list(listing.context["mine"])
    assert carol.get(shared.get_absolute_url()).status_code == 200
    assert "Shared with Solubility group" in carol.get(shared.get_absolute_url()).content.decode()
    assert carol.get(private.get_absolute_url()).status_code == 404
    bob = client_for(other_user)
    for name in ("training:dataset_detail", "training:dataset_table", "training:dataset_source"):
        assert bob.get(reverse(name, args=[shared.pk])).status_code == 404
    assert token_client(other_user).get(reverse("api:training_dataset", args=[shared.pk])).status_code == 404
    carol_api = token_client(lab.colleague)
    assert [d["id"] for d in carol_api.get(reverse("api:training_datasets")).json()] == [shared.pk]


def test_a_lab_the_user_is_not_in_is_refused(alice_client, make_user):
    stranger = make_user("dave@example.org")
    response = upload(alice_client, shared="on", lab=str(stranger.profile.default_lab.pk))
    assert response.status_code == 400 and "Choose one of your labs." in response.content.decode()


# ---------------------------------------------------------------- built-ins

def test_builtin_loader_is_idempotent_and_everyone_sees_them(user, other_user):
    out = io.StringIO()
    call_command("load_builtin_datasets", stdout=out)
    assert out.getvalue().count(": created;") == 5
    builtins = Dataset.objects.filter(builtin=True)
    assert sorted(builtins.values_list("name", flat=True)) == ["bbbp", "esol", "freesolv", "lipophilicity", "tox21"]
    tox21 = builtins.get(name="tox21")
    assert len(tox21.targets) == 12 and tox21.n_source_rows == 7831 and tox21.citation
    assert sum("valence" in e["message"].lower() for e in tox21.row_errors) == 8
    owner = tox21.owner
    assert not owner.is_active and not owner.has_usable_password()

    out = io.StringIO()
    call_command("load_builtin_datasets", stdout=out)
    assert out.getvalue().count(": unchanged;") == 5 and Dataset.objects.count() == 5

    page = client_for(other_user).get(reverse("training:dataset_list"))
    assert len(page.context["builtins"]) == 5 and "tox21" in page.content.decode()
    esol = builtins.get(name="esol")
    assert client_for(user).get(esol.get_absolute_url()).status_code == 200
    body = token_client(other_user).get(reverse("api:training_dataset", args=[esol.pk])).json()
    assert body["builtin"] and body["n_rows"] == 1117 and body["stats"]["measured log solubility in mols per litre"]


# ---------------------------------------------------------------- API

def test_api_upload_list_detail(api, user, other_user, lab):
    data = {"file": SimpleUploadedFile("sol.csv", GOOD_CSV.encode()), "name": "sol", "smiles_column": "smiles",
            "targets": ["solubility", "active"], "tasks": ["regression", "infer"], "shared": "true",
            "lab": lab.slug, "keep_columns": ["name"]}
    response = api.post(reverse("api:training_dataset_upload"), data)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["created"] and body["version"] == 1 and body["n_rows"] == 4 and body["n_source_rows"] == 6
    assert body["targets"][1] == {"name": "active", "task": "classification"}
    assert body["row_errors"][0]["row"] == 4 and "SMILES Parse Error" in body["row_errors"][0]["message"]
    assert body["lab"]["slug"] == lab.slug and body["shared"] and body["columns"] == ["name"]

    data["file"] = SimpleUploadedFile("sol.csv", GOOD_CSV.encode())
    again = api.post(reverse("api:training_dataset_upload"), data)
    assert again.status_code == 200 and not again.json()["created"] and again.json()["id"] == body["id"]

    listing = api.get(reverse("api:training_datasets")).json()
    assert [d["id"] for d in listing] == [body["id"]] and "row_errors" not in listing[0]
    detail = api.get(reverse("api:training_dataset", args=[body["id"]])).json()
    assert detail["stats"]["solubility"]["n"] == 4 and detail["duplicates"]["groups"][0]["rows"] == [1, 6]
    table = api.get(detail["table_url"])
    assert table.status_code == 200 and b"".join(table.streaming_content).startswith(b"smiles,row,")
    assert token_client(other_user).get(reverse("api:training_dataset", args=[body["id"]])).status_code == 404


def test_api_names_the_bad_field(api, make_user):
    url = reverse("api:training_dataset_upload")

    def post(**fields):
        data = {"file": SimpleUploadedFile("sol.csv", GOOD_CSV.encode()), "name": "sol",
                "smiles_column": "smiles", "targets": ["solubility"], **fields}
        return api.post(url, data)

    response = post(tasks=["regression", "regression"])
    assert response.status_code == 400 and response.json()["field"] == "tasks"
    response = post(tasks=["ordinal"])
    assert response.status_code == 400 and "ordinal" in response.json()["error"]
    response = post(lab="no-such-lab")
    assert response.status_code == 400 and response.json()["field"] == "lab"
    response = post(targets=["missing column"])
    assert response.status_code == 400 and "missing column" in response.json()["error"]
    response = api.post(url, {"name": "sol", "targets": ["solubility"]})
    assert response.status_code == 400 and response.json()["field"] == "file"
    assert Client().get(reverse("api:training_datasets")).status_code == 401
