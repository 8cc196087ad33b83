# The device id: what a profile may write (`${hostname}`, `${serial}`, `${env:NAME}`)
# and what it becomes on the device.

import os
import re

from .. import values
from ..errors import Problem, ProfileError

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Dict, Optional  # noqa: F401 (type comments)

TEMPLATE = re.compile(r"\$\{([^}]*)\}")
ID_CHARS = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def parse_device_id(value):  # type: (str) -> str
    # [device] id as written: known templates only, and safe characters around them.
    text = values.text(value)
    for name in TEMPLATE.findall(text):
        if name not in ("hostname", "serial") and not name.startswith("env:"):
            raise ValueError("unknown template ${%s} (known: ${hostname}, ${serial}, ${env:NAME})"
                             % name)
    literal = TEMPLATE.sub("x", text)
    if not ID_CHARS.match(literal):
        raise ValueError("%r: use letters, digits, '.', '_' and '-' (at most 64)" % value)
    return text


def resolve_device_id(profile, environ=None):  # type: (Any, Optional[Dict[str, str]]) -> str
    # Fill `${hostname}`, `${serial}` and `${env:NAME}` in the device id.
    env = os.environ if environ is None else environ

    def fill(match):  # type: (re.Match) -> str
        name = match.group(1)
        if name == "hostname":
            return os.uname()[1].split(".")[0]   # not socket: it costs ~0.8 MB of RSS
        if name == "serial":
            return _device_serial()
        value = env.get(name[4:], "")
        if not value:
            raise ValueError("${%s}: environment variable %s is not set" % (name, name[4:]))
        return value

    try:
        device_id = TEMPLATE.sub(fill, profile.device.id)
    except ValueError as exc:
        raise ProfileError([Problem(profile.path, 1, "device", "id", str(exc))]) from exc
    if not ID_CHARS.match(device_id):
        device_id = re.sub(r"[^A-Za-z0-9._-]", "-", device_id)[:64]
    return device_id


def _device_serial():  # type: () -> str
    # DAL devices expose the serial in the device tree; x86 gateways in DMI.
    for path in ("/proc/device-tree/serial-number", "/sys/class/dmi/id/product_serial"):
        try:
            with open(path, "rb") as handle:
                serial = handle.read(128).decode("ascii", "replace").strip("\x00 \n")
            if serial:
                return serial
        except OSError:
            continue
    raise ValueError("${serial}: this device exposes no serial number "
                     "(/proc/device-tree/serial-number); write the id explicitly")
