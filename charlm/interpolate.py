"""Reading a figure off a table of measurements taken at a few sizes (a text's characters, the
characters a run reads): straight lines in the logarithm of the size between the measured points,
and along the nearest measured segment beyond them."""

from __future__ import annotations

import math
from collections.abc import Sequence


def log_linear(points: Sequence[tuple[float, float]], size: float) -> float:
    """y at `size` from (size, y) points sorted by size; a single point is a constant."""
    if len(points) == 1:
        return points[0][1]
    x = math.log(size)
    i = next((j for j in range(len(points) - 2) if x < math.log(points[j + 1][0])), len(points) - 2)
    (s0, y0), (s1, y1) = points[i], points[i + 1]
    return y0 + (y1 - y0) * (x - math.log(s0)) / (math.log(s1) - math.log(s0))
