"""Design pages: targets and sites, campaigns and their runs, the property
and docking forms, comparison, the shortlist, and depictions."""

from __future__ import annotations

import io

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.scoping import get_visible_or_404
from biofm_site.csvfile import csv_text
from workers.access import can_control, get_visible_job
from workers.models import Job
from workers.submit_page import job_form_page, submit_form

from . import model_properties, viewers
from .forms import CampaignForm, DockingForm, PropertiesForm, RunForm, ShortlistForm, ShortlistNoteForm, SiteForm, TargetForm
from .models import BindingSite, Campaign, CampaignRun, ShortlistEntry, Target
from .runs import submit_run


def _lab(user):
    return user.profile.default_lab


# ---------------------------------------------------------------- overview

@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    user = request.user
    return render(request, "design/index.html", {
        "targets": Target.objects.visible_to(user).select_related("owner"),
        "campaigns": Campaign.objects.visible_to(user).select_related("target", "site"),
        "jobs": Job.objects.visible_to(user).for_listing().filter(kind__startswith="design.")[:10],
        "shortlist_count": ShortlistEntry.objects.visible_to(user).count(),
    })


# ---------------------------------------------------------------- targets and sites

@login_required
@require_http_methods(["GET", "POST"])
def target_new(request: HttpRequest) -> HttpResponse:
    form = TargetForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["structure"]
        target = Target(owner=request.user, lab=form.chosen_lab(), shared=form.cleaned_data["shared"],
                        name=form.cleaned_data["name"], format=form.parsed["format"],
                        chains=form.parsed["chains"], n_atoms=form.parsed["n_atoms"])
        # Stored from the upload itself (the form rewound it), not from a second copy in memory.
        target.structure.save(upload.name.rsplit("/", 1)[-1], upload, save=False)
        target.save()
        messages.success(request, f"Target “{target.name}” added; now define its binding site.")
        return redirect(target)
    return render(request, "design/form.html", {
        "form": form, "heading": "New target",
        "intro": "A protein structure, parsed with gemmi. Receptor preparation for docking (Meeko) "
                 "happens in each docking job; what it had to remove is reported there, by reason."},
        status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def target_detail(request: HttpRequest, pk: int) -> HttpResponse:
    target = get_visible_or_404(Target, request.user, pk)
    form = SiteForm(request.POST or None, request.FILES or None, target=target)
    if request.method == "POST":
        if target.owner_id != request.user.pk:
            raise Http404("No such target.")
        if form.is_valid():
            site = form.cleaned_data["site"]
            BindingSite.objects.create(
                target=target, name=form.cleaned_data["name"], method=form.cleaned_data["method"],
                params=form.cleaned_data["given"], description=site.method, center=list(site.center),
                size=list(site.size), residues=list(site.residues), warnings=list(site.warnings),
                protein_atoms_in_box=site.protein_atoms_in_box)
            if site.warnings:
                messages.warning(request, "Binding site saved, with warnings: " + "; ".join(site.warnings))
            else:
                messages.success(request, "Binding site saved.")
            return redirect(target)
    sites = list(target.sites.all())
    return render(request, "design/target_detail.html", {
        "target": target, "sites": sites, "form": form, "viewer": viewers.target_spec(target, sites),
        "campaigns": target.campaigns.visible_to(request.user),
        "is_owner": target.owner_id == request.user.pk,
    }, status=400 if form.errors else 200)


@login_required
@require_GET
def target_structure(request: HttpRequest, pk: int) -> HttpResponse:
    """The target's structure as PDB text (mmCIF converted), for the 3D viewer."""
    target = get_visible_or_404(Target, request.user, pk)
    response = HttpResponse(target.pdb_text(), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="target-{target.pk}.pdb"'
    return response


# ---------------------------------------------------------------- campaigns

@login_required
@require_http_methods(["GET", "POST"])
def campaign_new(request: HttpRequest) -> HttpResponse:
    initial = {}
    if request.GET.get("target"):
        initial["target"] = request.GET["target"]
    form = CampaignForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        campaign = Campaign.objects.create(owner=request.user, lab=form.chosen_lab(), shared=d["shared"],
                                           name=d["name"], description=d["description"], target=d["target"],
                                           site=d["site"])
        return redirect(campaign)
    return render(request, "design/form.html", {
        "form": form, "heading": "New campaign",
        "intro": "A campaign groups the generation runs for one target and binding site."},
        status=400 if form.errors else 200)


def _run_summary(run: CampaignRun) -> dict:
    result = run.job.result or {}
    population = result.get("population") or []
    best = population[0] if population else None
    return {"run": run, "job": run.job, "best": best, "evaluated": result.get("evaluated"),
            "front": sum(1 for m in population if m.get("front"))}


@login_required
@require_GET
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_visible_or_404(Campaign, request.user, pk)
    runs = [_run_summary(r) for r in campaign.runs.select_related("job")]
    return render(request, "design/campaign_detail.html", {"campaign": campaign, "runs": runs})


@login_required
@require_http_methods(["GET", "POST"])
def run_new(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_visible_or_404(Campaign, request.user, pk)
    source = None
    initial = {}
    if request.GET.get("from"):
        source = get_visible_job(request.user, request.GET["from"])
        if source.kind != "design.campaign_run":
            raise Http404("Not a campaign run.")
        initial = RunForm.initial_from(source.params)
        initial["title"] = source.title
    form = RunForm(request.POST or None, campaign=campaign, initial=initial, user=request.user)
    if request.method == "POST" and form.is_valid():
        if request.POST.get("rerun_of"):
            source = get_visible_job(request.user, request.POST["rerun_of"])
        job = submit_form(form, "design.campaign_run", rerun_of=source,
                          submit=lambda user, params, **options: submit_run(user, campaign, params, **options))
        if job is not None:
            return redirect("design:run_detail", job.pk)
    return render(request, "design/run_form.html", {"form": form, "campaign": campaign, "source": source},
                  status=400 if form.errors else 200)


def _visible_run(user, job_id) -> CampaignRun:
    job = get_visible_job(user, job_id)
    run = CampaignRun.objects.filter(job=job).select_related("campaign", "job").first()
    if run is None:
        raise Http404("That job is not a campaign run.")
    return run


@login_required
@require_GET
def run_detail(request: HttpRequest, job_id) -> HttpResponse:
    run = _visible_run(request.user, job_id)
    job = run.job
    objectives = (job.params or {}).get("objectives") or []
    labels = model_properties.labels_for([o.get("property") for o in objectives])
    return render(request, "design/run_detail.html", {
        "run": run, "job": job, "campaign": run.campaign, "can_control": can_control(request.user, job),
        "files": job.files.all(),
        "objectives": [{**o, "label": labels.get(o.get("property"), o.get("property"))} for o in objectives],
    })


@login_required
@require_GET
def run_history(request: HttpRequest, job_id) -> JsonResponse:
    """Polled by the run page while the GA runs: one entry per generation so far."""
    run = _visible_run(request.user, job_id)
    return JsonResponse({"status": run.job.status, "progress": run.job.progress, "history": run.history})


@login_required
@require_GET
def compare(request: HttpRequest) -> HttpResponse:
    a, b = request.GET.get("a"), request.GET.get("b")
    if not a or not b:
        raise Http404("Choose two runs to compare.")
    runs = [_visible_run(request.user, a), _visible_run(request.user, b)]
    differences = param_differences(runs[0].job.params, runs[1].job.params, ignore={"campaign_id"})
    # A model objective reads as its display name, not its key.
    labels = model_properties.labels_for([v for _, a, b in differences for v in (a, b)])
    differences = [(k, labels.get(a, a), labels.get(b, b)) for k, a, b in differences]
    sets = [{m["smiles"] for m in (r.job.result or {}).get("population", [])} for r in runs]
    return render(request, "design/compare.html", {
        "runs": [_run_summary(r) for r in runs],
        "differences": differences,
        "shared_molecules": len(sets[0] & sets[1]),
        "histories": {"a": runs[0].job.result.get("history") or runs[0].history,
                      "b": runs[1].job.result.get("history") or runs[1].history},
        "tops": [(r.job.result or {}).get("population", [])[:10] for r in runs],
    })


_MISSING = object()


def flatten_params(value, prefix: str = "") -> dict[str, object]:
    """Nested params as dotted keys (objectives.0.property), so two runs
    compare leaf by leaf; a list of plain values stays one leaf."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        items = enumerate(value)
    else:
        return {prefix: value}
    flat: dict[str, object] = {}
    for key, sub in items:
        flat.update(flatten_params(sub, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def readable_param(value) -> str:
    if value is _MISSING:
        return "(not set)"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return ", ".join(readable_param(v) for v in value) or "(empty)"
    return str(value)


def param_differences(a: dict, b: dict, ignore=frozenset()) -> list[tuple[str, str, str]]:
    """(dotted key, A, B) for the leaves whose values differ, in key order."""
    flat_a, flat_b = flatten_params(a or {}), flatten_params(b or {})
    rows = []
    for key in sorted(set(flat_a) | set(flat_b)):
        if key.split(".", 1)[0] in ignore:
            continue
        left, right = flat_a.get(key, _MISSING), flat_b.get(key, _MISSING)
        if left != right:
            rows.append((key, readable_param(left), readable_param(right)))
    return rows


# ---------------------------------------------------------------- property and docking jobs

@login_required
@require_http_methods(["GET", "POST"])
def properties_new(request: HttpRequest) -> HttpResponse:
    return job_form_page(
        request, PropertiesForm(request.POST or None, request.FILES or None, user=request.user), "design.properties",
        heading="Molecular property prediction", template="design/form.html",
        intro="Each property is computed by the method named beside it on the results page (RDKit descriptors, "
        "ESOL, QED, SA score, Lipinski/Veber, Abbott score, PAINS/Brenk/NIH alerts). Rows RDKit cannot "
        "read are listed with RDKit's reason; the others are scored. A registered model you choose adds its "
        "prediction, named with its method, training data and test metric, with the ensemble's standard "
        "deviation and its applicability-domain flag.")


@login_required
@require_http_methods(["GET", "POST"])
def docking_new(request: HttpRequest) -> HttpResponse:
    initial = {k: request.GET[k] for k in ("target", "site") if request.GET.get(k)}
    return job_form_page(
        request, DockingForm(request.POST or None, request.FILES or None, user=request.user, initial=initial),
        "design.docking",
        heading="Docking (AutoDock Vina)", template="design/form.html",
        intro="Meeko prepares the receptor and each ligand; Vina docks into the binding site's box on the "
        "chosen number of cores. The best pose's score (kcal/mol) is the affinity shown; every pose "
        "downloads as SDF.")


# ---------------------------------------------------------------- shortlist

@login_required
@require_GET
def shortlist(request: HttpRequest) -> HttpResponse:
    entries = ShortlistEntry.objects.visible_to(request.user).select_related("source_job", "owner")
    return render(request, "design/shortlist.html", {"entries": entries})


@login_required
@require_POST
def shortlist_add(request: HttpRequest) -> HttpResponse:
    """Add one molecule. From htmx (the result tables' button) the answer is
    the button itself, swapped in place so the page keeps its scroll; without
    JavaScript it is a redirect back to `next` with a message."""
    form = ShortlistForm(request.POST)
    htmx = request.headers.get("HX-Request") == "true"

    def button(error: str = "") -> HttpResponse:
        return render(request, "design/partials/shortlist_button.html", {
            "smiles": request.POST.get("smiles", ""), "name": request.POST.get("name", ""),
            "source_job": request.POST.get("source_job", ""), "on_list": not error, "error": error})

    if not form.is_valid():
        error = "Could not shortlist: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        if htmx:
            return button(error)
        messages.error(request, error)
        return redirect("design:shortlist")
    d = form.cleaned_data
    from rdkit import Chem

    from design.compute.molecules import parse_smiles

    from .kind import molecule_limits

    try:
        # Shortlisted molecules are drawn on the shortlist page: the drawing's caps.
        smiles = Chem.MolToSmiles(parse_smiles(d["smiles"], limits=molecule_limits("depict")))
    except ValueError as exc:
        if htmx:
            return button(str(exc))
        messages.error(request, str(exc))
        return redirect("design:shortlist")
    job = get_visible_job(request.user, d["source_job"]) if d["source_job"] else None
    scores = _scores_from(job, smiles) if job else {}
    try:
        with transaction.atomic():
            ShortlistEntry.objects.create(owner=request.user, lab=_lab(request.user), smiles=smiles,
                                          name=d["name"], source_job=job, note=d["note"], scores=scores)
        if not htmx:
            messages.success(request, f"Shortlisted {d['name'] or smiles}.")
    except IntegrityError:
        if not htmx:
            messages.info(request, f"{smiles} is already on your shortlist.")
    if htmx:
        return button()
    # Only a relative path on this site: `next` comes from the form, so anyone
    # could make it point elsewhere (an open redirect).
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts=None):
        next_url = reverse("design:shortlist")
    return redirect(next_url)


def _scores_from(job: Job, smiles: str) -> dict:
    """The numbers the source job computed for this molecule, kept with the entry."""
    result = job.result or {}
    for m in result.get("population", []):
        if m.get("smiles") == smiles:
            return {**m.get("properties", {}), "score": m.get("score")}
    for row in result.get("rows", []):
        if row.get("smiles") == smiles:
            return {k: v for k, v in row.get("values", {}).items() if not isinstance(v, list)}
    from rdkit import Chem

    for lig in result.get("ligands", []):
        mol = Chem.MolFromSmiles(lig.get("smiles") or "")
        if mol is not None and Chem.MolToSmiles(mol) == smiles and lig.get("best_score") is not None:
            return {"docking_score": lig["best_score"]}
    return {}


@login_required
@require_POST
def shortlist_remove(request: HttpRequest, pk: int) -> HttpResponse:
    entry = ShortlistEntry.objects.filter(owner=request.user, pk=pk).first()
    if entry is None:
        raise Http404("No such shortlist entry.")
    entry.delete()
    messages.success(request, "Removed from the shortlist.")
    return redirect("design:shortlist")


@login_required
@require_POST
def shortlist_note(request: HttpRequest, pk: int) -> HttpResponse:
    """Edit an entry's note; only its owner can (anyone else gets a 404)."""
    entry = ShortlistEntry.objects.filter(owner=request.user, pk=pk).first()
    if entry is None:
        raise Http404("No such shortlist entry.")
    form = ShortlistNoteForm(request.POST, instance=entry)
    if form.is_valid():
        form.save()
        messages.success(request, f"Note saved for {entry}.")
    else:
        messages.error(request, "Note not saved: " + " ".join(form.errors.get("note", [])))
    return redirect(reverse("design:shortlist") + f"#entry-{entry.pk}")


@login_required
@require_GET
def shortlist_export(request: HttpRequest, fmt: str) -> HttpResponse:
    entries = list(ShortlistEntry.objects.visible_to(request.user).select_related("source_job"))
    keys = sorted({k for e in entries for k in e.scores})
    if fmt == "csv":
        response = HttpResponse(csv_text(
            ["name", "smiles", "note", "source_job"] + keys,
            ([e.name, e.smiles, e.note, e.source_job_id or ""] + [e.scores.get(k, "") for k in keys]
             for e in entries)), content_type="text/csv")
    elif fmt == "sdf":
        from rdkit import Chem

        out = io.StringIO()
        writer = Chem.SDWriter(out)
        for e in entries:
            mol = Chem.MolFromSmiles(e.smiles)
            if mol is None:
                continue
            mol.SetProp("_Name", e.name or e.smiles)
            for key, value in [("smiles", e.smiles), ("note", e.note)] + [(k, e.scores.get(k)) for k in keys]:
                mol.SetProp(key, "" if value is None else str(value))
            writer.write(mol)
        writer.close()
        response = HttpResponse(out.getvalue(), content_type="chemical/x-mdl-sdfile")
    else:
        raise Http404("Export as csv or sdf.")
    response["Content-Disposition"] = f'attachment; filename="shortlist.{fmt}"'
    return response


# ---------------------------------------------------------------- depictions

@login_required
@require_GET
@cache_control(private=True, max_age=86400)
def depict(request: HttpRequest) -> HttpResponse:
    """An RDKit SVG of one SMILES, for the result tables' <img> tags. Drawn
    in the request, so the molecule's size is capped first (a 60-atom
    macrocycle once took minutes): over a cap is a 400 naming it."""
    from design.compute.depict import mol_to_svg
    from design.compute.molecules import MoleculeTooLarge

    from .kind import molecule_limits

    smiles = request.GET.get("smiles", "")
    if not smiles:
        raise Http404("Give a SMILES.")
    try:
        svg = mol_to_svg(smiles, width=200, height=150, limits=molecule_limits("depict"))
    except MoleculeTooLarge as exc:
        return HttpResponse(f"Not drawn: {exc}.", status=400, content_type="text/plain; charset=utf-8")
    except ValueError:
        raise Http404("Not a valid SMILES.") from None
    return HttpResponse(svg, content_type="image/svg+xml")
