"""digidevice.runt (emulated): the runtime database, read from the emulator's runt.json.

The emulator rewrites DEVICE_DIR/runt.json (atomically) several times a
second; `system.ram.available` there is the model's RAM minus a baseline
minus what the device's processes hold, measured from outside. Keys set by
the application live in this process only, as they would in runtd for it.
"""

import json
import os
from typing import Any, Dict, List

from . import _device_dir


class RuntException(Exception):
    """An operation on the runtime database failed."""


_started = False
_own: Dict[str, str] = {}
_edit: Dict[str, str] = {}
_editing = False


def _published() -> Dict[str, Any]:
    path = os.path.join(_device_dir(), "runt.json")
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise RuntException("runtd is not answering (%s: %s)" % (path, exc))


def _need_start() -> None:
    if not _started:
        raise RuntException("not connected to runtd: call runt.start() first")


def start() -> None:
    """Connect to runtd; must be called before any other call."""
    global _started
    _published()   # fails like the real one when runtd is down
    _started = True


def stop() -> None:
    """Disconnect from runtd."""
    global _started
    _started = False


def get(path: str) -> Any:
    """The string stored at `path`, or None when it is not populated."""
    _need_start()
    if path in _own:
        return _own[path]
    value = _published().get(path)
    return None if value is None else str(value)


def set(path: str, value: str) -> None:
    """Store a string at `path`."""
    _need_start()
    if not isinstance(path, str) or not isinstance(value, str):
        raise ValueError("runt.set takes str path and str value")
    (_edit if _editing else _own)[path] = value


def delete(path: str) -> None:
    """Remove `path` (keys set by this process only)."""
    _need_start()
    _own.pop(path, None)


def keys(path: str) -> List:
    """Keys under `path`."""
    _need_start()
    prefix = path.rstrip(".") + "." if path else ""
    found = {k[len(prefix):].split(".")[0] for k in list(_published()) + list(_own)
             if k.startswith(prefix)}
    return sorted(found)


def edit_start() -> None:
    """Batch set() calls until edit_commit()."""
    global _editing
    _need_start()
    _editing = True


def edit_commit() -> None:
    """Apply the batched set() calls."""
    global _editing
    _own.update(_edit)
    _edit.clear()
    _editing = False


def edit_clear() -> None:
    """Forget the batched set() calls."""
    global _editing
    _edit.clear()
    _editing = False


class Edit(object):
    """`with runt.edit():` batches set() calls and commits them at the end."""

    def __enter__(self):
        edit_start()
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        if exc_type is None:
            edit_commit()
        else:
            edit_clear()
        return None


def edit() -> Edit:
    """A context manager around edit_start() / edit_commit()."""
    return Edit()
