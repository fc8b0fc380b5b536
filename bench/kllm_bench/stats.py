"""Percentiles, medians and windows over measured series."""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def interpolate(xs: Sequence[float], ys: Sequence[float], x: float) -> float:
    """y at x on the polyline (xs ascending), clamped at the ends."""
    if not xs:
        raise ValueError("no samples")
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    i = bisect.bisect_right(xs, x)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def steady_window(finish_times: Sequence[float], low: float, high: float) -> tuple[float, float, int]:
    """(start, end, completions in between) of the part of a run between the ``low`` and ``high``
    fractions of its completions: leaves out start-up and the tail."""
    ordered = sorted(finish_times)
    n = len(ordered)
    if n < 2:
        raise ValueError("not enough completions")
    i = int(low * (n - 1))
    j = max(i + 1, int(high * (n - 1)))
    return ordered[i], ordered[j], j - i
