# The agent thread's sleep between ticks, which a signal, an event or stop() can cut short.
#
# A bare lock held by the sleeper, released to wake it: each wait is one
# timed lock acquisition. threading.Event costs a Condition and a new lock per
# wait, about 40 us of CPU more per tick on a gateway-class core, which at one
# tick a second is a third of the agent's own cost between samples
# (docs/footprint.md).

import threading


class Wakeup(object):
    # `wait(seconds)` returns early once `set()` has been called (since the last wait).

    def __init__(self):  # type: () -> None
        self._lock = threading.Lock()
        self._lock.acquire()   # held: a wait blocks until set() releases it

    def set(self):  # type: () -> None
        # Wake the sleeper, or make its next wait return at once. Never blocks.
        try:
            self._lock.release()
        except RuntimeError:   # already released: a wake-up is pending
            pass

    def wait(self, seconds):  # type: (float) -> None
        # Sleep up to `seconds`; the lock is held again afterwards, ready for the next wait.
        self._lock.acquire(True, max(0.0, seconds))
