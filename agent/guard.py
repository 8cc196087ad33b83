# Staying alive: each part of the agent loop runs guarded.
#
# A part that raises (the probe, the rules, one transport, ...) is retried
# after a back-off that doubles with each failure in a row (one tick, two,
# four, ... at most `MAX_BACKOFF`), and after `MAX_FAILURES` in a row it is
# disabled; the other parts go on, and the application never sees the error.
# Decisions only: what the runtime says about a fault is its `on_fault`.


TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Callable, Dict, Set  # noqa: F401 (type comments)

MAX_FAILURES = 5          # unexpected errors in a row before a part is disabled
MAX_BACKOFF = 60.0        # seconds


class Guard(object):
    # Runs parts, counts their failures in a row, backs them off, disables them.

    def __init__(self, tick, monotonic, on_fault):
        # type: (Callable[[], float], Callable[[], float], Callable[[str, Exception, int], None]) -> None
        self._tick = tick
        self._monotonic = monotonic
        self._on_fault = on_fault
        self.failures = {}  # type: Dict[str, int]
        self.retry_at = {}  # type: Dict[str, float]
        self.disabled = set()  # type: Set[str]

    def run(self, part, fn, *args):  # type: (str, Callable, *Any) -> Any
        # fn(*args), or None when the part is disabled, backing off, or just failed.
        if part in self.disabled or self._monotonic() < self.retry_at.get(part, 0.0):
            return None
        try:
            result = fn(*args)
        except Exception as exc:
            self.fault(part, exc)
            return None
        self.failures[part] = 0
        return result

    def fault(self, part, exc):  # type: (str, Exception) -> int
        # Count one failure of `part`; its failures in a row so far.
        count = self.failures[part] = self.failures.get(part, 0) + 1
        self.retry_at[part] = self._monotonic() + self.backoff(count)
        if count >= MAX_FAILURES:
            self.disabled.add(part)
        self._on_fault(part, exc, count)
        return count

    def backoff(self, count):  # type: (int) -> float
        # Seconds to wait after `count` failures in a row.
        return min(MAX_BACKOFF, self._tick() * 2 ** min(count, 8))
