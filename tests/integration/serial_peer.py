"""The far end of a serial line, for tests: real ptys (os.openpty, socat), a reader that acks.

`Peer` plays what a console does: it reads frames from a file descriptor,
keeps every message it accepts, acknowledges them (when asked) and can send
frames (commands) back. `noise` corrupts that share of received bytes before
they are framed, as a bad cable would.
"""

import json
import os
import random
import select
import shutil
import subprocess
import threading
import time
import tty
from typing import Callable, List, Optional

from agent import framing, messages


def pty_pair():
    """(master fd, slave fd, slave path) of a raw pty: the agent opens the path."""
    master, slave = os.openpty()
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


class Socat(object):
    """A linked pty pair with stable names (`a`, `b`), killable and restartable like a cable."""

    def __init__(self, folder: str) -> None:
        assert shutil.which("socat"), "socat is not installed: make broker (or apt-get install socat)"
        self.a = os.path.join(folder, "tty-agent")
        self.b = os.path.join(folder, "tty-console")
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "Socat":
        self.proc = subprocess.Popen(["socat", "pty,raw,echo=0,link=%s" % self.a,
                                      "pty,raw,echo=0,link=%s" % self.b],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not (os.path.exists(self.a) and os.path.exists(self.b)):
            assert time.monotonic() < deadline, "socat did not make its ptys"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        for path in (self.a, self.b):
            if os.path.lexists(path):
                os.unlink(path)


class Peer(object):
    """Reads frames from `fd` in a thread; records messages; acknowledges when `ack`."""

    def __init__(self, fd: int, ack: bool = True, noise: float = 0.0, seed: int = 1) -> None:
        self.fd = fd
        self.ack = ack
        self.noise = noise
        self.random = random.Random(seed)
        self.reader = framing.LineReader()
        self.received: List[dict] = []
        self.refused = 0          # frames that passed the check but not the schema
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(self.fd, 65536)
            except OSError:   # the other side is gone for now (EIO on a pty)
                time.sleep(0.05)
                continue
            if not data:
                time.sleep(0.05)
                continue
            if self.noise:
                data = bytes(self.random.randrange(256) if self.random.random() < self.noise else b
                             for b in data)
            acks = {}
            for body in self.reader.feed(data):
                try:
                    message = messages.decode(body)
                except Exception:
                    self.refused += 1
                    continue
                with self._lock:
                    self.received.append(message)
                acks.setdefault(message["boot"], []).append(message["seq"])
            if self.ack:
                for boot, seqs in acks.items():
                    self.send(framing.ack(seqs, boot))

    def send(self, line: bytes) -> None:
        """Write bytes to the line (whole, or fail the test)."""
        view = memoryview(line)
        while view:
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:
                time.sleep(0.01)

    def command(self, command: dict) -> None:
        """Send one command object, framed."""
        self.send(framing.frame(json.dumps(command).encode("utf-8")))

    def messages(self) -> List[dict]:
        with self._lock:
            return list(self.received)

    def wait_for(self, test: Callable[[dict], bool], what: str, timeout: float = 30.0) -> dict:
        """The first message passing `test`, or fail naming `what`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.messages():
                if test(message):
                    return message
            time.sleep(0.05)
        last = [(m["type"], m.get("event") or m.get("state")) for m in self.messages()[-8:]]
        raise AssertionError("no %s within %ss; got %d messages, the last: %s"
                             % (what, timeout, len(self.messages()), last))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)


def open_raw(path: str) -> int:
    """Open a tty path for reading and writing, raw, non-blocking."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    return fd
