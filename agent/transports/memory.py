# `memory:NAME`: an in-process transport for tests, the console and the emulator.
#
# Messages land in `MemoryTransport.sent` (bounded); `fail_with` makes `send`
# raise, to rehearse a broken link without a network.

import collections
import threading

from ..errors import TransportError
from ..outbox import Outgoing
from .base import Transport

TYPE_CHECKING = False
if TYPE_CHECKING:   # annotations only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Deque, Dict, Optional

_REGISTRY: 'Dict[str, "MemoryTransport"]' = {}
_LOCK = threading.Lock()


class MemoryTransport(Transport):
    # Keeps the last `limit` messages in memory; look it up with `get(name)`.

    scheme = "memory"

    def __init__(self, url: str, context=None, limit: int = 10000) -> None:
        super(MemoryTransport, self).__init__(url, context)
        self.name = url.partition(":")[2] or "default"
        self.sent: Deque[Outgoing] = collections.deque(maxlen=limit)
        self.fail_with: Optional[str] = None
        with _LOCK:
            _REGISTRY[self.name] = self

    def send(self, item: Outgoing) -> bool:
        if self.fail_with:
            raise TransportError(self.fail_with)
        self.sent.append(item)
        return True


def get(name: str) -> MemoryTransport:
    # The memory transport most recently opened under `name`.
    with _LOCK:
        return _REGISTRY[name]
