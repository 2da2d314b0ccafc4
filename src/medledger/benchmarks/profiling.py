"""Profiles inside the bench: where one run of a measured operation spends its time.

A profile is taken on a separate run, after the timed ones (cProfile slows Python code down
several times, so its run is never a figure). Each entry says a function, the milliseconds
spent in it and below it, and that time as a share of the whole run; time spent waiting (on
worker processes, on the node) shows up under the call that waited.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


def top(what: str, work: Callable[[], object], count: int = 12) -> list[str]:
    """Run ``work`` once under cProfile; return a heading line and the ``count`` functions with
    the most time of their own (callers' cumulative time in brackets)."""
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    try:
        work()
    finally:
        profile.disable()
    total = time.perf_counter() - started
    stats = pstats.Stats(profile)
    rows = sorted(
        stats.stats.items(),  # type: ignore[attr-defined]
        key=lambda item: item[1][2],  # time spent in the function itself
        reverse=True,
    )[:count]
    lines = [f"{what}: {total * 1e3:,.0f} ms under the profiler"]
    for (path, line, name), (_, calls, own, cumulative, _) in rows:
        where = "built-in" if path == "~" else f"{os.path.basename(path)}:{line}"
        lines.append(
            f"{name} ({where}): {own * 1e3:,.1f} ms own, {cumulative * 1e3:,.1f} ms with callees, "
            f"{calls:,} calls, {own / total:.0%} of the run"
        )
    return lines
