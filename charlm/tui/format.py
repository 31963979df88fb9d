"""Numbers as a person reads them: sizes, counts, durations, losses."""

from __future__ import annotations

import math

from charlm.units import bits


def size(n_bytes: int | None) -> str:
    if n_bytes is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} B"


def count(n: int | float | None) -> str:
    """1234567 -> 1.2M, 84000 -> 84k, 950 -> 950."""
    if n is None:
        return "?"
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            value = n / scale
            return f"{value:.1f}{unit}" if value < 100 else f"{value:.0f}{unit}"
    return f"{n:.0f}"


def duration(seconds: float | None) -> str:
    """12 -> 0:12, 754 -> 12:34, 4000 -> 1:06:40."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    s = int(round(max(seconds, 0)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def loss(nats: float | None) -> str:
    return "–" if nats is None or not math.isfinite(nats) else f"{nats:.3f}"


def bpc(nats: float | None) -> str:
    return "–" if nats is None or not math.isfinite(nats) else f"{bits(nats):.3f}"


def date(iso: str | None) -> str:
    """2024-05-01T12:34:56+0000 -> 2024-05-01 12:34."""
    if not iso:
        return "?"
    return iso[:16].replace("T", " ")
