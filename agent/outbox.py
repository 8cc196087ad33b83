# The outbox: messages waiting for a transport, bounded in bytes.
#
# Oldest messages are dropped first when a new one would not fit, and every
# drop is counted: telemetry reports `buffered` and `dropped` so an operator
# sees the loss. Thread-safe: the application's threads add events too.

import collections
import threading

from . import messages
from .lean import record

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Deque, Dict, Optional  # noqa: F401 (type comments)


class Outgoing(record(
        "Outgoing",
        "seq",                                  # int
        "type",                                 # str
        "body",                                 # bytes
        boot="",                                # str
        historical=False,                       # bool
)):
    # One encoded message: its `seq`, `type` and compact JSON `body`, plus the
    # envelope facts a transport needs without parsing the body: its `boot`, and
    # whether it is `historical` (replayed from the journal).

    __slots__ = ()


def outgoing(message, historical=False):  # type: (Dict[str, Any], bool) -> Outgoing
    # Encode a message once; every transport's outbox shares the result.
    return Outgoing(message["seq"], message["type"], messages.encode(message),
                    str(message.get("boot", "")), historical)


class Outbox(object):
    # A FIFO of `Outgoing` bounded by the total size of the bodies.

    def __init__(self, max_bytes):  # type: (int) -> None
        self.max_bytes = max_bytes
        self.dropped = 0
        self._items = collections.deque()  # type: Deque[Outgoing]
        self._bytes = 0
        # Re-entrant: a signal handler may stop the agent while the main thread
        # is inside put() (agent.event called by the application).
        self._lock = threading.RLock()

    def put(self, item):  # type: (Outgoing) -> None
        # Queue a message, dropping the oldest ones if it would not fit.
        with self._lock:
            if len(item.body) > self.max_bytes:
                self.dropped += 1
                return
            while self._items and self._bytes + len(item.body) > self.max_bytes:
                self._bytes -= len(self._items.popleft().body)
                self.dropped += 1
            self._items.append(item)
            self._bytes += len(item.body)

    def peek(self):  # type: () -> Optional[Outgoing]
        # The oldest message, left in place until `pop`.
        with self._lock:
            return self._items[0] if self._items else None

    def pop(self, item):  # type: (Outgoing) -> None
        # Remove `item` once delivered (a no-op if it was dropped meanwhile).
        with self._lock:
            if self._items and self._items[0] is item:
                self._items.popleft()
                self._bytes -= len(item.body)

    def __len__(self):  # type: () -> int
        return len(self._items)

    @property
    def bytes(self):  # type: () -> int
        # Total size of the queued bodies.
        return self._bytes
