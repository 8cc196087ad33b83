"""`gc-console send --all | --model M | --glob G`: one command to many devices, one summary.

Targets come from the console's database (the devices it has recorded). Each
device gets its own signed command (its own key from `--keys DIR/DEVICE.key`,
or the one `--key FILE` for a fleet that shares a key), all sent at once; the
answers are gathered until every device answered or the timeout passed. With
`--keys DIR`, a device without a usable key file there is skipped and named
(`no key: N devices`), the others still get theirs.
`gc-console keygen DEVICE` makes a key file for one device.
"""

import fnmatch
import os
import secrets
import threading
from typing import Any, Dict, Iterable, List, Optional


def targets(devices: Iterable[Dict[str, Any]], everyone: bool = False, model: Optional[str] = None,
            glob: Optional[str] = None) -> List[str]:
    """Device ids that match every selector given, sorted."""
    out = []
    for device in devices:
        if model and (device.get("model") or "").lower() != model.lower():
            continue
        if glob and not fnmatch.fnmatchcase(device["device"], glob):
            continue
        if everyone or model or glob:
            out.append(device["device"])
    return sorted(out)


class Answers(object):
    """Catches the `resp` of each command id among the messages the ingestor passes on."""

    def __init__(self, ids: Dict[str, str]) -> None:
        self.ids = dict(ids)   # command id -> device
        self.resp: Dict[str, Dict[str, Any]] = {}
        self._done = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, message: Dict[str, Any]) -> None:
        if message.get("type") != "resp" or message.get("id") not in self.ids:
            return
        with self._lock:
            self.resp[self.ids[message["id"]]] = message
            if len(self.resp) == len(self.ids):
                self._done.set()

    def wait(self, timeout: float) -> Dict[str, Dict[str, Any]]:
        self._done.wait(timeout)
        with self._lock:
            return dict(self.resp)


def summary(devices: List[str], answers: Dict[str, Dict[str, Any]]) -> List[str]:
    """One line per device (ok, refused and why, no answer), then the totals."""
    lines, ok, refused = [], 0, 0
    for device in devices:
        resp = answers.get(device)
        if resp is None:
            lines.append("%-24s no answer" % device)
        elif resp.get("ok"):
            ok += 1
            lines.append("%-24s ok" % device)
        else:
            refused += 1
            lines.append("%-24s refused: %s" % (device, resp.get("error")))
    lines.append("%d devices: %d ok, %d refused, %d no answer" % (
        len(devices), ok, refused, len(devices) - ok - refused))
    return lines


NO_KEY_NAMED = 10


def no_key_line(devices: List[str], keys_dir: str) -> str:
    """`no key: N devices (a, b, ...)`: the devices skipped for want of DIR/DEVICE.key."""
    names = ", ".join(devices[:NO_KEY_NAMED])
    if len(devices) > NO_KEY_NAMED:
        names += ", and %d more" % (len(devices) - NO_KEY_NAMED)
    return "no key: %d devices (%s), nothing sent to them: no usable key file in %s" % (
        len(devices), names, keys_dir)


def key_file(keys_dir: str, device: str) -> str:
    """DIR/DEVICE.key; ValueError for an id that would name a file elsewhere (a device
    chooses its own id, and a serial line or an import can carry "../x")."""
    if not device or "/" in device or "\\" in device or "\0" in device or device.startswith("."):
        raise ValueError("device id %r cannot name a key file in %s" % (device, keys_dir))
    return os.path.join(keys_dir, device + ".key")


def keygen(path: str) -> str:
    """A new random key (32 bytes, hex) in `path`, mode 0600; refuses to overwrite one."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    os.chmod(path, 0o600)
    return path
