"""The 3Dmol.js viewers in Chromium: the design target with its binding
sites and boxes, docked poses in the pocket, ATOMICA block importance painted
on the structure, and a local PDB next to the ESM-2 contact map. Each test
reads back, through 3Dmol's own API, what the viewer loaded and showed."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FIXTURES = Path(__file__).parent / "fixtures"
PROTEIN = FIXTURES / "design" / "1ia1_protein.pdb"
LIGAND = FIXTURES / "design" / "1ia1_TQ3_ligand.sdf"
# WebGL in headless Chromium without a GPU is SwiftShader's.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def logged_in(live_server, monkeypatch, make_user):
    """A Chromium page logged in as a new user, and that user's test client."""
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    user = make_user("viewer@example.org")
    client = Client()
    client.force_login(user)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context()
        context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                              "url": live_server.url}])
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page, client, user, errors
        browser.close()


def wait_for_viewer(page, selector):
    page.wait_for_selector(f"{selector}[data-ready], {selector}[data-error]", state="attached", timeout=30_000)
    error = page.get_attribute(selector, "data-error")
    assert error is None, error
    box = page.locator(f"{selector} canvas").bounding_box()
    assert box and box["width"] > 100 and box["height"] > 100


def pdb_atom_count(path: Path) -> int:
    """Atoms of the file, the first alternate location of each (as 3Dmol keeps)."""
    return sum(1 for line in path.read_text().splitlines()
               if line.startswith(("ATOM", "HETATM")) and line[16] in " A")


def make_target_with_site(client):
    from design.models import Target

    client.post(reverse("design:target_new"), {"name": "DHFR 1IA1",
                                               "structure": SimpleUploadedFile(PROTEIN.name, PROTEIN.read_bytes())})
    target = Target.objects.get()
    client.post(reverse("design:target_detail", args=[target.pk]), {
        "name": "TQ3 pocket", "method": "ligand", "cutoff": 5,
        "ligand_file": SimpleUploadedFile("tq3.sdf", LIGAND.read_bytes())})
    return target, target.sites.get()


def test_target_page_shows_structure_sites_and_boxes(live_server, logged_in):
    page, client, _user, errors = logged_in
    target, site = make_target_with_site(client)
    page.goto(live_server.url + target.get_absolute_url())
    wait_for_viewer(page, "#target-viewer")
    loaded = page.evaluate("""() => {
        const el = document.querySelector('#target-viewer');
        const v = el.viewer, site = el.biofm.sites[0];
        const residues = new Set(v.selectedAtoms({or: site.residues}).map(a => a.chain + ':' + a.resn + ':' + a.resi));
        const picked = v.selectedAtoms({or: site.residues});
        return {atoms: v.selectedAtoms({}).length, residues: [...residues].sort(),
                sticks: picked.every(a => a.style.stick && a.style.cartoon.color === site.colour),
                others: v.selectedAtoms({chain: 'A', resi: 1})
                          .every(a => a.style.cartoon && a.style.cartoon.color !== site.colour),
                shapes: v.getModel() && v.shapes.length};
    }""")
    assert loaded["atoms"] == pdb_atom_count(PROTEIN)
    assert loaded["residues"] == sorted(site.residues)
    assert loaded["sticks"] and loaded["others"]
    assert loaded["shapes"] == 1  # the site's box
    assert not errors


def test_target_structure_is_scoped(live_server, logged_in, make_user):
    _page, client, _user, _errors = logged_in
    target, _site = make_target_with_site(client)
    url = reverse("design:target_structure", args=[target.pk])
    assert client.get(url).content.decode().count("ATOM") > 100
    stranger = Client()
    stranger.force_login(make_user("stranger@example.org"))
    assert stranger.get(url).status_code == 404


