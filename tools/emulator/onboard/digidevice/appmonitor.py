"""digidevice.appmonitor (emulated): the application watchdog, enforced by the emulator.

register_app() writes DEVICE_DIR/appmonitor/APP_ID.json (pid, timeout,
action, restart_command); refresh() touches it. The emulator watches those
files: when one is not refreshed within its timeout, because the application
hangs or ended, the emulator applies the action as Digi's stub describes the
daemon: KILL kills the application, RESTART kills it and runs
`restart_command` (nothing, without one), REBOOT reboots the emulated device.
The emulator names the script's own command line in $GCEMU_SCRIPT_COMMAND.
"""

import enum
import itertools
import json
import os
from typing import Optional

from . import _device_dir


class AppMonitorError(Exception):
    """The application monitor refused or failed an operation."""


class AppMonitorAction(enum.Enum):
    """What the monitor does to an application that stops refreshing."""

    KILL = 0
    RESTART = 1
    REBOOT = 2

    def __str__(self) -> str:
        return self.name

    def __int__(self) -> int:
        return self.value


_ids = itertools.count(1)


class _AppMonitorHandler(object):
    """A registered application: refresh() it within `timeout` milliseconds."""

    def __init__(self, app_id: int, timeout: int, action: AppMonitorAction,
                 restart_command: str = "") -> None:
        self._app_id = app_id
        self._timeout = timeout
        self._action = action
        self._restart_command = restart_command or ""
        self._path = os.path.join(_device_dir(), "appmonitor", "%d-%d.json" % (os.getpid(), app_id))

    @property
    def timeout(self) -> int:
        return self._timeout

    @property
    def action(self) -> AppMonitorAction:
        return self._action

    @property
    def restart_command(self) -> str:
        return self._restart_command

    def _write(self) -> None:
        folder = os.path.dirname(self._path)
        try:
            os.makedirs(folder, exist_ok=True)
            tmp = self._path + ".tmp"
            with open(tmp, "w") as handle:
                json.dump({"pid": os.getpid(), "app_id": self._app_id, "timeout_ms": self._timeout,
                           "action": self._action.name,
                           "restart_command": self._restart_command}, handle)
            os.replace(tmp, self._path)
        except OSError as exc:
            raise AppMonitorError("cannot register with the monitor: %s" % (exc.strerror or exc))

    def refresh(self) -> None:
        """Tell the monitor the application is alive."""
        try:
            os.utime(self._path, None)
        except OSError:
            raise AppMonitorError("application %d is not registered" % self._app_id)

    def unregister(self) -> None:
        """Stop being watched."""
        try:
            os.unlink(self._path)
        except OSError:
            raise AppMonitorError("application %d is not registered" % self._app_id)


def register_app(timeout: int, action: AppMonitorAction,
                 restart_command: Optional[str] = None) -> _AppMonitorHandler:
    """Register this process; refresh the handle within `timeout` milliseconds."""
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
        raise ValueError("timeout must be a positive number of milliseconds")
    if not isinstance(action, AppMonitorAction):
        raise ValueError("action must be an AppMonitorAction")
    handle = _AppMonitorHandler(next(_ids), timeout, action, restart_command or "")
    handle._write()
    return handle
