"""Durations as people type them (``30d``, ``12h``, ``90m``, ``45s``, ``2w``): the one parser of
every duration option (``--expires``, ``--for``, ``--duration``, ``--term``, ``--valid-for``).

A duration is a positive number and one unit; it is refused, in one line, when it is malformed,
zero or negative, or longer than its maximum (:data:`MAX_DURATION`, ten years, unless the
option has a tighter one), so that no typo grants access until the year 3943.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

from medledger.errors import InvalidDuration

MAX_DURATION = timedelta(days=3653)
"""The longest duration any option takes: ten years (grants, care, signatures)."""

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_FORM = re.compile(r"([+-]?[0-9]*\.?[0-9]+)\s*([a-zA-Z])")


def describe(span: timedelta) -> str:
    """``10 years (3653 days)``, ``366 days``, ``24 hours``: a maximum as messages show it."""
    seconds = int(span.total_seconds())
    if span == MAX_DURATION:
        return "10 years (3653 days)"
    for name, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds % size == 0 and seconds // size > 1:
            return f"{seconds // size} {name}"
    return f"{seconds} seconds"


def parse_duration(
    text: str, maximum: timedelta = MAX_DURATION, what: str = "duration"
) -> timedelta:
    """Parse ``30d``, ``12h``, ``90m``, ``45s`` or ``2w`` (at most ``maximum``)."""
    match = _FORM.fullmatch(text.strip())
    if match is None or match[2].lower() not in UNITS:
        problem = "is not a duration: expected a number and a unit, like 30d, 12h, 90m or 2w"
        raise InvalidDuration(text, problem, what)
    amount = float(match[1])
    seconds = amount * UNITS[match[2].lower()]
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidDuration(text, "is not more than zero", what)
    if seconds > maximum.total_seconds():
        raise InvalidDuration(text, f"is longer than the maximum of {describe(maximum)}", what)
    return timedelta(seconds=seconds)
