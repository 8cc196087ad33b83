# `memory:NAME`: an in-process transport for tests, the console and the emulator.
#
# Messages land in `MemoryTransport.sent` (bounded); `fail_with` makes `send`
# raise, to rehearse a broken link without a network.

import collections
import threading

from ..errors import TransportError
from .base import Transport

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Deque, Dict, Optional  # noqa: F401 (type comments)

    from ..outbox import Outgoing  # noqa: F401 (type comments)

_REGISTRY = {}  # type: Dict[str, MemoryTransport]
_LOCK = threading.Lock()


class MemoryTransport(Transport):
    # Keeps the last `limit` messages in memory; look it up with `get(name)`.

    scheme = "memory"

    def __init__(self, url, context=None, limit=10000):  # type: (str, Any, int) -> None
        super(MemoryTransport, self).__init__(url, context)
        self.name = url.partition(":")[2] or "default"
        self.sent = collections.deque(maxlen=limit)  # type: Deque[Outgoing]
        self.fail_with = None  # type: Optional[str]
        with _LOCK:
            _REGISTRY[self.name] = self

    def send(self, item):  # type: (Outgoing) -> bool
        if self.fail_with:
            raise TransportError(self.fail_with)
        self.sent.append(item)
        return True


def get(name):  # type: (str) -> MemoryTransport
    # The memory transport most recently opened under `name`.
    with _LOCK:
        return _REGISTRY[name]
