"""Formatting for job listings."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def seconds(value) -> str:
    """A duration in seconds as 42 s, 3 min 5 s or 2 h 10 min; empty for none."""
    if value is None or value == "":
        return ""
    total = round(float(value))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
