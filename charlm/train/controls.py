"""How a caller steers a run: stop, pause, and hurry (a stop that must be quick), each a plain
`threading.Event` the caller sets from any thread; under torchrun, what the ranks agreed of them."""

from __future__ import annotations

import threading
import time

from charlm.train.distributed import Team


class Controls:
    def __init__(self, team: Team, stop: threading.Event | None = None, pause: threading.Event | None = None,
                 hurry: threading.Event | None = None):
        self.team = team
        self.asked_stop, self.pause, self.asked_hurry = (e or threading.Event() for e in (stop, pause, hurry))
        # What the loop acts on: a stop asked of one rank is acted on by all at the same step.
        self.stop, self.hurry = ((self.asked_stop, self.asked_hurry) if team.solo
                                 else (threading.Event(), threading.Event()))

    def agree(self, loss: float, elapsed: float) -> tuple[float, float]:
        """The loss and the clock every rank goes on with (Team.agree); a stop or hurry asked of
        any rank is now set on all."""
        loss, stopping, hurrying, elapsed = self.team.agree(loss, self.asked_stop.is_set(), self.asked_hurry.is_set(),
                                                            elapsed)
        if hurrying:
            self.hurry.set()
        if stopping:
            self.stop.set()
        return loss, elapsed

    def hold_while_paused(self) -> None:
        """Wait here while paused (a stop ends the wait)."""
        while self.pause.is_set() and not self.stop.is_set():
            time.sleep(0.05)
