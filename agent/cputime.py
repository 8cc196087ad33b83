# The agent's own CPU time, from thread CPU clocks: what `agent_cpu_ms` reports.
#
# The agent's cost is its thread's CPU clock, plus what other threads spend on
# its behalf: `agent.start()` (imports, the profile, the first status), the
# command line before the script starts, and `stop()` (the final telemetry is
# sent from the application's thread at exit). A telemetry message may be made
# on either thread, so the agent thread leaves its clock's reading after every
# tick and any thread adds that to the spans counted elsewhere (docs/footprint.md).
#
# The calling thread's clock: `time.thread_time` (3.7+), else
# `clock_gettime(CLOCK_THREAD_CPUTIME_ID)` (3.6 on Linux), else the thread's
# utime + stime from /proc/thread-self/stat (10 ms ticks), else the process's
# CPU time (an over-count, but never a silent 0).

import os
import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Callable, Optional  # noqa: F401 (type comments)


def _proc_thread_stat():  # type: () -> float
    with open("/proc/thread-self/stat", "rb") as handle:
        fields = handle.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


def _choose():  # type: () -> Callable[[], float]
    clock = getattr(time, "thread_time", None)
    if clock is not None:
        return clock
    clock_id = getattr(time, "CLOCK_THREAD_CPUTIME_ID", None)
    if clock_id is not None:
        try:
            time.clock_gettime(clock_id)
            return lambda: time.clock_gettime(clock_id)
        except OSError:
            pass
    try:
        _proc_thread_stat()
        return _proc_thread_stat
    except (OSError, ValueError, IndexError):
        return time.process_time


thread_cpu = _choose()   # seconds of CPU the calling thread has used


class CpuAccount(object):
    # CPU seconds spent by the agent: its own thread's, and spans on other threads.

    def __init__(self, clock=thread_cpu):  # type: (Callable[[], float]) -> None
        self._clock = clock
        # Re-entrant: stop() may run from a signal handler on a thread inside add().
        self._lock = threading.RLock()
        self.elsewhere = 0.0         # closed spans on other threads
        self._thread_s = 0.0          # the agent thread's clock at its last reading
        self._open = {}               # type: Dict[int, float]

    def thread_mark(self):  # type: () -> None
        # On the agent thread, after each tick: leave its clock's reading for other threads.
        self._thread_s = self._clock()

    def add(self, seconds):  # type: (float) -> None
        # CPU another thread spent for the agent (measured by the caller).
        with self._lock:
            self.elsewhere += max(0.0, seconds)

    def begin(self):  # type: () -> None
        # The calling thread starts working for the agent (start, stop).
        with self._lock:
            self._open[threading.get_ident()] = self._clock()

    def end(self):  # type: () -> None
        with self._lock:
            began = self._open.pop(threading.get_ident(), None)
            if began is not None:
                self.elsewhere += max(0.0, self._clock() - began)

    def total_ms(self, agent_thread=None):  # type: (Optional[threading.Thread]) -> float
        # Milliseconds so far, from whichever thread asks.
        if agent_thread is not None and threading.current_thread() is agent_thread:
            self.thread_mark()
        with self._lock:
            began = self._open.get(threading.get_ident())
            spent = self.elsewhere + self._thread_s
            if began is not None:
                spent += max(0.0, self._clock() - began)
        return spent * 1000.0
