"""Collection pauses, measured from inside `gc.callbacks`.

The callback runs inside every collection of the host application, so it does
the least it can: two clock reads and a few attribute stores, no containers
grown, no logging, never an exception. Readers take totals since their last
read with `take()`.
"""

import gc
import time

TYPE_CHECKING = False
if TYPE_CHECKING:   # annotations only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Tuple

_clock = time.perf_counter


class PauseWatch(object):
    """Accumulates collection pause time (total and longest) between reads."""

    def __init__(self) -> None:
        self._started = 0.0
        self._total = 0.0
        self._max = 0.0
        self._count = 0
        self._installed = False

    def _callback(self, phase, info):   # called by the interpreter: keep it tiny
        try:
            if phase == "start":
                self._started = _clock()
            elif self._started:
                pause = _clock() - self._started
                self._started = 0.0
                self._total += pause
                self._count += 1
                if pause > self._max:
                    self._max = pause
        except Exception:   # never disturb a collection
            pass

    def install(self) -> None:
        """Hook into gc.callbacks (once)."""
        if not self._installed:
            gc.callbacks.append(self._callback)
            self._installed = True

    def uninstall(self) -> None:
        """Remove the hook; safe to call twice."""
        if self._installed:
            try:
                gc.callbacks.remove(self._callback)
            except ValueError:
                pass
            self._installed = False

    def take(self) -> "Tuple[float, float, int]":
        """(total ms, longest ms, count) since the previous take, and reset."""
        # No lock: the callback may run in any thread, even inside this method
        # (an allocation here can trigger a collection), and must never wait.
        total, longest, count = self._total, self._max, self._count
        self._total = self._max = 0.0
        self._count = 0
        return total * 1000.0, longest * 1000.0, count
