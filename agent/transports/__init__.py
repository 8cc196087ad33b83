# Report URLs -> transports, through one explicit scheme table.
#
# Adding a transport is one module (a `Transport` subclass that checks its own
# URLs in `check_url`) plus one line here: docs/adding-a-transport.md. Third-party libraries
# (paho-mqtt, pyserial) are imported only inside their own transport module,
# and only when a URL asks for it.

import sys

from ..errors import TransportError

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Dict, Optional, Tuple, Type  # noqa: F401 (type comments)

    from .base import Context, Transport  # noqa: F401 (type comments)

# scheme -> (module, class)
SCHEMES = {
    "stdout": ("agent.transports.file", "StdoutTransport"),
    "file": ("agent.transports.file", "FileTransport"),
    "memory": ("agent.transports.memory", "MemoryTransport"),
    "mqtt": ("agent.transports.mqtt", "MqttTransport"),
    "mqtts": ("agent.transports.mqtt", "MqttTransport"),
    # serial: a device path; the rest are pyserial's own URL handlers
    "serial": ("agent.transports.serial", "SerialTransport"),
    "loop": ("agent.transports.serial", "SerialTransport"),
    "socket": ("agent.transports.serial", "SerialTransport"),
    "rfc2217": ("agent.transports.serial", "SerialTransport"),
    "spy": ("agent.transports.serial", "SerialTransport"),
    "drm": ("agent.transports.digi", "DigiTransport"),
}  # type: Dict[str, Tuple[str, str]]
SERIAL_PATH = "/dev/"   # a bare device path (/dev/ttyS1?baud=115200) is a serial URL


def scheme_of(url):  # type: (str) -> str
    # The scheme of a report URL ('' when it has none).
    if url.startswith(SERIAL_PATH):
        return "serial"
    head, sep, _ = url.partition(":")
    return head.lower() if sep and head.replace("+", "").isalnum() else ""


def transport_class(url):  # type: (str) -> Type[Transport]
    # The transport class for `url`'s scheme; ValueError for a scheme not in SCHEMES.
    scheme = scheme_of(url)
    if scheme not in SCHEMES:
        raise ValueError("%r: unknown report URL scheme %r (known: %s)"
                         % (url, scheme, ", ".join(s + ":" for s in sorted(SCHEMES))))
    module, name = SCHEMES[scheme]
    __import__(module)   # not importlib: a module of its own to load (docs/footprint.md)
    return getattr(sys.modules[module], name)


def check_url(url):  # type: (str) -> None
    # Raise ValueError saying what is wrong with a report URL; None when it is usable.
    #
    # Each transport checks its own URLs (`Transport.check_url`).
    transport_class(url).check_url(url)


def open_transport(url, context=None):  # type: (str, Optional[Context]) -> Transport
    # A transport for `url`, constructed but not yet opened.
    try:
        cls = transport_class(url)
        cls.check_url(url)
    except ValueError as exc:
        raise TransportError(str(exc)) from exc
    return cls(url, context)