def test_docking_page_shows_receptor_site_and_each_pose(live_server, logged_in):
    from tests.conftest import run_job_now
    from workers.models import Job, Status

    page, client, _user, errors = logged_in
    target, site = make_target_with_site(client)
    client.post(reverse("design:docking_new"), {
        "target": target.pk, "site": site.pk, "ligands": "Nc1nc(N)c2c(Sc3ccccc3)cccc2n1 TQ3",
        # One core: Vina's search is then the same every time for a seed (with
        # two threads, which poses come back within its energy range varies).
        "exhaustiveness": 1, "n_poses": 3, "cpu": 1, "random_seed": 0})
    job = Job.objects.get(kind="design.docking")
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    poses_sdf = b"".join(client.get(reverse("job_download", args=[job.pk, "poses.sdf"])).streaming_content)
    n_poses = poses_sdf.decode().count("$$$$")
    assert n_poses >= 2
    page.goto(live_server.url + job.get_absolute_url())
    wait_for_viewer(page, "#docking-viewer")
    options = page.locator("select.pose-picker option")
    assert options.count() == n_poses
    assert options.nth(0).inner_text().startswith("TQ3 pose 1 (")

    def shown():
        return page.evaluate("""() => {
            const el = document.querySelector('#docking-viewer'), v = el.viewer;
            const poses = el.biofm.poses.map(p => p.model);
            const visible = poses.map(m => m.selectedAtoms({}).filter(a => a.style.stick).length);
            const pose = el.biofm.poses[el.biofm.shownPose].model.selectedAtoms({});
            return {models: v.getModel(0).selectedAtoms({}).length, poses: poses.length, visible,
                    centre: ['x', 'y', 'z'].map(k => pose.reduce((s, a) => s + a[k], 0) / pose.length),
                    pocket: el.biofm.sites[0].atoms};
        }""")

    state = shown()
    assert state["poses"] == n_poses and state["models"] > 1000 and state["pocket"] > 50
    assert state["visible"][0] > 10 and not any(state["visible"][1:])
    centre, size = job.result["site"]["center"], job.result["site"]["size"]
    assert all(abs(c - m) <= s / 2 for c, m, s in zip(state["centre"], centre, size))  # in the box
    page.select_option("select.pose-picker", "1")
    state = shown()
    assert state["visible"][1] > 10 and state["visible"][0] == 0
    assert not errors


@pytest.fixture
def atomica_weights(settings):
    settings.BIOFM_ATOMICA_CONFIG = str(FIXTURES / "atomica" / "model" / "config.json")
    settings.BIOFM_ATOMICA_WEIGHTS = str(FIXTURES / "atomica" / "model" / "weights.pt")
    from analysis.atomica import jobs

    jobs._model = None
    yield
    jobs._model = None


def test_atomica_importance_is_painted_on_the_structure(live_server, logged_in, atomica_weights, make_user,
                                                         settings):
    from tests.conftest import run_job_now
    from workers.models import Job, Status

    settings.BIOFM_ATOMICA_IMPORTANCE_MAX_BLOCKS = 19  # the first zinc site's blocks: one masking run

    page, client, _user, errors = logged_in
    structure = FIXTURES / "atomica" / "structures" / "1rmd.pdb"
    response = client.post(reverse("analysis:atomica_new"), {
        "structure": SimpleUploadedFile("1rmd.pdb", structure.read_bytes()), "mode": "atomica", "cutoff": 8,
        "importance": "on"})
    assert response.status_code == 302
    job = Job.objects.get()
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message
    chart = job.result["charts"][0]
    blocks = chart["blocks"]
    assert [b["value"] for b in blocks] == sorted((round(v, 6) for v in chart["importance_values"].values()),
                                                  reverse=True)

    page.goto(live_server.url + job.get_absolute_url())
    wait_for_viewer(page, "#atomica-viewer-0")
    state = page.evaluate("""() => {
        const el = document.querySelector('#atomica-viewer-0'), v = el.viewer;
        const colourOf = (xyz) => {
            const a = v.selectedAtoms({}).find(a => Math.abs(a.x - xyz[0]) + Math.abs(a.y - xyz[1])
                                                   + Math.abs(a.z - xyz[2]) < 0.01);
            return a && a.style.stick ? a.style.stick.color : null;
        };
        return {painted: el.biofm.painted, blocks: el.biofm.blocks,
                top: colourOf(el.biofm.blocks[0] && JSON.parse(document.getElementById(el.dataset.spec)
                       .textContent).importance.blocks[0].atoms[0]),
                bottom: colourOf(JSON.parse(document.getElementById(el.dataset.spec).textContent)
                       .importance.blocks.at(-1).atoms[0]),
                scale: !!document.querySelector('.viewer-scale-bar')};
    }""")
    assert state["painted"] == len(blocks)  # every block found in the file
    assert state["top"] == "#800026" and state["bottom"] == "#ffffcc"  # the scale's two ends
    shown = [b["value"] for b in state["blocks"]]
    assert shown == [b["value"] for b in blocks]
    assert state["scale"]
    assert not errors

    # The structure is served to the job's owner only.
    url = reverse("analysis:atomica_input", args=[job.params["items"][0]["input_id"]])
    assert client.get(url).status_code == 200
    stranger = Client()
    stranger.force_login(make_user("stranger@example.org"))
    assert stranger.get(url).status_code == 404


