"""Template context every page gets: the navigation's list of job forms."""

from __future__ import annotations

from django.urls import reverse

from . import kinds


def new_job_links(request) -> dict:
    """One link per submission page, so the menu reaches every job kind
    (a page that several kinds share, as design's, is listed once)."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    links, seen = [], set()
    for kind in kinds.all_kinds():
        if not kind.submit_url_name:
            continue
        url = reverse(kind.submit_url_name)
        if url not in seen:
            seen.add(url)
            links.append({"label": kind.label, "url": url})
    return {"new_job_links": links}
