"""Keys for the live view: move through the fleet, open a device, go back, quit.

Only when standard input is a terminal: it is put in cbreak mode (keys arrive
one by one, unechoed, Ctrl-C still interrupts) and restored on exit.
"""

import os
import select
import sys
import termios
import tty
from typing import List, Optional

HELP = "keys: up/down or j/k move, Enter opens a device, Esc or Backspace back, q quits"


class Keys(object):
    """Reads what was typed since the last call, as names: up, down, enter, back, quit."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdin
        self.fd: Optional[int] = None
        self._saved = None

    def __enter__(self) -> "Keys":
        try:
            if self.stream.isatty():
                self.fd = self.stream.fileno()
                self._saved = termios.tcgetattr(self.fd)
                tty.setcbreak(self.fd)
        except (OSError, termios.error, ValueError):
            self.fd = None
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None and self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def wait(self, timeout: float) -> List[str]:
        """Keys typed within `timeout` seconds (returns at the first key, or when time is up)."""
        if self.fd is None:
            import time
            time.sleep(timeout)
            return []
        if not select.select([self.fd], [], [], timeout)[0]:
            return []
        return parse(os.read(self.fd, 64))


def parse(data: bytes) -> List[str]:
    """Key names in the bytes a terminal sends."""
    out, i = [], 0
    while i < len(data):
        if data[i:i + 3] in (b"\x1b[A", b"\x1bOA"):
            out.append("up")
            i += 3
        elif data[i:i + 3] in (b"\x1b[B", b"\x1bOB"):
            out.append("down")
            i += 3
        elif data[i:i + 3] in (b"\x1b[C", b"\x1bOC"):
            out.append("enter")
            i += 3
        elif data[i:i + 3] in (b"\x1b[D", b"\x1bOD"):
            out.append("back")
            i += 3
        else:
            byte = data[i:i + 1]
            name = {b"k": "up", b"j": "down", b"\r": "enter", b"\n": "enter", b"\x1b": "back",
                    b"\x7f": "back", b"\x08": "back", b"h": "back", b"l": "enter",
                    b"q": "quit", b"Q": "quit"}.get(byte)
            if name:
                out.append(name)
            i += 1
    return out
