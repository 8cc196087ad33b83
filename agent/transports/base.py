"""The transport seam: one small interface every report URL implements.

A transport delivers encoded messages upstream. `send` either delivers the
message (returns) or raises `TransportError`; the runtime keeps the message
in the outbox and retries with back-off. Transports with a link that can go
down (MQTT, serial) call `on_link(up)` so `link_down`/`link_up` reach the
rules, and hand received command payloads to `on_command(payload)`.
"""


from typing import Callable, Optional

from ..outbox import Outgoing


class Transport(object):
    """Base class: override `send`; `open` and `close` are optional."""

    scheme = ""
    has_link = False   # True when link_down / link_up can happen

    def __init__(self, url: str) -> None:
        self.url = url
        self.on_link: Optional[Callable[[bool], None]] = None
        self.on_command: Optional[Callable[[bytes], None]] = None

    def open(self) -> None:
        """Acquire what `send` needs (files, sockets)."""

    def send(self, item: Outgoing) -> None:
        """Deliver one message or raise TransportError."""
        raise NotImplementedError("%s must implement send()" % type(self).__name__)

    def close(self) -> None:
        """Release everything; safe to call twice."""

    def describe(self) -> str:
        """The URL, with any secret removed, for status and logs."""
        return self.url

    def __enter__(self) -> "Transport":
        self.open()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
