"""Report URLs -> transports, through one explicit scheme table.

Adding a transport is one module plus one line here. Third-party libraries
(paho-mqtt, pyserial) are imported only inside their own transport module,
and only when a URL asks for it.
"""

import importlib
from typing import Dict, Optional, Tuple

from ..errors import TransportError
from .base import Context, Transport

# scheme -> (module, class)
SCHEMES: Dict[str, Tuple[str, str]] = {
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
}
SERIAL_PATH = "/dev/"   # a bare device path (/dev/ttyS1?baud=115200) is a serial URL


def scheme_of(url: str) -> str:
    """The scheme of a report URL ('' when it has none)."""
    if url.startswith(SERIAL_PATH):
        return "serial"
    head, sep, _ = url.partition(":")
    return head.lower() if sep and head.replace("+", "").isalnum() else ""


def check_url(url: str) -> None:
    """Raise ValueError saying what is wrong with a report URL; None when it is usable."""
    scheme = scheme_of(url)
    if scheme not in SCHEMES:
        raise ValueError("%r: unknown report URL scheme %r (known: %s)"
                         % (url, scheme, ", ".join(s + ":" for s in sorted(SCHEMES))))
    if scheme == "file":
        from .file import parse_file_url
        parse_file_url(url)
    elif scheme in ("mqtt", "mqtts"):
        from .mqtt import parse_mqtt_url
        parse_mqtt_url(url)
    elif SCHEMES[scheme][0].endswith(".serial"):
        from .serial import parse_serial_url
        parse_serial_url(url)
    elif scheme == "drm":
        from .digi import parse_drm_url
        parse_drm_url(url)


def open_transport(url: str, context: Optional[Context] = None) -> Transport:
    """A transport for `url`, constructed but not yet opened."""
    try:
        check_url(url)
    except ValueError as exc:
        raise TransportError(str(exc))
    module, name = SCHEMES[scheme_of(url)]
    return getattr(importlib.import_module(module), name)(url, context)
