"""Monthly worker-hour quotas per lab, counted apart for CPU and GPU."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone

from django.db.models import Sum
from django.utils import timezone


class QuotaExceeded(Exception):
    pass


def month_bounds(now: datetime | None = None) -> tuple[datetime, datetime]:
    """Start of this month and of the next, in UTC: quotas reset at the latter."""
    now = (now or timezone.now()).astimezone(dt_timezone.utc)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if start.month == 12:
        end = start.replace(year=start.year + 1, month=1)
    else:
        end = start.replace(month=start.month + 1)
    return start, end


@dataclass(frozen=True)
class QueueUsage:
    queue: str
    used_hours: float
    quota_hours: float | None
    resets_at: datetime

    @property
    def exhausted(self) -> bool:
        return self.quota_hours is not None and self.used_hours >= self.quota_hours

    @property
    def percent(self) -> float | None:
        if not self.quota_hours:
            return None
        return min(100.0, 100.0 * self.used_hours / self.quota_hours)


QUEUES = ("cpu", "gpu")


def labs_usage(labs, now: datetime | None = None) -> dict[int, dict[str, QueueUsage]]:
    """This month's usage of every queue of each lab, in one query (the index
    on lab, started_at, queue, run_seconds answers it from the index alone)."""
    from .models import Job

    labs = list(labs)
    start, end = month_bounds(now)
    # run_seconds grows with every heartbeat, so running jobs count as they go.
    rows = (
        Job.objects.filter(lab__in=labs, started_at__gte=start, started_at__lt=end)
        .order_by().values_list("lab_id", "queue").annotate(total=Sum("run_seconds"))
    ) if labs else []
    seconds = {(lab_id, queue): total or 0.0 for lab_id, queue, total in rows}
    return {
        lab.pk: {queue: QueueUsage(queue, seconds.get((lab.pk, queue), 0.0) / 3600.0,
                                   lab.quota_hours(queue), end) for queue in QUEUES}
        for lab in labs
    }


def lab_usage(lab, queue: str, now: datetime | None = None) -> QueueUsage:
    return labs_usage([lab], now)[lab.pk][queue]


def check_quota(lab, queue: str) -> None:
    usage = lab_usage(lab, queue)
    if usage.exhausted:
        raise QuotaExceeded(
            f"The lab “{lab.name}” has used {usage.used_hours:.1f} of its "
            f"{usage.quota_hours:g} {queue.upper()} hours this month. The quota resets on "
            f"{usage.resets_at:%d %B %Y} at 00:00 UTC; an operator can raise it sooner."
        )
