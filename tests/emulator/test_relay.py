"""The serial console relay on real ptys: intact bytes, seeded noise of about the asked
share, counters, and either side closing and reopening its end."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from tools.emulator.relay import Relay

EVERY_BYTE = bytes(range(256)) * 8      # ^C, ^D, ^S, CR, LF...: raw mode passes them all


def open_end(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_NOCTTY)


def send(fd: int, data: bytes) -> threading.Thread:
    """Write in a thread: a pty buffer is small and the reader must run meanwhile."""
    def write() -> None:
        view = memoryview(data)
        while len(view):
            view = view[os.write(fd, view[:1024]):]
    thread = threading.Thread(target=write)
    thread.start()
    return thread


def receive(fd: int, n: int) -> bytes:
    got = b""
    while len(got) < n:
        got += os.read(fd, 65536)
    return got


@pytest.fixture
def relay():
    with Relay() as started:
        yield started


def test_paths_are_ptys(relay):
    assert relay.device_path.startswith("/dev/pts/")
    assert relay.user_path.startswith("/dev/pts/")
    assert relay.device_path != relay.user_path


def test_bytes_pass_intact_both_ways_without_noise(relay):
    device, user = open_end(relay.device_path), open_end(relay.user_path)
    try:
        writer = send(device, EVERY_BYTE)
        assert receive(user, len(EVERY_BYTE)) == EVERY_BYTE
        writer.join()
        writer = send(user, EVERY_BYTE[::-1])
        assert receive(device, len(EVERY_BYTE)) == EVERY_BYTE[::-1]
        writer.join()
    finally:
        os.close(device)
        os.close(user)
    # The relay counts a chunk after writing it: the reader may be faster than the count.
    deadline = time.monotonic() + 5
    while relay.stats().to_device < len(EVERY_BYTE) and time.monotonic() < deadline:
        time.sleep(0.01)
    stats = relay.stats()
    assert (stats.to_user, stats.to_device) == (len(EVERY_BYTE), len(EVERY_BYTE))
    assert stats.corrupted_to_user == stats.corrupted_to_device == stats.dropped == 0


def noisy_copy(share: float, seed: int, data: bytes):
    with Relay(noise=share, seed=seed) as relay:
        device, user = open_end(relay.device_path), open_end(relay.user_path)
        try:
            writer = send(device, data)
            got = receive(user, len(data))
            writer.join()
        finally:
            os.close(device)
            os.close(user)
        # The relay counts a chunk after writing it: wait for the count of what was read.
        deadline = time.monotonic() + 5
        while relay.stats().to_user < len(got) and time.monotonic() < deadline:
            time.sleep(0.01)
        return got, relay.stats()


def test_noise_corrupts_about_the_asked_share_and_counts_exactly():
    data = b"U" * 40000
    got, stats = noisy_copy(0.05, seed=7, data=data)
    changed = sum(1 for a, b in zip(data, got) if a != b)
    assert len(got) == len(data)                   # corrupted, never lost or added
    assert changed == stats.corrupted_to_user      # a corrupted byte always differs
    assert 0.04 * len(data) < changed < 0.06 * len(data), changed   # 5% of 40000: sd ~44
    assert stats.corrupted_to_device == 0


def test_the_same_seed_corrupts_the_same_bytes():
    data = bytes(range(256)) * 40
    first, _ = noisy_copy(0.02, seed=11, data=data)
    second, _ = noisy_copy(0.02, seed=11, data=data)
    other, _ = noisy_copy(0.02, seed=12, data=data)
    assert first == second != other


def test_either_side_may_close_and_reopen(relay):
    device, user = open_end(relay.device_path), open_end(relay.user_path)
    os.write(device, b"first\n")
    assert receive(user, 6) == b"first\n"
    os.close(user)                                    # the person closes the console...
    os.write(device, b"while away\n")                 # ...the device keeps writing
    user = open_end(relay.user_path)
    assert receive(user, 11) == b"while away\n"       # kept in the pty's buffer meanwhile
    os.close(device)                                  # the device reboots
    os.write(user, b"hello?\r\n")
    device = open_end(relay.device_path)
    assert receive(device, 8) == b"hello?\r\n"
    os.write(device, b"back\n")
    assert receive(user, 5) == b"back\n"
    os.close(device)
    os.close(user)
    assert relay.stats().dropped == 0


def test_nobody_reading_drops_and_counts_instead_of_blocking(relay):
    device = open_end(relay.device_path)
    writer = send(device, b"z" * 200000)    # far more than a pty holds (about 17 KiB)
    writer.join(60)
    assert not writer.is_alive(), "the device could not write: the relay stopped reading it"
    deadline = time.monotonic() + 20
    while sum(relay.stats()[:2]) + relay.stats().dropped < 200000 and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = relay.stats()
    assert stats.to_user + stats.dropped == 200000
    assert stats.dropped > 100000
    user = open_end(relay.user_path)          # the relay still serves both ways
    os.write(user, b"still alive")
    assert receive(device, 11) == b"still alive"
    assert set(receive(user, 4096)) == {ord("z")}   # bytes kept while nobody read
    os.close(device)
    os.close(user)


def test_noise_must_be_a_share():
    with pytest.raises(ValueError, match="share between 0 and 1"):
        Relay(noise=5)


def test_runs_by_hand_and_prints_both_paths():
    proc = subprocess.Popen([sys.executable, "-m", "tools.emulator.relay", "--noise", "1%"],
                            stdout=subprocess.PIPE, text=True)
    try:
        device, user = proc.stdout.readline(), proc.stdout.readline()
        assert device.startswith("device side: /dev/pts/") and user.startswith("user side:   /dev/pts/")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    assert proc.returncode == 0
