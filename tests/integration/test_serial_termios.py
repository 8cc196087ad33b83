"""The standard-library serial port (agent/transports/ttyport.py) on real ptys.

Plain device paths are opened with termios rather than pyserial; these tests
hold it to what the serial transport needs: raw bytes both ways, the URL's
baud applied to the line, writes that give up instead of blocking, a port
that vanishes and comes back, and a device that needs no pyserial at all.
"""

import os
import subprocess
import sys
import termios
import textwrap
import threading
import time

import pytest

from agent.outbox import outgoing
from agent.transports import open_transport, ttyport
from tests.conftest import REPO
from tests.integration.serial_peer import Peer, Socat, open_raw, pty_pair
from tests.integration.test_serial import Pump
from tests.profiles import write_profile

EVERY_BYTE = bytes(range(256)) * 4   # CR, LF, ^C, ^Q/^S, ^D, NUL, 0xff: none may be translated


def _read_all(read, size: int, timeout: float = 5.0) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    while len(got) < size and time.monotonic() < deadline:
        got += read()
    return got


def _master_read(master: int):
    os.set_blocking(master, False)

    def read() -> bytes:
        try:
            return os.read(master, 65536)
        except BlockingIOError:
            time.sleep(0.01)
            return b""
    return read


def test_a_device_path_opens_raw_at_the_urls_baud_and_passes_every_byte_both_ways():
    master, slave, path = pty_pair()
    termios.tcsetattr(slave, termios.TCSANOW, _cooked(slave))   # as a fresh port comes up: cooked
    port = ttyport.serial_for_url(path, baudrate=9600, timeout=0.05, write_timeout=1.0)
    try:
        iflag, oflag, cflag, lflag, ispeed, ospeed, _ = termios.tcgetattr(slave)
        assert (ispeed, ospeed) == (termios.B9600, termios.B9600)
        assert cflag & termios.CSIZE == termios.CS8 and not cflag & (termios.PARENB | termios.CSTOPB)
        assert not lflag & (termios.ICANON | termios.ECHO | termios.ISIG)
        assert not iflag & (termios.ICRNL | termios.IXON) and not oflag & termios.OPOST
        assert port.write(EVERY_BYTE) == len(EVERY_BYTE)
        assert _read_all(_master_read(master), len(EVERY_BYTE)) == EVERY_BYTE
        os.write(master, EVERY_BYTE)
        assert _read_all(lambda: port.read(1), len(EVERY_BYTE)) == EVERY_BYTE
        assert port.read(1) == b""                          # nothing more: waits, then empty
    finally:
        port.close()
        os.close(master)
        os.close(slave)


def _cooked(fd: int):
    attrs = termios.tcgetattr(fd)
    attrs[0] |= termios.ICRNL | termios.IXON
    attrs[1] |= termios.OPOST | termios.ONLCR
    attrs[3] |= termios.ICANON | termios.ECHO | termios.ISIG
    return attrs


@pytest.mark.skipif(ttyport.fcntl is None, reason="not a generic-layout Linux: termios sets the port here")
def test_the_kernel_values_ttyport_sets_the_port_with_are_termios_own():
    """The ioctl path hard-codes the kernel's generic values: they are the ones termios names."""
    names = {"B%d" % baud: ttyport.speed(baud) for baud in ttyport.BAUDS}
    assert names == {name: getattr(termios, name) for name in dir(termios)
                     if name[:1] == "B" and name[1:].isdigit() and name != "B0"}
    assert ttyport.speed(250000) is None and ttyport.speed(0) is None
    t = termios
    assert ttyport.IFLAG_OFF == (t.INLCR | t.IGNCR | t.ICRNL | t.IGNBRK | t.IUCLC | t.PARMRK | t.INPCK
                                 | t.ISTRIP | t.IXON | t.IXOFF | t.IXANY)
    assert ttyport.OFLAG_OFF == t.OPOST | t.ONLCR | t.OCRNL
    assert ttyport.LFLAG_OFF == (t.ICANON | t.ECHO | t.ECHOE | t.ECHOK | t.ECHONL | t.ISIG | t.IEXTEN
                                 | t.ECHOCTL | t.ECHOKE)
    assert ttyport.CFLAG_OFF == t.CSIZE | t.CSTOPB | t.PARENB | t.PARODD | t.CRTSCTS | t.CBAUD
    assert ttyport.CFLAG_ON == t.CLOCAL | t.CREAD | t.CS8
    assert (ttyport.VMIN, ttyport.VTIME) == (t.VMIN, t.VTIME) and t.TCIFLUSH == 0
    assert (ttyport.TCGETS, ttyport.TCSETS, ttyport.TCFLSH) == (t.TCGETS, t.TCSETS, t.TCFLSH)


