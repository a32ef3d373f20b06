"""Targets, binding sites, campaigns and their runs, and the shortlist.

Every model is scoped like workers.Job (accounts.scoping): its owner sees it,
and so do members of its lab when it is shared. Child objects (sites, runs)
are scoped through their parent, so `visible_to` is the only door into them.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.urls import reverse
from django.utils import timezone

from accounts.scoping import LabScoped, scoped_through

from .compute.structures import to_pdb_text


def structure_path(instance: "Target", filename: str) -> str:
    return f"design/targets/{instance.uid}/{filename}"


class Target(LabScoped):
    FORMATS = [("pdb", "PDB"), ("cif", "mmCIF")]

    uid = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    name = models.CharField(max_length=200)
    structure = models.FileField(upload_to=structure_path, max_length=300)
    format = models.CharField(max_length=8, choices=FORMATS)
    # [{"chain", "residues", "polymer", "ligands": ["NDP 195", ...]}], from gemmi at upload.
    chains = models.JSONField(default=list, blank=True)
    n_atoms = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("design:target_detail", args=[self.pk])

    def pdb_text(self) -> str:
        """The structure as PDB text, the format the site and docking code read."""
        with self.structure.open("rb") as fh:
            return to_pdb_text(fh.read(), self.format)


class BindingSite(models.Model):
    METHODS = [("ligand", "Co-crystallised ligand"), ("residues", "Residue list"), ("box", "Box")]

    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="sites")
    name = models.CharField(max_length=200)
    method = models.CharField(max_length=16, choices=METHODS)
    # What the user gave (ligand SDF, residue list, box), so the site can be rebuilt.
    params = models.JSONField(default=dict, blank=True)
    description = models.CharField(max_length=500, blank=True)
    center = models.JSONField(default=list)
    size = models.JSONField(default=list)
    residues = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    protein_atoms_in_box = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    objects = scoped_through("target").as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.target.name})"

    def get_absolute_url(self) -> str:
        return reverse("design:target_detail", args=[self.target_id]) + f"#site-{self.pk}"

    def as_site(self) -> dict:
        return {"center": list(self.center), "size": list(self.size), "residues": list(self.residues),
                "method": self.description or self.method, "warnings": list(self.warnings)}


class Campaign(LabScoped):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="campaigns")
    site = models.ForeignKey(BindingSite, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="campaigns")

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("design:campaign_detail", args=[self.pk])


class CampaignRun(models.Model):
    """A design.campaign_run job filed under its campaign. The history is
    written generation by generation while the job runs, so the page can
    draw it live; the final result lives on the job."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="runs")
    job = models.OneToOneField("workers.Job", on_delete=models.CASCADE, related_name="campaign_run")
    history = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = scoped_through("campaign").as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.campaign.name}: {self.job_id}"


class ShortlistEntry(LabScoped):
    smiles = models.CharField(max_length=2000)
    name = models.CharField(max_length=200, blank=True)
    source_job = models.ForeignKey("workers.Job", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="shortlisted")
    note = models.TextField(blank=True)
    scores = models.JSONField(default=dict, blank=True)

    class Meta(LabScoped.Meta):
        constraints = [models.UniqueConstraint(fields=["owner", "smiles"], name="one_shortlist_entry_per_smiles")]

    def __str__(self) -> str:
        return self.name or self.smiles
