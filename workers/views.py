"""Dashboard, job list, job detail with its live progress partial, and the
job actions (cancel, rerun, download)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Case, Count, DurationField, ExpressionWrapper, F, FloatField, Q, When
from django.db.models.functions import Coalesce, Extract, Lower, Now
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from . import kinds, lifecycle
from .access import can_control, get_visible_job
from .context import HARDWARE
from .errors import ParamsError
from .forms import JobListFilter
from .models import Job, Status
from .quotas import QuotaExceeded, labs_usage

# What the polled progress partial shows (and what visibility and
# can_control need): the row without its heavy JSON, so polling stays cheap.
PROGRESS_FIELDS = (
    "id", "kind", "status", "progress", "progress_message", "cancel_requested", "dispatched_at",
    "started_at", "finished_at", "attempts", "worker_host", "error_kind", "error_message",
    "owner_id", "lab_id", "shared",
)


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        # The front page tells a visitor what the portal is before asking them
        # to log in; every other page still needs an account.
        return render(request, "home.html", {
            "kinds": [k for k in kinds.all_kinds() if k.submit_url_name],
        })
    user = request.user
    labs = [m.lab for m in user.memberships.select_related("lab")]
    usage_by_lab = labs_usage(labs)
    counts = Job.objects.filter(owner=user).aggregate(
        running=Count("pk", filter=Q(status=Status.RUNNING)),
        queued=Count("pk", filter=Q(status=Status.QUEUED)))
    return render(request, "workers/dashboard.html", {
        "recent": Job.objects.visible_to(user).for_listing()[:10],
        "running": counts["running"],
        "queued": counts["queued"],
        "limit": user.profile.running_limit,
        "usage": [(lab, usage_by_lab[lab.pk][hw]) for lab in labs for hw in HARDWARE],
        "kinds": kinds.all_kinds(),
    })


# ?sort= values the job list accepts (a leading "-" sorts descending); any
# other value falls back to the default, so no column name reaches order_by.
JOB_SORTS = {"created": "created_at", "kind": "kind", "status": "status", "title": "title", "runtime": "run_time"}
DEFAULT_JOB_SORT = "-created"


def _run_time():
    """Worker time over all attempts where recorded, else finished (or now) minus started."""
    elapsed = ExpressionWrapper(Coalesce(F("finished_at"), Now()) - F("started_at"), output_field=DurationField())
    return Case(When(run_seconds__gt=0, then=F("run_seconds")),
                When(started_at__isnull=False, then=Extract(elapsed, "epoch")),
                default=None, output_field=FloatField())


@login_required
@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = Job.objects.visible_to(request.user).for_listing()
    kind = request.GET.get("kind", "")
    status = request.GET.get("status", "")
    filters = JobListFilter(request.GET)
    filters.is_valid()  # a bad date is reported next to its field; the other filters still apply
    given = filters.cleaned_data
    if kind:
        jobs = jobs.filter(kind=kind)
    if status:
        jobs = jobs.filter(status=status)
    if given.get("q"):
        jobs = jobs.filter(title__icontains=given["q"])
    if given.get("since"):
        jobs = jobs.filter(created_at__date__gte=given["since"])
    if given.get("until"):
        jobs = jobs.filter(created_at__date__lte=given["until"])
    sort = request.GET.get("sort", DEFAULT_JOB_SORT)
    if sort.lstrip("-") not in JOB_SORTS:
        sort = DEFAULT_JOB_SORT
    field = JOB_SORTS[sort.lstrip("-")]
    if field == "run_time":
        jobs = jobs.annotate(run_time=_run_time())
    # Titles sort as people read them, whatever the database collation does with case.
    key = Lower("title") if field == "title" else F(field)
    order = key.desc(nulls_last=True) if sort.startswith("-") else key.asc(nulls_last=True)
    # The primary key breaks ties, so pages neither repeat nor skip a job.
    jobs = jobs.order_by(order, "-created_at", "pk")
    page = Paginator(jobs, 25).get_page(request.GET.get("page"))
    template = "workers/partials/job_table.html" if request.htmx else "workers/job_list.html"
    return render(request, template, {
        "page": page, "kind": kind, "status": status, "filters": filters, "sort": sort,
        "columns": _sort_links(sort),
        "kind_choices": kinds.choices(), "status_choices": Status.choices,
    })


def _sort_links(sort: str) -> dict[str, dict]:
    """Per sortable column: the ?sort= its header link sets and its current direction."""
    links = {}
    for name in JOB_SORTS:
        current = "asc" if sort == name else "desc" if sort == f"-{name}" else ""
        # A click on the current column flips it; a new column starts newest/largest/A first.
        first = name if name in ("kind", "status", "title") else f"-{name}"
        links[name] = {"sort": (f"-{name}" if current == "asc" else name) if current else first,
                       "dir": current}
    return links


@login_required
@require_GET
def job_detail(request: HttpRequest, job_id) -> HttpResponse:
    job = get_visible_job(request.user, job_id)
    return render(request, "workers/job_detail.html",
                  {**_detail_context(request, job), "params": _param_rows(job.params)})


@login_required
@require_GET
def job_progress(request: HttpRequest, job_id) -> HttpResponse:
    """The polled partial. Once the job has ended it answers without the
    polling trigger, and tells htmx to refresh the page so results appear."""
    job = get_visible_job(request.user, job_id, Job.objects.only(*PROGRESS_FIELDS))
    response = render(request, "workers/partials/progress.html", _detail_context(request, job))
    if job.is_final and request.GET.get("was") in {"queued", "running"}:
        response["HX-Refresh"] = "true"
    return response


PARAM_DISPLAY_CHARS = 300


def _param_rows(params: dict) -> list[tuple[str, str]]:
    """The job's parameters for its page; long values (a whole FASTA, say)
    are cut, with their full length said."""
    import json

    rows = []
    for key, value in (params or {}).items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if len(text) > PARAM_DISPLAY_CHARS:
            text = f"{text[:PARAM_DISPLAY_CHARS]}… ({len(text):,} characters in all)"
        rows.append((key, text))
    return rows


def _time_left(job: Job) -> str:
    seconds = job.seconds_left()
    if seconds is None:
        return ""
    if seconds < 60:
        return "less than a minute left"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"about {minutes} min left"
    return f"about {round(minutes / 60)} h left"


def _detail_context(request, job: Job) -> dict:
    return {
        "job": job,
        "time_left": _time_left(job),
        "kind": job.kind_spec,
        "files": job.files.all(),
        "can_control": can_control(request.user, job),
        "is_owner": job.owner_id == request.user.pk,
    }


@login_required
@require_POST
def job_cancel(request: HttpRequest, job_id) -> HttpResponse:
    job = get_visible_job(request.user, job_id)
    if not can_control(request.user, job):
        raise Http404("No such job.")
    job = lifecycle.cancel(job)
    if request.htmx:
        return render(request, "workers/partials/progress.html", _detail_context(request, job))
    messages.info(request, "Cancellation requested." if not job.is_final else "Job cancelled.")
    return redirect(job)


@login_required
@require_POST
def job_rerun(request: HttpRequest, job_id) -> HttpResponse:
    job = get_visible_job(request.user, job_id)
    try:
        new = lifecycle.rerun(job, request.user)
    except (ParamsError, QuotaExceeded) as exc:
        messages.error(request, str(exc))
        return redirect(job)
    messages.success(request, "A new job was submitted with the same parameters.")
    return redirect(new)


@login_required
@require_GET
def job_download(request: HttpRequest, job_id, name: str) -> FileResponse:
    job = get_visible_job(request.user, job_id)
    jf = job.files.named(name)
    if jf is None:
        raise Http404("No such file.")
    return FileResponse(jf.file.open("rb"), as_attachment=True, filename=jf.name,
                        content_type=jf.content_type)
