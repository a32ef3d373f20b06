"""Monthly worker-hour quotas per lab, counted apart for CPU and GPU.

A job's worker time counts against the hardware it ran on (Job.hardware: a
GPU-queue job whose model fell back to the CPU is charged CPU hours). A
submission is checked against the hardware its kind's queue asks for: a
GPU-queue job is refused once the lab's GPU hours are used up, even though
it might run on a CPU, because the portal cannot promise it will."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone

from django.db.models import Sum
from django.utils import timezone

from .context import HARDWARE


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
class HardwareUsage:
    hardware: str  # "cpu" or "gpu"
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


def usage_query(labs, start: datetime, end: datetime):
    """(lab id, hardware, seconds) of the jobs started in [start, end): the
    index on lab, started_at, hardware, run_seconds answers it alone."""
    from .models import Job

    # run_seconds grows with every heartbeat, so running jobs count as they go.
    return (Job.objects.filter(lab__in=labs, started_at__gte=start, started_at__lt=end)
            .order_by().values_list("lab_id", "hardware").annotate(total=Sum("run_seconds")))


def labs_usage(labs, now: datetime | None = None) -> dict[int, dict[str, HardwareUsage]]:
    """This month's CPU and GPU hours of each lab, in one query."""
    labs = list(labs)
    start, end = month_bounds(now)
    rows = usage_query(labs, start, end) if labs else []
    seconds = {(lab_id, hardware): total or 0.0 for lab_id, hardware, total in rows}
    return {
        lab.pk: {hw: HardwareUsage(hw, seconds.get((lab.pk, hw), 0.0) / 3600.0,
                                   lab.quota_hours(hw), end) for hw in HARDWARE}
        for lab in labs
    }


def lab_usage(lab, hardware: str, now: datetime | None = None) -> HardwareUsage:
    return labs_usage([lab], now)[lab.pk][hardware]


def check_quota(lab, queue: str) -> None:
    """Refuse a submission to `queue` when the hardware it asks for is used
    up: the gpu queue asks for GPU hours, the cpu queue for CPU hours."""
    hardware = "gpu" if queue == "gpu" else "cpu"
    usage = lab_usage(lab, hardware)
    if usage.exhausted:
        raise QuotaExceeded(
            f"The lab “{lab.name}” has used {usage.used_hours:.1f} of its "
            f"{usage.quota_hours:g} {hardware.upper()} hours this month. The quota resets on "
            f"{usage.resets_at:%d %B %Y} at 00:00 UTC; an operator can raise it sooner."
        )
