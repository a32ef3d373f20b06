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
    page.wait_for_selector(f"{selector}[data-ready], {selector}[data-error]", timeout=30_000)
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
