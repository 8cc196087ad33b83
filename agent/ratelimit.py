# A token bucket: `burst` at once, then one every `every` seconds.
#
# Pure apart from the clock it is given, so tests drive it with a fake one.
# Thread-safe: refusals may be answered from the agent thread and from a
# snapshot's thread.

import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Callable  # noqa: F401 (type comments)


class TokenBucket(object):
    # `take()` is True while tokens last; the refusals past them are counted in `denied`.

    def __init__(self, burst, every, clock=time.monotonic):  # type: (int, float, Callable[[], float]) -> None
        self.burst = max(1, int(burst))
        self.every = float(every)
        self.denied = 0
        self._clock = clock
        self._tokens = float(self.burst)
        self._at = clock()
        self._lock = threading.Lock()

    def take(self):  # type: () -> bool
        # Spend one token if there is one; otherwise count the denial.
        with self._lock:
            now = self._clock()
            if self.every > 0:
                self._tokens = min(float(self.burst),
                                   self._tokens + max(0.0, now - self._at) / self.every)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            self.denied += 1
            return False
