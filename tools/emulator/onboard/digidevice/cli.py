"""digidevice.cli (emulated): the device's CLI, for `show system` (and `show version`)."""

import time

from .runt import _published


class CommandFailedException(RuntimeError):
    """A command ended in error; the message holds its output."""

    def __init__(self, output: str = "") -> None:
        super(CommandFailedException, self).__init__(output)
        self.output = output

    def __str__(self) -> str:
        return self.output


def _uptime(seconds: float) -> str:
    seconds = int(max(0, seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return "%d Days, %d Hours, %d Minutes, %d Seconds" % (days, hours, minutes, secs)


def execute(command: str, timeout: int = 5) -> str:
    """Run a CLI command and return its output (CommandFailedException when it fails)."""
    words = command.split()
    facts = _published()
    if words == ["show", "system"]:
        total = int(facts.get("system.ram.total", 0))
        free = int(facts.get("system.ram.available", 0))
        rows = [("Model", facts.get("system.model", "")),
                ("Serial Number", facts.get("system.serial", "")),
                ("Hostname", facts.get("system.hostname", "")),
                ("Firmware Version", facts.get("system.firmware", "")),
                ("Uptime", _uptime(time.time() - float(facts.get("system.boot_time", time.time())))),
                ("Total Memory", "%d" % (total // 1024)),
                ("Used Memory", "%d" % ((total - free) // 1024)),
                ("Free Memory", "%d" % (free // 1024))]
        width = max(len(k) for k, _ in rows)
        return "\n".join("%-*s : %s" % (width, k, v) for k, v in rows) + "\n"
    if words == ["show", "version"]:
        return "Firmware Version : %s\n" % facts.get("system.firmware", "")
    raise CommandFailedException("Error: '%s' is not modelled by gc-emulator "
                                 "(show system, show version)" % command)
