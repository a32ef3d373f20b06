"""A training run's pages: the run page with its live curves (the polled
partial), the results once it has ended, registering its model, a dataset's
run history and the comparison of several runs."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.scoping import get_visible_or_404
from workers.access import can_control, get_visible_job
from workers.models import HEAVY_FIELDS, Job

from .. import charts, registry
from ..compute.metrics import higher_is_better
from ..forms import RegisterModelForm
from ..models import Dataset, TrainingRun

# The loss each family minimises, named on the loss chart (the torch families
# train on standardised regression targets, as Chemprop does).
LOSS_LABEL = "Loss (MSE on standardised targets for regression, binary cross-entropy for classification)"
# What the polled partial reads of the job: no heavy JSON.
LIVE_JOB_FIELDS = ("id", "status", "started_at", "finished_at", "owner_id", "lab_id", "shared", "progress",
                   "progress_message")


def _visible_run(user, job_id, *, light: bool = False) -> TrainingRun:
    """The run of a job the user may see; someone else's is a 404, as a missing one."""
    if light:
        job = get_visible_job(user, job_id, Job.objects.only(*LIVE_JOB_FIELDS))
    else:
        job = get_visible_job(user, job_id)
    run = (TrainingRun.objects.filter(job=job).select_related("dataset")
           .defer("dataset__row_errors", "dataset__duplicates", "dataset__stats").first())
    if run is None:
        raise Http404("That job is not a training run.")
    run.job = job
    return run


def _targets(run: TrainingRun) -> list[dict]:
    """The run's targets with their tasks: as it trained them (in its result), else
    the dataset's, narrowed to those it was asked to learn."""
    job = run.job
    if "result" not in job.get_deferred_fields() and (job.result or {}).get("targets"):
        return job.result["targets"]
    chosen = (job.params or {}).get("targets") if "params" not in job.get_deferred_fields() else None
    targets = [t for t in run.dataset.targets if not chosen or t["name"] in chosen]
    return targets or list(run.dataset.targets)


def _max_epochs(run: TrainingRun) -> int:
    value = (run.hparams or {}).get("max_epochs") or (run.hparams or {}).get("epochs")
    return int(value) if isinstance(value, (int, float)) and value > 0 else charts.DEFAULT_MAX_EPOCHS


def live_context(run: TrainingRun, tasks: list[str]) -> dict:
    """What the live part of the run page shows: the curves so far, where the
    run stands, the time it has run and (an upper bound of) the time left."""
    job = run.job
    epochs = run.epochs or []
    result = job.result if "result" not in job.get_deferred_fields() else {}
    metric = charts.validation_metric(epochs, result, tasks)
    state = charts.progress(epochs, run.ensemble, _max_epochs(run), running=job.status == "running",
                            folds=int((run.split or {}).get("folds") or 0))
    elapsed = None
    if job.started_at:
        elapsed = ((job.finished_at or timezone.now()) - job.started_at).total_seconds()
    return {
        "run": run, "job": job, "state": state, "elapsed": elapsed, "max_epochs": _max_epochs(run),
        "has_epochs": bool(epochs), "metric_label": charts.metric_label(metric),
        "curves": {"loss": charts.loss_figure(epochs, LOSS_LABEL), "metric": charts.metric_figure(epochs, metric)},
    }


@login_required
@require_GET
def run_detail(request: HttpRequest, job_id) -> HttpResponse:
    run = _visible_run(request.user, job_id)
    return _render_detail(request, run, RegisterModelForm(user=request.user, initial=_register_initial(run)))


def _register_initial(run: TrainingRun) -> dict:
    return {"name": run.dataset.name[:200]}


def _render_detail(request, run: TrainingRun, form, status: int = 200) -> HttpResponse:
    job = run.job
    targets = _targets(run)
    tasks = [t.get("task", "regression") for t in targets]
    context = live_context(run, tasks)
    context.update({
        "dataset": run.dataset, "targets": targets, "files": job.files.all(),
        "can_control": can_control(request.user, job),
        "models": run.models.visible_to(request.user).order_by("-version"),
    })
    if job.status in ("succeeded", "cancelled"):
        context.update(_results(run, targets))
    problem = registry.registrable(run)
    context.update({"form": form, "register_problem": problem,
                    "can_register": not problem and job.owner_id == request.user.pk,
                    "show_register": job.status in ("succeeded", "cancelled") or form.errors})
    return render(request, "training/runs/detail.html", context, status=status)


