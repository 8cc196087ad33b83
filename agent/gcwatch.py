# Collection pauses, measured from inside `gc.callbacks`.
#
# The callback runs inside every collection of the host application, so it does
# the least it can: two clock reads and a few attribute stores, no containers
# grown, no logging, never an exception. Readers take totals since their last
# read with `take()`.

import gc
import time

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Tuple  # noqa: F401 (type comments)

_clock = time.perf_counter


class PauseWatch(object):
    # Accumulates collection pause time (total and longest) between reads.

    def __init__(self):  # type: () -> None
        self._started = 0.0
        self._total = 0.0
        self._max = 0.0
        self._count = 0
        self._installed = False
        # Per generation, for the tuner (agent/tuner.py): fixed-size lists, so the
        # callback only stores into slots and never grows a container.
        self._generation = 0
        self._gen_max = [0.0, 0.0, 0.0]
        self._gen_count = [0, 0, 0]
        self._gen_collected = [0, 0, 0]

    def _callback(self, phase, info):   # called by the interpreter: keep it tiny
        try:
            if phase == "start":
                self._started = _clock()
                self._generation = min(2, info["generation"])
            elif self._started:
                pause = _clock() - self._started
                self._started = 0.0
                self._total += pause
                self._count += 1
                if pause > self._max:
                    self._max = pause
                g = self._generation
                self._gen_count[g] += 1
                self._gen_collected[g] += info["collected"]
                if pause > self._gen_max[g]:
                    self._gen_max[g] = pause
        except Exception:   # never disturb a collection
            pass

    def install(self):  # type: () -> None
        # Hook into gc.callbacks (once).
        if not self._installed:
            gc.callbacks.append(self._callback)
            self._installed = True

    def uninstall(self):  # type: () -> None
        # Remove the hook; safe to call twice.
        if self._installed:
            try:
                gc.callbacks.remove(self._callback)
            except ValueError:
                pass
            self._installed = False

    def take(self):  # type: () -> Tuple[float, float, int]
        # (total ms, longest ms, count) since the previous take, and reset.
        # No lock: the callback may run in any thread, even inside this method
        # (an allocation here can trigger a collection), and must never wait.
        total, longest, count = self._total, self._max, self._count
        self._total = self._max = 0.0
        self._count = 0
        return total * 1000.0, longest * 1000.0, count

    def take_generations(self):  # type: () -> Tuple[Tuple[float, ...], Tuple[int, ...], Tuple[int, ...]]
        # Per generation since the previous call, and reset: (longest pause ms,
        # collections, objects collected). Independent of `take()`.
        longest = tuple(p * 1000.0 for p in self._gen_max)
        count, collected = tuple(self._gen_count), tuple(self._gen_collected)
        for g in range(3):
            self._gen_max[g] = 0.0
            self._gen_count[g] = 0
            self._gen_collected[g] = 0
        return longest, count, collected
