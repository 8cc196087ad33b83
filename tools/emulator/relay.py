"""A serial console between an emulated device and a person: two ptys and a relay thread.

    relay = Relay(noise=0.01, seed=7).start()
    relay.device_path    # the device's console port: the agent reports to serial://<device_path>
    relay.user_path      # the other end of the cable: gc-console watch --serial <user_path>
    relay.stats()        # bytes each way, bytes corrupted, bytes dropped
    relay.stop()

Also a context manager, and runnable by hand:
`python -m tools.emulator.relay --noise 1%` prints both paths and relays until Ctrl-C.

Each side is its own pty pair (os.openpty); a thread copies bytes from one
master to the other, both ways. With `noise` > 0 each byte is corrupted (XOR
with a random non-zero byte, so it always changes) with that probability,
independently, each way; `seed` makes the choice repeatable. `noise` may be
changed at any time.

The relay keeps its own descriptor of each slave open, so either side may
close its end and open it again at any time: nothing breaks, and the relay
never sees end-of-file. Both slaves are put in raw mode (no echo, no line
editing, 8 bits) before anyone opens them. While nobody reads a side, what is
sent to it waits in that pty's buffers (about 17 KiB on Linux) and is read by
whoever opens it next; once they are full, further bytes are dropped and
counted (after a 50 ms grace), as a UART with nobody listening would lose them.
"""

import argparse
import errno
import os
import random
import select
import sys
import threading
import time
import tty
from typing import List, NamedTuple, Optional, Tuple

_CHUNK = 4096


class RelayStats(NamedTuple):
    """Bytes the relay has moved since start."""

    to_user: int              # device -> user, written (corrupted ones included)
    to_device: int            # user -> device, written
    corrupted_to_user: int
    corrupted_to_device: int
    dropped: int              # bytes that found the other side's buffer full


class _Side(object):
    """One pty pair: the master the relay uses and the slave path a program opens."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


class Relay(object):
    """Relays bytes between a device-side pty and a user-side pty, optionally noisy."""

    def __init__(self, noise: float = 0.0, seed: Optional[int] = None) -> None:
        if not 0.0 <= noise <= 1.0:
            raise ValueError("noise %r: a share between 0 and 1 (0.01 = 1%% of bytes)" % noise)
        self.noise = noise
        self._rng = random.Random(seed)
        self._device: Optional[_Side] = None
        self._user: Optional[_Side] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._counts = [0, 0, 0, 0, 0]
        self._lock = threading.Lock()

    @property
    def device_path(self) -> str:
        """Path of the device's console port (`/dev/pts/N`)."""
        if self._device is None:
            raise RuntimeError("Relay.start() first")
        return self._device.path

    @property
    def user_path(self) -> str:
        """Path a person or `gc-console watch --serial PATH` opens."""
        if self._user is None:
            raise RuntimeError("Relay.start() first")
        return self._user.path

    def start(self) -> "Relay":
        """Open both ptys and start relaying; returns self."""
        if self._thread is not None:
            return self
        self._device, self._user = _Side(), _Side()
        self._thread = threading.Thread(target=self._run, daemon=True, name="serial-relay")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop relaying and close both ptys (programs holding a slave see a hang-up)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        for side in (self._device, self._user):
            if side is not None:
                side.close()

    def __enter__(self) -> "Relay":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> RelayStats:
        """All counters at one moment."""
        with self._lock:
            return RelayStats(*self._counts)

    # -- the relay thread -----------------------------------------------------------

    def _run(self) -> None:
        assert self._device is not None and self._user is not None
        device, user = self._device.master, self._user.master
        # per direction: (source, destination, written index, corrupted index)
        routes = {device: (user, 0, 2), user: (device, 1, 3)}
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([device, user], [], [], 0.1)
            except (OSError, ValueError):
                return
            for src in ready:
                try:
                    data = os.read(src, _CHUNK)
                except OSError as exc:
                    if exc.errno in (errno.EAGAIN, errno.EINTR):
                        continue
                    if exc.errno == errno.EIO:   # cannot happen while we hold the slave; be safe
                        time.sleep(0.05)
                        continue
                    return
                dst, written, corrupted = routes[src]
                data, bad = self._corrupt(data)
                sent = self._write(dst, data)
                with self._lock:
                    self._counts[written] += sent
                    self._counts[corrupted] += bad
                    self._counts[4] += len(data) - sent

    def _corrupt(self, data: bytes) -> Tuple[bytes, int]:
        noise = self.noise
        if noise <= 0 or not data:
            return data, 0
        out = bytearray(data)
        rng = self._rng
        bad = 0
        for i in range(len(out)):
            if rng.random() < noise:
                out[i] ^= rng.randint(1, 255)
                bad += 1
        return bytes(out), bad

    @staticmethod
    def _write(fd: int, data: bytes) -> int:
        """Write what fits now; the rest is dropped (the caller counts it)."""
        done = 0
        deadline = time.monotonic() + 0.05   # a reader that is just slow gets a moment
        while done < len(data):
            try:
                done += os.write(fd, data[done:])
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EINTR):
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.005)
        return done


def main(argv: Optional[List[str]] = None) -> int:
    """Run a relay by hand until Ctrl-C."""
    from agent.units import parse_percent
    parser = argparse.ArgumentParser(
        prog="python -m tools.emulator.relay",
        description="Two ptys joined by a relay: a device's console port and the user's end, "
                    "optionally corrupting a share of the bytes.")
    parser.add_argument("--noise", type=parse_percent, default=0.0,
                        help="share of bytes corrupted, each way, e.g. 1%% (default 0%%)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for the noise")
    args = parser.parse_args(argv)
    relay = Relay(args.noise, args.seed).start()
    print("device side: %s\nuser side:   %s" % (relay.device_path, relay.user_path), flush=True)
    try:
        while True:
            time.sleep(5)
            print(relay.stats(), flush=True)
    except KeyboardInterrupt:
        relay.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
