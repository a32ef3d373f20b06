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
from tests.test_viewer_browser import logged_in  # noqa: F401  (a fixture: Chromium, signed in)
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
    assert "acetic acid" in html and 'name="task_2"' in html and 'name="target_3"' in html
    assert form["name"].initial == "solubility" and form["lab"].initial is not None


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
    bob = token_client(other_user)
    assert bob.get(reverse("api:training_dataset", args=[body["id"]])).status_code == 404
    assert bob.get(detail["table_url"]).status_code == 404 and bob.get(reverse("api:training_datasets")).json() == []
    assert api.get(reverse("api:training_datasets") + "?builtin=true").json() == []


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


def test_prune_files_keeps_datasets_and_drops_abandoned_uploads(alice_client):
    from datetime import timedelta

    from django.utils import timezone

    from workers.retention import prune_files

    upload(alice_client)
    step1(alice_client, GOOD_CSV, "abandoned.csv")
    report = prune_files(grace_hours=1, now=timezone.now() + timedelta(hours=2))
    [path] = report.files
    assert path.startswith(f"{uploads.FOLDER}/") and path.endswith("abandoned.csv")
    dataset = Dataset.objects.get()
    with dataset.table.open("rb") as table, dataset.source.open("rb") as source:
        assert table.read().startswith(b"smiles,row,") and source.read() == GOOD_CSV.encode()


# ---------------------------------------------------------------- in a browser

@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_browser_upload_preview_and_charts(logged_in, live_server, tmp_path):
    """Chromium: the file, the preview's checkboxes and task menus, then the
    dataset page with its row error and one Plotly chart per target drawn."""
    page, _client, _user, errors = logged_in
    csv_path = tmp_path / "solubility.csv"
    csv_path.write_text(GOOD_CSV)
    page.goto(live_server.url + reverse("training:index"))
    page.click("text=Upload a dataset")
    page.set_input_files("input[name=file]", str(csv_path))
    page.click("main button[type=submit]")
    page.wait_for_selector("#preview")
    assert page.input_value("select[name=smiles_column]") == "smiles"
    assert page.input_value("select[name=task_2]") == "classification"
    page.check("input[name=target_1]")
    page.check("input[name=target_2]")
    page.click("main button[type=submit]")
    page.wait_for_selector("#row-errors")
    assert "SMILES Parse Error" in page.inner_text("#row-errors")
    page.wait_for_function("document.querySelectorAll('.plotly-chart .main-svg').length >= 2", timeout=20_000)
    assert not errors, errors
    assert Dataset.objects.get().targets[1] == {"name": "active", "task": "classification"}


def test_listings_cost_the_same_for_more_datasets_and_skip_the_heavy_columns(alice_client, user, lab):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from training.models.datasets import parse_and_store

    def add(n):
        for i in range(n):
            parse_and_store(owner=user, name=f"d{Dataset.objects.count()}", data=GOOD_CSV.encode(),
                            filename="s.csv", smiles_column="smiles", targets={"solubility": None},
                            lab=lab, shared=bool(i % 2))

    api = token_client(user)
    api.get(reverse("api:training_datasets"))  # a token's first use also records when it was used
    counts = []
    for n in (2, 4):
        add(n)
        with CaptureQueriesContext(connection) as page:
            assert alice_client.get(reverse("training:dataset_list")).status_code == 200
        with CaptureQueriesContext(connection) as listing:
            assert len(api.get(reverse("api:training_datasets")).json()) == Dataset.objects.count()
        counts.append((len(page), len(listing)))
        for query in page.captured_queries + listing.captured_queries:
            assert "row_errors" not in query["sql"] and '"stats"' not in query["sql"]
    assert counts[0] == counts[1], counts


def test_one_name_holds_one_content_once_even_for_concurrent_uploads(user):
    from django.db import IntegrityError, transaction

    from training.models.datasets import parse_and_store

    first = parse_and_store(owner=user, name="sol", data=GOOD_CSV.encode(), filename="s.csv",
                            smiles_column="smiles", targets={"solubility": None}).dataset
    # What a second upload that passed the check at the same moment would insert.
    with pytest.raises(IntegrityError), transaction.atomic():
        Dataset.objects.create(owner=user, name="sol", version=2, content_hash=first.content_hash)
    again = parse_and_store(owner=user, name="sol", data=GOOD_CSV.encode(), filename="other-name.csv",
                            smiles_column="smiles", targets={"solubility": "regression"})
    assert not again.created and again.dataset == first


def test_the_owner_shares_a_version_later_and_only_the_owner(user, lab, other_user):
    alice = client_for(user)
    upload(alice)
    dataset = Dataset.objects.get()
    carol = client_for(lab.colleague)
    assert carol.get(dataset.get_absolute_url()).status_code == 404
    sharing = reverse("training:dataset_sharing", args=[dataset.pk])
    page = alice.get(dataset.get_absolute_url())
    assert page.context["sharing"] is not None and 'id="sharing"' in page.content.decode()

    response = alice.post(sharing, {"shared": "on", "lab": str(lab.pk)}, follow=True)
    assert "now shared with Solubility group" in response.content.decode()
    dataset.refresh_from_db()
    assert dataset.shared and dataset.lab == lab
    page = carol.get(dataset.get_absolute_url())
    assert page.status_code == 200 and page.context["sharing"] is None
    assert carol.post(sharing, {"lab": str(lab.pk)}).status_code == 404
    assert client_for(other_user).post(sharing, {"lab": str(lab.pk)}).status_code == 404
    dataset.refresh_from_db()
    assert dataset.shared

    alice.post(sharing, {"lab": str(lab.pk)})
    assert carol.get(dataset.get_absolute_url()).status_code == 404


def test_admin_shows_datasets_read_only_and_adds_none(alice_client, make_user):
    upload(alice_client)
    dataset = Dataset.objects.get()
    ops = client_for(make_user("ops@example.org", is_staff=True, is_superuser=True))
    assert dataset.name in ops.get(reverse("admin:training_dataset_changelist")).content.decode()
    page = ops.get(reverse("admin:training_dataset_change", args=[dataset.pk]))
    assert page.status_code == 200 and dataset.content_hash in page.content.decode()
    assert 'name="name"' not in page.content.decode() and 'name="shared"' in page.content.decode()
    for model in ("dataset", "trainingrun", "modelversion"):
        assert ops.get(reverse(f"admin:training_{model}_add")).status_code == 403


def test_a_file_wider_than_the_columns_form_is_refused_at_step_one(alice_client):
    from training.models.datasets import MAX_UPLOAD_COLUMNS

    header = ",".join(["smiles"] + [f"d{i}" for i in range(MAX_UPLOAD_COLUMNS)])
    rows = "\n".join("C" * n + "," + ",".join(["1"] * MAX_UPLOAD_COLUMNS) for n in (1, 2))
    response = step1(alice_client, f"{header}\n{rows}\n", "wide.csv")
    assert response.status_code == 400
    assert f"over the limit of {MAX_UPLOAD_COLUMNS}" in " ".join(response.context["form"].errors["file"])
