"""The operators' view of jobs: inspection, the three repairs (cancel, requeue,
mark failed) and the worker/queue health page.

Everything the lifecycle writes is read-only here: a hand-edited status or
claim token would break the guarantees in workers/lifecycle.py.
"""

from __future__ import annotations

import functools
import json
from collections import Counter

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import FileResponse, Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.template.loader import render_to_string
from django.utils.html import format_html

from . import health, kinds, lifecycle
from .models import Attempt, Job, JobFile, Status


def _pretty_json(value) -> str:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)


def _human_size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class JobFileInline(admin.TabularInline):
    model = JobFile
    extra = 0
    can_delete = False
    fields = ("name", "content_type", "size_display", "attempt_token", "created_at", "download")
    readonly_fields = fields
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="size")
    def size_display(self, jf: JobFile) -> str:
        return _human_size(jf.size)

    @admin.display(description="download")
    def download(self, jf: JobFile) -> str:
        # The site's own download view only serves jobs visible to the
        # requesting user, which an operator's usually are not.
        url = reverse("admin:workers_job_file", args=[jf.job_id, jf.pk])
        return format_html('<a href="{}">Download</a>', url)


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(round(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("short_id", "kind", "owner_email", "lab", "status", "progress_display",
                    "attempts", "worker_host", "created_at", "started_at", "finished_at")
    list_display_links = ("short_id",)
    list_filter = ("status", "kind", "queue", "hardware", "error_kind", ("lab", admin.RelatedOnlyFieldListFilter))
    search_fields = ("id", "owner__email", "title", "celery_task_id", "worker_host")
    list_select_related = ("owner", "lab")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    inlines = (JobFileInline,)
    actions = ("cancel_jobs", "requeue_jobs", "mark_failed")
    # The site's job page only shows jobs visible to the viewer.
    view_on_site = False

    fieldsets = (
        (None, {"fields": ("id", "kind", "title", "owner", "lab", "shared", "queue", "rerun_of")}),
        ("Parameters and result", {"fields": ("params_json", "input_facts_json", "result_json")}),
        ("State", {"fields": ("status", "progress", "progress_message", "cancel_requested",
                              "error_kind", "error_message", "error_detail_text")}),
        ("Timing", {"fields": ("created_at", "dispatched_at", "started_at", "finished_at",
                               "updated_at", "run_seconds", "hardware", "files_pruned_at")}),
        ("Worker and claim", {"fields": ("attempts", "worker_host", "celery_task_id",
                                         "claim_token", "lease_expires_at")}),
        # A read-only table rather than an inline: nothing in it is editable,
        # and an inline would add a formset to every save of the job.
        ("Attempts and their phases", {"fields": ("attempts_table",)}),
    )
    # Only the title and the sharing flag are the operator's to change; the lab
    # stays read-only because submission checked the owner's membership of it.
    readonly_fields = (
        "id", "kind", "owner", "lab", "queue", "rerun_of", "params_json", "input_facts_json", "result_json",
        "status", "progress", "progress_message", "cancel_requested", "error_kind",
        "error_message", "error_detail_text", "created_at", "dispatched_at", "started_at",
        "finished_at", "updated_at", "run_seconds", "hardware", "files_pruned_at", "attempts", "worker_host",
        "celery_task_id", "claim_token", "lease_expires_at", "attempts_table",
    )

    def has_add_permission(self, request):
        return False  # jobs are submitted through lifecycle.submit, never typed in

    def get_urls(self):
        # Before the defaults: their "<path:object_id>/" would swallow this.
        return [
            path("<uuid:job_id>/files/<int:file_id>/",
                 self.admin_site.admin_view(self.download_file), name="workers_job_file"),
            *super().get_urls(),
        ]

    def download_file(self, request, job_id, file_id):
        jf = JobFile.objects.select_related("job").filter(pk=file_id, job_id=job_id).first()
        if jf is None or not self.has_view_permission(request, jf.job):
            raise Http404("No such file.")
        return FileResponse(jf.file.open("rb"), as_attachment=True, filename=jf.name,
                            content_type=jf.content_type)

    # --- Columns and read-only fields -------------------------------------

    @admin.display(description="id", ordering="id")
    def short_id(self, job: Job) -> str:
        return str(job.id)[:8]

    @admin.display(description="owner", ordering="owner__email")
    def owner_email(self, job: Job) -> str:
        return job.owner.email

    @admin.display(description="progress", ordering="progress")
    def progress_display(self, job: Job) -> str:
        return f"{job.progress:.0f}%"

    @admin.display(description="params")
    def params_json(self, job: Job) -> str:
        return _pretty_json(job.params)

    @admin.display(description="input facts")
    def input_facts_json(self, job: Job) -> str:
        return _pretty_json(job.input_facts)

    @admin.display(description="result")
    def result_json(self, job: Job) -> str:
        return _pretty_json(job.result)

    @admin.display(description="attempts")
    def attempts_table(self, job: Job) -> str:
        attempts = [
            {"attempt": a, "waited": _seconds(a.queue_seconds), "ran": _seconds(a.duration_seconds()),
             "phases": [{**p, "display": _seconds(p.get("seconds"))} for p in a.phases]}
            for a in job.attempt_log.order_by("claimed_at")
        ]
        return render_to_string("admin/workers/attempts_table.html", {"attempts": attempts})

    @admin.display(description="error detail")
    def error_detail_text(self, job: Job) -> str:
        if not job.error_detail:
            return "—"
        return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', job.error_detail)

    # --- Actions ------------------------------------------------------------

    def _report(self, request, done: int, parts: list[str]) -> None:
        level = messages.SUCCESS if done else messages.WARNING
        self.message_user(request, " ".join(parts), level)

    @admin.action(description="Cancel selected jobs", permissions=["change"])
    def cancel_jobs(self, request, queryset):
        outcome = Counter()
        for job in queryset:
            was_final = job.is_final
            job = lifecycle.cancel(job)
            if was_final:
                outcome["final"] += 1
            elif job.status == Status.CANCELLED:
                outcome["cancelled"] += 1
            else:
                outcome["asked"] += 1
        parts = [f"Cancelled {_plural(outcome['cancelled'], 'job')}."]
        if outcome["asked"]:
            parts.append(f"Asked {_plural(outcome['asked'], 'running job')} to stop; "
                         "each stops at its next progress report.")
        if outcome["final"]:
            parts.append(f"Skipped {outcome['final']} already finished.")
        self._report(request, outcome["cancelled"] + outcome["asked"], parts)

    @admin.action(description="Requeue selected jobs", permissions=["change"])
    def requeue_jobs(self, request, queryset):
        outcome = Counter(health.requeue(job) for job in queryset)
        sent, waiting = outcome[health.Requeue.SENT], outcome[health.Requeue.WAITING]
        parts = [f"Requeued {_plural(sent + waiting, 'job')}"
                 + (f" ({sent} sent to a worker, {waiting} waiting for a free slot under "
                    "the owner's running limit or for the broker)." if waiting else ".")]
        if outcome[health.Requeue.ACTIVE]:
            parts.append(f"Skipped {outcome[health.Requeue.ACTIVE]} still queued or running "
                         "with a live lease: only finished or stuck jobs are requeued "
                         "(cancel a running job first).")
        if outcome[health.Requeue.UNKNOWN_KIND]:
            parts.append(f"Skipped {outcome[health.Requeue.UNKNOWN_KIND]} whose job kind is "
                         "no longer registered.")
        self._report(request, sent + waiting, parts)

    @admin.action(description="Mark selected as failed", permissions=["change"])
    def mark_failed(self, request, queryset):
        outcome = Counter(health.mark_failed(job) for job in queryset)
        parts = [f"Marked {_plural(outcome[True], 'job')} failed."]
        if outcome[False]:
            parts.append(f"Skipped {outcome[False]} already finished.")
        self._report(request, outcome[True], parts)


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    """Attempts across jobs, to compare workers and queues; written only by the lifecycle."""

    list_display = ("job_link", "number", "worker", "queue", "hardware", "waited", "claimed_at", "phase_summary",
                    "ended_at", "outcome", "last_heartbeat_at")
    list_filter = ("outcome", "queue", "hardware", "worker", "job__kind")
    search_fields = ("job__id", "worker")
    list_select_related = ("job",)
    date_hierarchy = "claimed_at"
    ordering = ("-claimed_at",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="job", ordering="job")
    def job_link(self, attempt: Attempt) -> str:
        url = reverse("admin:workers_job_change", args=[attempt.job_id])
        return format_html('<a href="{}">{}</a>', url, attempt.job)

    @admin.display(description="waited in queue", ordering="queue_seconds")
    def waited(self, attempt: Attempt) -> str:
        return _seconds(attempt.queue_seconds)

    @admin.display(description="phases")
    def phase_summary(self, attempt: Attempt) -> str:
        return " · ".join(f"{p.get('name')} {_seconds(p.get('seconds'))}" for p in attempt.phases) or "—"


HEALTH_PERMISSION = "workers.view_worker_health"


def health_view(request):
    # admin_view has already sent a non-staff user to the login page.
    if not request.user.has_perm(HEALTH_PERMISSION):
        raise PermissionDenied
    report = health.gather()
    changelist = reverse("admin:workers_job_changelist")
    context = {
        **admin.site.each_context(request),
        "title": "Worker and queue health",
        "opts": Job._meta,
        "health": report,
        # Only the job queues map onto jobs; "notify" carries emails.
        "queue_rows": [
            (q, changelist + f"?queue={q.name}&status__exact=queued"
             if q.name in kinds.QUEUES else None)
            for q in report.broker.queues
        ],
        "status_rows": [
            (label, report.jobs.counts.get(value, 0),
             changelist + f"?status__exact={value}")
            for value, label in Status.choices
        ],
        "waiting_url": changelist + "?status__exact=queued&dispatched_at__isnull=True",
    }
    return TemplateResponse(request, "admin/workers/health.html", context)


def _with_health_url(get_urls):
    # The default AdminSite has no hook for an extra page, and replacing the
    # site would mean changing settings; wrapping its URL list is the least
    # intrusive way to serve /admin/workers/health/ behind admin_view (staff).
    def urls():
        return [
            path("workers/health/", admin.site.admin_view(health_view), name="workers_health"),
            *get_urls(),
        ]

    return urls


admin.site.get_urls = _with_health_url(admin.site.get_urls)


def _refusing_unknown_selection(response_action):
    # Django filters the change list by the posted ids as they come, so an id
    # that is no value of the primary key ("abc", a UUID for an integer key: a
    # hand-made POST) raised a 500 instead of selecting nothing. Wrapped on
    # ModelAdmin itself because Django's and allauth's admins share the method.
    @functools.wraps(response_action)
    def checked(model_admin, request, queryset):
        pk = model_admin.model._meta.pk
        try:
            for value in request.POST.getlist(ACTION_CHECKBOX_NAME):
                value = pk.to_python(value)
                if isinstance(value, int):
                    low, high = connection.ops.integer_field_range(pk.get_internal_type())
                    if not (low is None or low <= value) or not (high is None or value <= high):
                        raise ValidationError("out of range")
        except ValidationError:
            model_admin.message_user(
                request, f"The selection names {model_admin.model._meta.verbose_name_plural} that do not "
                         "exist; nothing was done.", messages.ERROR)
            return None  # the change list then redirects to itself
        return response_action(model_admin, request, queryset)

    return checked


admin.ModelAdmin.response_action = _refusing_unknown_selection(admin.ModelAdmin.response_action)
