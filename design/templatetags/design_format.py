"""Display formatting for the design pages (stored values are never changed)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()


@register.filter
def score(value, places: int = 3):
    """A number rounded to `places` decimals with trailing zeros dropped
    (-0.3286999999999999 shows as -0.329, 5.0 as 5); anything else as is."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return value
    try:
        rounded = round(Decimal(str(value)), int(places))
    except (InvalidOperation, ValueError):
        return value
    text = f"{rounded:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@register.filter
def label_of(labels, key):
    """The readable name of a property key (a registered model's display name
    and target); the key itself where a result has no labels (older runs)."""
    return (labels or {}).get(key, key) if isinstance(labels, dict) else key


@register.filter
def value_of(mapping, key):
    """mapping[key], None where either is missing (a key with colons, which the
    template language cannot look up)."""
    return mapping.get(key) if isinstance(mapping, dict) and key else None