def _results(run: TrainingRun, targets: list[dict]) -> dict:
    """Test metrics, the parity plot or ROC curve per target, and the forest's top features."""
    result = run.job.result or {}
    metrics = run.metrics or result.get("metrics") or {}
    table = charts.metric_table(metrics, targets)
    per_target = metrics.get("per_target") or {}
    # With cross-validation the points are fold 1's (its model is the one kept), so are the numbers quoted.
    where = "the test set"
    if result.get("folds") and result.get("fold_metrics"):
        per_target = (result["fold_metrics"][0] or {}).get("per_target") or {}
        where = "fold 1's test set"
    plots = []
    for i, target in enumerate(targets):
        points = (result.get("test_predictions") or {}).get(target["name"])
        if not points:
            continue
        values = per_target.get(target["name"]) or {}
        if target.get("task") == "classification":
            caption = f"ROC curve on {where}, ROC-AUC {_number(values.get('roc_auc'))}"
            figure = charts.roc_figure(target["name"], points.get("y", []), points.get("pred", []), caption)
        else:
            caption = f"{where[0].upper()}{where[1:]}: RMSE {_number(values.get('rmse'))}, R² {_number(values.get('r2'))}"
            figure = charts.parity_figure(target["name"], points.get("y", []), points.get("pred", []), caption)
        if figure["data"]:
            plots.append({"id": f"result-plot-{i}", "data_id": f"result-plot-{i}-data", "target": target["name"],
                          "figure": figure, "kind": "ROC curve" if target.get("task") == "classification" else "parity plot"})
    importances = result.get("importances") or []
    return {"metric_table": table, "plots": plots, "importances": importances[:20],
            "importances_figure": charts.importances_figure(importances) if importances else None,
            "method": result.get("method") or result.get("describe") or "",
            "no_test_set": not metrics}


