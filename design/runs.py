"""Submitting a campaign run: the job and its CampaignRun row in one transaction."""

from __future__ import annotations

from django.db import transaction

from workers import lifecycle
from workers.models import Job

from .models import Campaign, CampaignRun


def submit_run(user, campaign: Campaign, params: dict, *, title: str = "", shared: bool = False,
               lab=None, rerun_of: Job | None = None) -> Job:
    """Submit a campaign run and file it under its campaign."""
    with transaction.atomic():
        job = lifecycle.submit(user, "design.campaign_run", params, title=title, shared=shared,
                               lab=lab, rerun_of=rerun_of)
        CampaignRun.objects.create(campaign=campaign, job=job)
    return job