THREE_TO_ONE = {"ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C", "GLN": "Q", "GLU": "E", "GLY": "G",
                "HIS": "H", "ILE": "I", "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F", "PRO": "P", "SER": "S",
                "THR": "T", "TRP": "W", "TYR": "Y", "VAL": "V"}


def chain_residues(path: Path, chain: str) -> list[tuple[int, str]]:
    """(number, one-letter code) of a chain's residues with a CA, first altloc, in file order."""
    out = []
    for line in path.read_text().splitlines():
        if line.startswith("ATOM") and line[12:16].strip() == "CA" and line[21] == chain and line[16] in " A":
            out.append((int(line[22:26]), THREE_TO_ONE[line[17:20]]))
    return out


def test_esm_contact_pair_is_shown_on_a_local_structure(live_server, logged_in, tmp_path, settings):
    from tests.conftest import run_job_now
    from tests.esm_fixtures import write_tiny_esm2
    from workers.models import Job, Status

    write_tiny_esm2(tmp_path / "hub", name="esm2_t6_8M_UR50D", num_layers=6, embed_dim=32, heads=4, seed=1)
    settings.BIOFM_ESM_WEIGHTS_DIR = str(tmp_path / "hub" / "checkpoints")
    settings.BIOFM_ESM_ALLOW_DOWNLOAD = False
    page, client, _user, errors = logged_in
    residues = chain_residues(PROTEIN, "A")  # chain B is the same protein: the first best chain is shown
    sequence = "".join(code for _, code in residues[3:60])  # the map starts at the chain's 4th residue
    response = client.post("/api/v1/esm/embeddings", {"model": "esm2_t6_8M_UR50D", "include": ["mean", "contacts"],
                                                      "sequences": [{"id": "dhfr_b", "sequence": sequence}]},
                           content_type="application/json")
    assert response.status_code == 202, response.content
    job = Job.objects.get()
    run_job_now(job)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error_message

    page.goto(live_server.url + job.get_absolute_url())
    page.wait_for_selector("#contact-0 .main-svg", timeout=30_000)
    page.set_input_files("#contact-map input.contact-structure-file", str(PROTEIN))
    wait_for_viewer(page, "#contact-0-viewer")
    match = page.evaluate("() => document.querySelector('#contact-0-viewer').biofm.match")
    assert match == {"chain": "A", "offset": -3, "same": len(sequence), "overlap": len(sequence)}
    assert "Chain A" in page.inner_text("#contact-map .contact-structure-note")
    # Clicking the map's cell (5, 40) shows residues 5 and 40 of the sequence on the structure.
    x, y = page.evaluate("""() => {
        const chart = document.getElementById('contact-0');
        chart.scrollIntoView();
        const box = chart.getBoundingClientRect();
        const xa = chart._fullLayout.xaxis, ya = chart._fullLayout.yaxis;
        return [box.left + xa._offset + xa.l2p(5), box.top + ya._offset + ya.l2p(40)];
    }""")
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    page.wait_for_function("() => document.querySelector('#contact-0-viewer').biofm.pair !== null",
                           timeout=10_000)
    pair = page.evaluate("() => document.querySelector('#contact-0-viewer').biofm.pair")
    assert pair is not None
    assert [(p["chain"], p["resi"]) for p in pair] == [("A", residues[3 + 4][0]), ("A", residues[3 + 39][0])]
    sticks = page.evaluate("""() => {
        const v = document.querySelector('#contact-0-viewer').viewer;
        return v.selectedAtoms({chain: 'A'}).filter(a => a.style.stick).map(a => a.resi);
    }""")
    assert set(sticks) == {residues[7][0], residues[42][0]}
    assert not errors