def _number(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "n/a"


@login_required
@require_GET
def run_live(request: HttpRequest, job_id) -> HttpResponse:
    """The polled partial: the curves and where the run stands. Once the job
    has ended it stops the polling and has the page reload, so the results show."""
    run = _visible_run(request.user, job_id, light=True)
    tasks = [t.get("task", "regression") for t in run.dataset.targets]
    response = render(request, "training/runs/partials/live.html", live_context(run, tasks))
    if run.job.is_final and request.GET.get("was") in {"queued", "running"}:
        response["HX-Refresh"] = "true"
    return response


@login_required
@require_POST
def run_register(request: HttpRequest, job_id) -> HttpResponse:
    run = _visible_run(request.user, job_id)
    if run.job.owner_id != request.user.pk:
        # Lab members see a shared run; registering its model is its owner's call.
        raise Http404("No such run.")
    form = RegisterModelForm(request.POST, user=request.user)
    if form.is_valid():
        try:
            model = registry.register_run(run, request.user, form.cleaned_data["name"],
                                          lab=form.chosen_lab(), shared=form.cleaned_data["shared"])
        except registry.RegistrationError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Registered “{model.display_name}”.")
            return redirect(model)
    return _render_detail(request, run, form, status=400)


# ---------------------------------------------------------------- history and comparison

# ?sort= keys of the history page (a leading "-" sorts descending); anything else is the default.
HISTORY_SORTS = ("created", "family", "split", "ensemble", "status", "metric")
DEFAULT_HISTORY_SORT = "-created"


def _history_row(run: TrainingRun, metric: str) -> dict:
    mean = (run.metrics or {}).get("mean") or {}
    value = mean.get(metric)
    split = run.split or {}
    return {"run": run, "job": run.job, "metric": value if isinstance(value, (int, float)) else None,
            "split": split, "split_text": _split_text(split),
            "hparams": sorted((run.hparams or {}).items())}


def _split_text(split: dict) -> str:
    sizes = "/".join(f"{s:g}" for s in split.get("sizes") or [])
    parts = [split.get("method", "")]
    if sizes:
        parts.append(sizes)
    if split.get("seed") is not None:
        parts.append(f"seed {split['seed']}")
    if split.get("column"):
        parts.append(f"column {split['column']}")
    return ", ".join(p for p in parts if p)


def _sort_rows(rows: list[dict], sort: str, metric: str) -> list[dict]:
    key = sort.lstrip("-")
    descending = sort.startswith("-")
    getters = {
        "created": lambda r: r["run"].created_at,
        "family": lambda r: r["run"].family,
        "split": lambda r: r["split_text"].lower(),
        "ensemble": lambda r: r["run"].ensemble,
        "status": lambda r: r["job"].status,
        "metric": lambda r: r["metric"],
    }
    get = getters[key]
    present = [r for r in rows if get(r) is not None]
    # The newest first among equals, and runs without a value (no test set yet) last either way.
    present.sort(key=lambda r: r["run"].created_at, reverse=True)
    present.sort(key=get, reverse=descending)
    return present + [r for r in rows if get(r) is None]


def _history_links(sort: str, metric: str) -> dict[str, dict]:
    """Per column: the ?sort= its header sets (a click on the current one flips it) and its direction."""
    links = {}
    for name in HISTORY_SORTS:
        current = "asc" if sort == name else "desc" if sort == f"-{name}" else ""
        # A new column starts A→Z for words, best first for the metric, newest/largest first otherwise.
        if name == "metric":
            first = f"-{name}" if higher_is_better(metric) else name
        else:
            first = name if name in ("family", "split", "status") else f"-{name}"
        links[name] = {"sort": (f"-{name}" if current == "asc" else name) if current else first, "dir": current}
    return links


@login_required
@require_GET
def dataset_runs(request: HttpRequest, pk: int) -> HttpResponse:
    """Every run of a dataset the user may see, with its settings and test metric; sortable by column."""
    dataset = get_visible_or_404(Dataset.objects.defer("row_errors", "duplicates", "stats"), request.user, pk)
    tasks = [t.get("task", "regression") for t in dataset.targets]
    metric = charts.test_metric(tasks)
    runs = (TrainingRun.objects.visible_to(request.user).filter(dataset=dataset)
            .select_related("job", "job__owner").defer("epochs", *(f"job__{f}" for f in HEAVY_FIELDS)))
    sort = request.GET.get("sort", DEFAULT_HISTORY_SORT)
    if sort.lstrip("-") not in HISTORY_SORTS:
        sort = DEFAULT_HISTORY_SORT
    rows = _sort_rows([_history_row(r, metric) for r in runs], sort, metric)
    return render(request, "training/runs/history.html", {
        "dataset": dataset, "rows": rows, "sort": sort, "columns": _history_links(sort, metric),
        "metric": metric, "metric_label": charts.metric_label(metric),
        "metric_note": "higher is better" if higher_is_better(metric) else "lower is better",
    })


# A comparison overlays at most this many runs (beyond it the chart says nothing legible).
MAX_COMPARED = 8


@login_required
@require_GET
def compare(request: HttpRequest) -> HttpResponse:
    """Several runs of one dataset: their validation metric per epoch on one chart, their settings and test metrics."""
    ids = list(dict.fromkeys(request.GET.getlist("runs")))
    if len(ids) < 2:
        return _compare_problem(request, "Choose at least two runs to compare (the boxes on a dataset's run history).")
    if len(ids) > MAX_COMPARED:
        return _compare_problem(request, f"Compare at most {MAX_COMPARED} runs at a time.")
    runs = [_visible_run(request.user, job_id) for job_id in ids]
    datasets = {r.dataset_id for r in runs}
    if len(datasets) > 1:
        names = ", ".join(sorted({str(r.dataset) for r in runs}))
        return _compare_problem(request, f"Compare runs of one dataset; these are of {names}.")
    dataset = runs[0].dataset
    tasks = [t.get("task", "regression") for t in dataset.targets]
    metric = charts.test_metric(tasks)
    val_metric = charts.validation_metric(runs[0].epochs or [], {}, tasks)
    labels = [chr(ord("A") + i) for i in range(len(runs))]
    keys = sorted({k for r in runs for k in (r.hparams or {})})
    hparams = [{"name": k, "values": [(r.hparams or {}).get(k) for r in runs]} for k in keys]
    for row in hparams:
        row["differs"] = len({repr(v) for v in row["values"]}) > 1
    return render(request, "training/runs/compare.html", {
        "dataset": dataset, "metric_label": charts.metric_label(metric),
        "val_metric_label": charts.metric_label(val_metric),
        "runs": [{"label": label, **_history_row(r, metric)} for label, r in zip(labels, runs)],
        "hparams": hparams,
        "figure": charts.compare_figure(
            [(f"{label}: {r.family}", r.epochs or []) for label, r in zip(labels, runs)], val_metric),
    })


def _compare_problem(request, message: str) -> HttpResponse:
    return render(request, "training/runs/compare.html", {"problem": message}, status=400)
