"""Each device's console port: a real pty pair, the far end read by the emulator.

The device side is a path such as /dev/pts/7; the agent reports to it with
`--report serial:///dev/pts/7?baud=115200` (gc-emulator writes that for
`--report console`). The emulator holds the other side: it checks every
`JSON*CRC` line with agent.framing, counts good and damaged frames, and
answers each good message with a selective ack frame
(`{"type":"ack","boot":B,"seq":[N]}`), as the upstream console does.
"""

import fcntl
import json
import os
import tty
from typing import Dict, Set, Tuple

from agent.framing import LineReader, ack


class ConsolePort(object):
    """A pty pair; `device_path` is what the device opens, `pump()` reads the other end."""

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)          # no echo, no CR/LF translation: bytes as a UART has them
        tty.setraw(self.master)
        self.device_path = os.ttyname(self._slave)
        flags = fcntl.fcntl(self.master, fcntl.F_GETFL)
        fcntl.fcntl(self.master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        self.reader = LineReader()
        self.messages: Dict[Tuple[str, int], dict] = {}   # (boot, seq) -> message, duplicates once
        self.duplicates = 0
        self.acks_sent = 0

    def url(self, baud: int = 115200) -> str:
        """The agent's report URL for this port."""
        return "serial://%s?baud=%d" % (self.device_path, baud)

    def pump(self) -> int:
        """Read what arrived, ack every good message; returns how many arrived."""
        arrived = 0
        while True:
            try:
                data = os.read(self.master, 65536)
            except (BlockingIOError, OSError):
                break
            if not data:
                break
            acks: Dict[str, Set[int]] = {}
            for body in self.reader.feed(data):
                try:
                    message = json.loads(body.decode("utf-8"))
                    key = (str(message["boot"]), int(message["seq"]))
                except (ValueError, KeyError, TypeError):
                    continue
                if key in self.messages:
                    self.duplicates += 1
                self.messages[key] = message
                acks.setdefault(key[0], set()).add(key[1])
                arrived += 1
            for boot, seqs in acks.items():
                try:
                    os.write(self.master, ack(seqs, boot))
                    self.acks_sent += 1
                except OSError:
                    pass
        return arrived

    def close(self) -> None:
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
