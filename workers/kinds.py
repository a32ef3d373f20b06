"""The registry of job kinds.

Each feature app registers its kinds in its AppConfig.ready(). A kind says
which queue runs it, its time limits, how to check submitted parameters, which
function computes it (a dotted path, imported only in the worker so the web
process never imports torch), and which template shows its result.

A kind's `clean_params` is the one validator of its input: web forms, the API
and reruns all hand it what was submitted (through `lifecycle.submit`), and
the runner trusts what it returns. It returns the *canonical* parameters, and
cleaning them again gives them back unchanged, so a rerun is the same job.
What cleaning learns about the submitted input (how many records, which were
left out and why) is not a parameter: it returns those facts beside the
parameters as `Cleaned(params, facts)`, and the job keeps them in
`Job.input_facts` for the pages, the API and the runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Callable

QUEUES = ("cpu", "gpu")


@dataclass(frozen=True)
class Cleaned:
    """What `clean_params` may return when it has facts to tell: `params`
    (canonical; `clean_params(params)` gives the same `params` back) and
    `facts`, JSON derived from the submitted input (counts, records left out),
    stored as `Job.input_facts`."""

    params: dict[str, Any]
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobKind:
    name: str
    label: str
    queue: str
    runner: str  # "package.module:function", called as function(ctx) -> dict
    # submitted params -> canonical params (a dict) or Cleaned(params, facts);
    # raises ParamsError(field, message). See the module docstring.
    clean_params: Callable[[dict[str, Any]], "dict[str, Any] | Cleaned"]
    result_template: str = "workers/results/generic.html"
    soft_time_limit: int = 3600
    time_limit: int = 3900
    max_attempts: int = 3
    description: str = ""
    submit_url_name: str | None = None
    # (canonical params, input facts) -> a default title for the job
    summarize_params: Callable[[dict[str, Any], dict[str, Any]], str] = field(
        default=lambda params, facts: "")
    # (submitted params, user) -> None, run before clean_params; raises
    # ParamsError when the params point at a stored object the user may not
    # use. clean_params knows no user, so this is where a kind that refers
    # to other records (a design target, say) keeps every way of submitting
    # inside the user's scope.
    check_access: Callable[[dict[str, Any], Any], None] | None = None
    # (job) -> None, run in the submission's transaction once the job row
    # exists: files the job where the kind keeps records of its own (a
    # training run under its dataset), whichever way it was submitted (a
    # form, the API, a rerun).
    on_submit: Callable[[Any], None] | None = None

    def __post_init__(self) -> None:
        if self.queue not in QUEUES:
            raise ValueError(f"kind {self.name}: queue must be one of {QUEUES}")
        if self.time_limit <= self.soft_time_limit:
            raise ValueError(f"kind {self.name}: hard time limit must exceed the soft one")

    def clean(self, params: dict[str, Any]) -> Cleaned:
        """Run clean_params, always answering a Cleaned."""
        out = self.clean_params(params)
        return out if isinstance(out, Cleaned) else Cleaned(out)

    def load_runner(self) -> Callable:
        module_name, _, func = self.runner.partition(":")
        return getattr(import_module(module_name), func)


_REGISTRY: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    _REGISTRY[kind.name] = kind
    return kind


def get(name: str) -> JobKind:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown job kind {name!r}") from None


def all_kinds() -> list[JobKind]:
    return sorted(_REGISTRY.values(), key=lambda k: k.name)


def choices() -> list[tuple[str, str]]:
    return [(k.name, k.label) for k in all_kinds()]
