"""The console port: a real pty, framed messages in, acks out.

The first tests play the device side with a plain writer of `JSON*CRC` lines
(agent.framing, the same framing); the last runs the real agent's serial
transport on the emulated console port, with and without line noise (two runs
that start early, with the first scenario test: conftest.py).
"""

import json
import os
import select
import time

from agent.framing import LineReader, frame
from tests.scenarios.conftest import EMULATOR_INI, Emulation, background
from tools.emulator.console import ConsolePort


def _open_device_side(port):
    fd = os.open(port.device_path, os.O_RDWR | os.O_NOCTTY)
    return fd


def _write_messages(fd, boot, seqs):
    for seq in seqs:
        body = json.dumps({"v": 1, "type": "event", "device": "d", "boot": boot, "seq": seq,
                           "ts": 1.0, "event": "app"}, separators=(",", ":")).encode()
        os.write(fd, frame(body))


def _pump_until(port, count, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(port.messages) < count:
        port.pump()
        time.sleep(0.02)


def _acks(fd, timeout=2.0):
    reader, seqs = LineReader(), set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            for body in reader.feed(os.read(fd, 65536)):
                ack = json.loads(body)
                assert ack["type"] == "ack" and ack["boot"] == "b1"
                seqs |= set(ack["seq"])
        elif seqs:
            break
    return seqs


def test_each_good_frame_is_counted_once_and_acknowledged():
    port = ConsolePort()
    fd = _open_device_side(port)
    try:
        assert port.url().startswith("serial:///dev/pts/") and port.url().endswith("?baud=115200")
        _write_messages(fd, "b1", range(1, 11))
        _write_messages(fd, "b1", [3])                       # a resend after a lost ack
        os.write(fd, b"{\"v\":1,\"seq\":99}*00000000\n")     # damaged on the line
        _pump_until(port, 10)
        assert sorted(seq for _, seq in port.messages) == list(range(1, 11))
        assert _acks(fd) == set(range(1, 11))
        port.pump()
        assert port.duplicates == 1 and port.reader.dropped == 1
    finally:
        os.close(fd)
        port.close()


def test_serial_noise_damages_frames_and_the_reader_counts_them():
    port = ConsolePort(seed=3)
    port.noise = 0.02
    fd = _open_device_side(port)
    try:
        _write_messages(fd, "b1", range(1, 101))
        deadline, quiet = time.monotonic() + 5, 0
        while time.monotonic() < deadline and quiet < 10:   # until 0.2 s without a byte
            before = port.reader.good + port.reader.dropped
            port.pump()
            quiet = quiet + 1 if port.reader.good + port.reader.dropped == before and before else 0
            time.sleep(0.02)
        assert port.reader.dropped > 0                      # some frames were hit ...
        assert 0 < len(port.messages) < 100                 # ... and the rest came through intact
        assert all(m["device"] == "d" for m in port.messages.values())
    finally:
        os.close(fd)
        port.close()


@background("console-clean", early=True)
def _clean(folder):
    return Emulation(folder, "--profile", EMULATOR_INI, "--workload", "cycles",
                     "--duration", "6", "--report", "console")


@background("console-noisy", early=True)
def _noisy(folder):
    return Emulation(folder, "--profile", EMULATOR_INI, "--workload", "cycles",
                     "--duration", "6", "--report", "console", "--fault", "serial-noise:share=0.2%,seed=3")


def test_the_real_agent_reports_over_the_emulated_console_port(launched_early):
    quiet = launched_early["console-clean"].result()["devices"][0]
    loud = launched_early["console-noisy"].result()["devices"][0]
    # Every message the agent sent reached the console port intact and was acknowledged.
    assert quiet["outcome"] == "survived"
    assert quiet["console_messages"] >= quiet["messages"] >= 3
    assert quiet["console_damaged"] == 0
    # With noise, damaged frames are refused and counted, never taken for messages.
    assert loud["console_damaged"] >= 1
    assert loud["console_messages"] >= 1
