# Actions on the collector, each measured: what it did, how long it paused
# the application, and RSS before and after.
#
# `Actor.perform(decision)` never raises: a failing action comes back as an
# `ActionResult` with `ok=False` and the error text.

import gc
import threading
import time

from .lean import record

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Callable, List, Optional, Tuple  # noqa: F401 (type comments)

    LowMemoryCallback = Callable[[dict], object]
    from .rules import Decision  # noqa: F401 (type comments)


class ActionResult(record(
        "ActionResult",
        "action",                               # str
        "rule",                                 # str
        "ok",                                   # bool
        generation=-1,                          # int
        collected=0,                            # int
        uncollectable=0,                        # int
        duration_ms=0.0,                        # float
        rss_before_kb=0,                        # int
        rss_after_kb=0,                         # int
        error="",                               # str
)):
    # What one action did. Durations in ms, memory in KB.

    __slots__ = ()

    @property
    def reclaimed_kb(self):  # type: () -> int
        # RSS given back (never negative: a collection cannot cost memory in our books).
        return max(0, self.rss_before_kb - self.rss_after_kb)


class Actor(object):
    # Runs decisions against the real collector. Thread-safe: one action at a time.

    def __init__(self, rss_kb, clock=time.perf_counter):
        # type: (Callable[[], int], Callable[[], float]) -> None
        self._rss = rss_kb
        self._clock = clock
        self._lock = threading.RLock()   # a finalizer run by a collection may call collect()
        self._callbacks = []  # type: List[LowMemoryCallback]

    def add_callback(self, callback):  # type: (LowMemoryCallback) -> None
        # Register an application callback for the low-memory `callbacks` step.
        with self._lock:
            self._callbacks.append(callback)

    def perform(self, decision):  # type: (Decision) -> ActionResult
        # Do what the decision says and measure it.
        try:
            if decision.action == "collect":
                return self.collect(decision.generation, decision.rule)
            if decision.action == "callbacks":
                return self.run_callbacks(decision.rule, dict(decision.fields))
            if decision.action == "freeze":
                return self.freeze(decision.rule)
            return ActionResult(decision.action, decision.rule, False,
                                error="unknown action %r" % decision.action)
        except Exception as exc:   # an agent fault, never the application's problem
            return ActionResult(decision.action, decision.rule, False,
                                error="%s: %s" % (type(exc).__name__, exc))

    def collect(self, generation, rule):  # type: (int, str) -> ActionResult
        # gc.collect(generation), with the pause and RSS change measured.
        with self._lock:
            before = self._rss()
            uncollectable_before = len(gc.garbage)
            started = self._clock()
            collected = gc.collect(generation)
            duration = self._clock() - started
            after = self._rss()
        return ActionResult("collect", rule, True, generation, collected,
                            max(0, len(gc.garbage) - uncollectable_before),
                            round(duration * 1000.0, 3), before, after)

    def run_callbacks(self, rule, info):  # type: (str, dict) -> ActionResult
        # Call the application's low-memory callbacks; one failing does not stop the rest.
        with self._lock:
            callbacks = list(self._callbacks)
        before = self._rss()
        started = self._clock()
        errors = []
        for callback in callbacks:
            try:
                callback(dict(info))
            except Exception as exc:
                errors.append("%s: %s: %s" % (getattr(callback, "__name__", "callback"),
                                              type(exc).__name__, exc))
        duration = self._clock() - started
        return ActionResult("callbacks", rule, not errors, -1, len(callbacks), 0,
                            round(duration * 1000.0, 3), before, self._rss(), "; ".join(errors))

    def freeze(self, rule):  # type: (str) -> ActionResult
        # gc.freeze(): later full collections skip everything alive now (3.7+).
        freeze = getattr(gc, "freeze", None)
        if freeze is None:
            return ActionResult("freeze", rule, False, error="gc.freeze needs Python 3.7+")
        started = self._clock()
        freeze()
        return ActionResult("freeze", rule, True, 2, gc.get_freeze_count(),  # novm: 3.7+, checked above
                            duration_ms=round((self._clock() - started) * 1000.0, 3))

    @staticmethod
    def set_thresholds(thresholds):
        # type: (Optional[Tuple[int, ...]]) -> Tuple[Tuple[int, ...], Tuple[int, ...]]
        # Apply the profile's thresholds; returns (before, after).
        before = gc.get_threshold()
        if thresholds is not None:
            gc.set_threshold(*thresholds)
        return before, gc.get_threshold()