@pytest.mark.parametrize("baud", [9600, 115200, 4000000])
def test_the_termios_module_where_the_ioctls_are_not_used_sets_the_port_the_same_way(monkeypatch, baud):
    """Elsewhere (another kernel layout) termios sets the port: to the same settings, bit for bit."""
    got = []
    for path_taken in ("as chosen here", "termios"):
        if path_taken == "termios":
            monkeypatch.setattr(ttyport, "fcntl", None)
            monkeypatch.setattr(ttyport, "termios", termios)
            monkeypatch.setattr(ttyport, "_SET_FAILED", termios.error)
        master, slave, path = pty_pair()
        termios.tcsetattr(slave, termios.TCSANOW, _everything_on(slave))
        os.write(master, b"typed before the agent opened the port\n")
        port = ttyport.serial_for_url(path, baudrate=baud, timeout=0.05, write_timeout=1.0)
        try:
            got.append(termios.tcgetattr(slave))
            assert port.read(1) == b""                     # what was queued before was dropped
        finally:
            port.close()
            os.close(master)
            os.close(slave)
    assert got[0] == got[1]
    assert got[0][4] == got[0][5] == getattr(termios, "B%d" % baud)


def _everything_on(fd: int):
    # Every flag raw_mode clears set, 7 data bits and a slow speed: a port left in any state.
    t = termios
    attrs = t.tcgetattr(fd)
    attrs[0] |= (t.INLCR | t.IGNCR | t.ICRNL | t.IGNBRK | t.IUCLC | t.PARMRK | t.INPCK | t.ISTRIP
                 | t.IXON | t.IXOFF | t.IXANY)
    attrs[1] |= t.OPOST | t.ONLCR | t.OCRNL
    attrs[2] = attrs[2] & ~t.CSIZE | t.CS7 | t.CSTOPB | t.PARENB | t.PARODD | t.CRTSCTS
    attrs[3] |= (t.ICANON | t.ECHO | t.ECHOE | t.ECHOK | t.ECHONL | t.ISIG | t.IEXTEN | t.ECHOCTL
                 | t.ECHOKE)
    attrs[4] = attrs[5] = t.B300
    attrs[6][t.VMIN], attrs[6][t.VTIME] = 0, 10
    return attrs


def test_a_path_that_is_no_terminal_is_refused_with_the_reason():
    with pytest.raises(ttyport.SerialException, match="Inappropriate ioctl for device"):
        ttyport.serial_for_url(os.devnull, baudrate=115200, timeout=0.05, write_timeout=1.0)


