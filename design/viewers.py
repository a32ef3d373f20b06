"""What the 3D viewer (static/js/viewer.js) is given for design pages: the
structure to load, each binding site's residues and box, docked poses."""

from __future__ import annotations

from django.urls import reverse


def residue_selection(residue_id: str) -> dict | None:
    """“A:GLU:30” or “A:GLU:30B” (a BindingSite residue) as a 3Dmol selection."""
    chain, _, rest = residue_id.partition(":")
    number = rest.rpartition(":")[2].rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    try:
        return {"chain": chain, "resi": int(number)}
    except ValueError:
        return None


def site_spec(site: dict) -> dict:
    """A site as BindingSite.as_site() (or a docking result) gives it."""
    residues = [sel for sel in map(residue_selection, site.get("residues") or []) if sel]
    return {"name": site.get("name", ""), "residues": residues, "center": site.get("center"),
            "size": site.get("size")}


def target_spec(target, sites) -> dict:
    return {"structure": {"url": reverse("design:target_structure", args=[target.pk]), "format": "pdb"},
            "sites": [site_spec({**s.as_site(), "name": s.name}) for s in sites]}


def docking_spec(job) -> dict | None:
    """The receptor Vina docked into (its PDBQT), the site's box and the
    poses; None when the job kept no poses file."""
    names = set(job.files.values_list("name", flat=True))
    if not {"poses.sdf", "receptor.pdbqt"} <= names:
        return None
    result = job.result or {}
    return {"structure": {"url": reverse("job_download", args=[job.pk, "receptor.pdbqt"]), "format": "pdbqt"},
            "sites": [site_spec(result["site"])] if result.get("site") else [],
            "poses": {"url": reverse("job_download", args=[job.pk, "poses.sdf"]), "format": "sdf"}}
