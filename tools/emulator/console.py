"""Each device's console port: a real pty, a serial cable (relay.py), the emulator at the far end.

The device side is a path such as /dev/pts/7; the agent reports to it with
`--report serial:///dev/pts/7?baud=115200` (gc-emulator writes that for
`--report console`). The cable is emuparts' Relay, so the serial-noise fault
corrupts a share of the bytes on the way. The emulator holds the far end: it
checks every `JSON*CRC` line with agent.framing, counts good and damaged
frames, and answers each good message with a selective ack frame
(`{"type":"ack","boot":B,"seq":[N]}`), as the upstream console does.
"""

import json
import os
from typing import Dict, Set, Tuple

from agent.framing import LineReader, ack

from .relay import Relay


class ConsolePort(object):
    """A device's console; `device_path` is what the device opens, `pump()` reads the far end."""

    def __init__(self, noise: float = 0.0, seed=None) -> None:
        self.relay = Relay(noise=noise, seed=seed).start()
        self.device_path = self.relay.device_path
        self.master = os.open(self.relay.user_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self.reader = LineReader()
        self.messages: Dict[Tuple[str, int], dict] = {}   # (boot, seq) -> message, duplicates once
        self.duplicates = 0
        self.acks_sent = 0

    @property
    def noise(self) -> float:
        return self.relay.noise

    @noise.setter
    def noise(self, share: float) -> None:
        self.relay.noise = share
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
        try:
            os.close(self.master)
        except OSError:
            pass
        self.relay.stop()
