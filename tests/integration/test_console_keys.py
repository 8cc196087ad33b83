"""`gc-console watch` in a real terminal (a pty): keys move, open a device, go back, quit."""

import os
import pty
import re
import select
import sys
import time

import paho.mqtt.client as mqtt

from agent import messages
from tests.conftest import REPO
from tests.console.fleetdata import Device
from tools.mosquitto import free_port

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal(object):
    def __init__(self, argv):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:   # the child: the console, in an 100x40 terminal
            os.environ.update(COLUMNS="100", LINES="40", PYTHONPATH=REPO)
            os.chdir(REPO)
            os.execv(sys.executable, [sys.executable, "-m", "tools.console", *argv])
        self.seen = b""

    def read_until(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        start = len(self.seen)
        while time.monotonic() < deadline:
            plain = ANSI.sub(b"", self.seen[start:]).decode("utf-8", "replace")
            if text in plain:
                return plain
            if select.select([self.fd], [], [], 0.1)[0]:
                try:
                    self.seen += os.read(self.fd, 65536)
                except OSError:
                    break
        raise AssertionError("no %r on the screen; it shows:\n%s" % (
            text, ANSI.sub(b"", self.seen[-3000:]).decode("utf-8", "replace")))

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def wait(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if select.select([self.fd], [], [], 0.1)[0]:
                try:
                    self.seen += os.read(self.fd, 65536)
                except OSError:
                    pass
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, 9)
        raise AssertionError("the console did not quit")


def test_keys_open_a_device_go_back_and_quit(tmp_path):
    port = free_port()
    term = Terminal(["watch", "--listen", str(port), "--db", str(tmp_path / "c.db")])
    term.read_until("agents report to")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for name in ("tx64-keys", "ix20-keys"):
            dev = Device(name)
            for m in (dev.status(), dev.telemetry(30000), dev.collect(40000, 30000, "periodic")):
                client.publish("gcagent/%s/%s" % (name, m["type"]), messages.encode(m),
                               qos=1).wait_for_publish(5)
        term.read_until("2 devices: 2 online")
        term.type(b"j")                       # the second row: same risk, so by name, tx64-keys
        term.type(b"\r")
        shown = term.read_until("recent events")
        assert "tx64-keys online" in shown and "periodic" in shown
        term.type(b"\x7f")                    # back to the fleet
        term.read_until("2 devices: 2 online")
        term.type(b"q")
        assert term.wait() == 0
    finally:
        client.loop_stop()
        client.disconnect()
        try:
            os.kill(term.pid, 9)
        except ProcessLookupError:
            pass
        os.close(term.fd)
