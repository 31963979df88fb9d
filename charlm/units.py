"""Units charlm reports in. Losses are kept in nats per character (what cross-entropy gives);
published character-model figures are often in bits per character."""

from __future__ import annotations

import math


def bits(nats: float) -> float:
    """nats/char as bits/char."""
    return nats / math.log(2)