def test_a_write_nobody_reads_gives_up_after_the_write_timeout():
    master, slave, path = pty_pair()
    port = ttyport.serial_for_url(path, baudrate=115200, timeout=0.05, write_timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(ttyport.SerialTimeoutException):
            port.write(b"x" * (1024 * 1024))               # far more than the pty holds
    finally:
        port.close()
        os.close(master)
        os.close(slave)
    assert 0.25 < time.monotonic() - started < 3.0


def test_plain_paths_use_termios_and_pyserial_keeps_its_urls_and_odd_bauds():
    master, slave, path = pty_pair()
    try:
        chosen = {url: open_transport(url)._library().__name__ for url in (
            "serial://%s?baud=57600" % path, "%s?baud=9600" % path, "serial://%s?baud=250000" % path,
            "socket://127.0.0.1:7000", "loop://")}
    finally:
        os.close(master)
        os.close(slave)
    assert chosen == {"serial://%s?baud=57600" % path: "agent.transports.ttyport",
                      "%s?baud=9600" % path: "agent.transports.ttyport",
                      "serial://%s?baud=250000" % path: "serial",   # no termios constant
                      "socket://127.0.0.1:7000": "serial", "loop://": "serial"}


def test_the_port_vanishing_and_coming_back_is_reopened_and_unacknowledged_messages_resent(tmp_path):
    cable = Socat(str(tmp_path)).start()
    transport = open_transport("serial://%s?ack=on&resend=300ms&baud=38400" % cable.a)
    transport.open()
    pump = Pump(transport)
    items = [outgoing({"v": 1, "type": "event", "device": "d", "boot": "b1", "seq": i, "ts": 1.0,
                       "event": "x"}) for i in range(1, 11)]
    fd = open_raw(cable.b)
    peer = Peer(fd)
    peer2 = None
    try:
        pump.until(transport.ready, "link up")
        for item in items[:5]:
            transport.send(item)
        pump.until(lambda: len(pump.acked()) == 5, "five acks")
        peer.close()
        os.close(fd)
        cable.stop()                                    # both ptys vanish, as a USB adapter pulled
        pump.until(lambda: not transport.ready(), "link down")
        for item in items[5:]:
            transport.send(item)                         # queued while the port is gone
        cable.start()
        fd = open_raw(cable.b)
        peer2 = Peer(fd)
        pump.until(lambda: len(pump.acked()) == 10, "ten acks after the port came back", timeout=20)
    finally:
        pump.close()
        transport.close()
        if peer2 is not None:
            peer2.close()
        os.close(fd)
        cable.stop()
    assert sorted(pump.acked()) == list(range(1, 11))
    # after the reopening only what was never acknowledged is written (resends may repeat it)
    assert {m["seq"] for m in peer2.messages()} == set(range(6, 11))
    links = [e.value for e in pump.events if e.kind == "link"]
    assert links[:3] == [True, False, True]
    assert any(e.kind == "error" and cable.a in e.value for e in pump.events)   # the loss was said


APP = textwrap.dedent("""\
    import sys, time
    import agent
    assert agent.start(sys.argv[1], report=sys.argv[2])
    for i in range(10):
        agent.event("tick", i=i)
        time.sleep(0.05)
    time.sleep(0.5)
    loaded = "serial" in sys.modules
    agent.stop()
    print("pyserial loaded" if loaded else "no pyserial")
    """)


def test_a_device_without_pyserial_reports_over_a_port_at_the_urls_baud(tmp_path):
    master, slave, path = pty_pair()
    peer = Peer(master)
    app = tmp_path / "app.py"
    app.write_text(APP)
    profile = write_profile(tmp_path, {"report": {"batch": 1}})
    seen = {}

    def watch_baud():   # the line's speed, read while the agent has the port open
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not peer.messages():
            time.sleep(0.02)
        seen["speed"] = termios.tcgetattr(slave)[4]
    watcher = threading.Thread(target=watch_baud)
    watcher.start()
    try:
        # -S: no site-packages, as on a device without pyserial installed
        proc = subprocess.run([sys.executable, "-S", str(app), profile, "serial://%s?baud=19200" % path],
                              env={"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin"}, capture_output=True,
                              timeout=60)
        watcher.join(30)
        got = peer.messages()
    finally:
        peer.close()
        os.close(master)
        os.close(slave)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().split() == ["no", "pyserial"]
    assert seen["speed"] == termios.B19200
    assert [m["data"]["i"] for m in got if m.get("event") == "app"] == list(range(10))
    assert got[-1]["type"] == "status" and got[-1]["state"] == "offline"


def test_a_bundle_reports_over_a_serial_port_without_loading_pyserial(tmp_path):
    """gc-bundle still carries pyserial (for pyserial's URLs), but a device path does not use it."""
    from tests.integration.test_bundle import empty_venv
    from tools.bundle.__main__ import main as gc_bundle
    master, slave, path = pty_pair()
    peer = Peer(master)
    profile = write_profile(tmp_path, {"device": {"id": "dev-tty"},
                                       "report": {"urls": "serial://%s?baud=57600" % path, "batch": 1}})
    out = tmp_path / "dist"
    assert gc_bundle(["--profile", profile, "--device-id", "dev-tty", "--out", str(out),
                      "--python", "3.10"]) == 0
    pyz = str(out / "gc-agent-dev-tty.pyz")
    app = tmp_path / "app.py"
    app.write_text("import sys, time\ntime.sleep(2.5)\nprint('serial' in sys.modules)\n")
    try:
        proc = subprocess.run([empty_venv(tmp_path, sys.executable), "-I", pyz, "run", "--", str(app)],
                              cwd=str(tmp_path), env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                              capture_output=True, timeout=60)
        speed = termios.tcgetattr(slave)[4]
        got = peer.messages()
    finally:
        peer.close()
        os.close(master)
        os.close(slave)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().split() == ["False"]          # pyserial stayed in the bundle
    assert speed == termios.B57600
    assert [m["type"] for m in got][:1] == ["status"] and got[-1]["state"] == "offline"
    assert any(m["type"] == "telemetry" for m in got)
