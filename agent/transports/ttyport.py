# A serial port from the standard library: termios settings, a non-blocking descriptor, poll.
#
# For plain device paths (`serial:///dev/ttyS1?baud=115200`, `/dev/ttyUSB0`),
# the serial transport opens the port with this module instead of pyserial,
# which costs the application a third of a megabyte of RSS (docs/footprint.md).
# It offers the few names of pyserial's that agent/transports/serial.py uses
# (`serial_for_url`, `SerialException`, `SerialTimeoutException`, and a port's
# `read`, `write`, `in_waiting` and `close`), with pyserial's behaviour for
# them: raw 8N1, no flow control, the baud from the URL, reads that wait up to
# `timeout` for data, writes that give up after `write_timeout`, and an error
# (so the transport reopens the port) when the device vanishes.
#
# On Linux, on the architectures that share the kernel's generic terminal
# layout (x86, ARM, RISC-V), the port is set with the kernel's own terminal
# ioctls through `fcntl`, with the values of the kernel's
# include/uapi/asm-generic/termbits.h and ioctls.h: the `termios` module would
# cost the application about 28 KB of RSS more than `fcntl`, for its few hundred constants
# (docs/footprint.md), and the kernel receives the same settings either way
# (tests/integration/test_serial_termios.py reads them back with termios).
# Elsewhere the `termios` module sets them, as the C library would.
#
# pyserial stays the backend for its own URLs (`loop://`, `socket://`,
# `rfc2217://`, `spy://`) and for a baud termios has no constant for
# (`supports`), which needs pyserial's Linux-specific ioctls.

import errno
import os
import select
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Optional  # noqa: F401 (type comments)

# uname's machine for the architectures whose kernel uses the generic termios layout.
GENERIC_MACHINES = ("x86_64", "i386", "i486", "i586", "i686", "arm", "aarch64", "riscv")
# The bauds with a constant, in the kernel's order: B50 is 1 ... B38400 is 15, then
# B57600 is 0x1001 ... B4000000 is 0x100f (CBAUDEX and an index).
BAUDS = (50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400,
         57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000,
         2000000, 2500000, 3000000, 3500000, 4000000)
TCGETS, TCSETS, TCFLSH = 0x5401, 0x5402, 0x540B
# raw_mode's flags in those values: cleared (INLCR IGNCR ICRNL IGNBRK IUCLC PARMRK INPCK
# ISTRIP IXON IXOFF IXANY; OPOST ONLCR OCRNL; ICANON ECHO ECHOE ECHOK ECHONL ISIG IEXTEN
# ECHOCTL ECHOKE; CSIZE CSTOPB PARENB PARODD CRTSCTS and the speed, CBAUD), then set
# (CLOCAL CREAD CS8); c_cc[VMIN] and c_cc[VTIME] at 6 and 5. CMSPAR is left as it is, as
# the termios path leaves it on Linux (Python's termios has no name for it); without
# PARENB it does nothing.
IFLAG_OFF, OFLAG_OFF, LFLAG_OFF, CFLAG_OFF, CFLAG_ON = 0x1ff9, 0xd, 0x8a7b, 0x8000137f, 0x8b0
VMIN, VTIME = 6, 5

fcntl = termios = None
if sys.platform.startswith("linux") and os.uname()[4].startswith(GENERIC_MACHINES):
    try:
        import fcntl
    except ImportError:   # a Python built without it: the termios module's turn
        pass
if fcntl is None:
    try:
        import termios
    except ImportError:   # a Python built without it: pyserial's turn (supports() says no)
        pass
# What setting the port raises when the device refuses (termios.error is no OSError).
_SET_FAILED = OSError if termios is None else termios.error

READ_CHUNK = 65536
_AGAIN = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)


class SerialException(IOError):
    # The port failed (as pyserial's exception of the same name).
    pass


class SerialTimeoutException(SerialException):
    # A write did not finish within the write timeout.
    pass


def speed(baud):  # type: (int) -> Optional[int]
    # The kernel's (or termios's) constant for `baud` (B115200 for 115200), or None when none.
    if fcntl is not None:
        if baud not in BAUDS:
            return None
        index = BAUDS.index(baud)
        return index + 1 if index < 15 else 0x1001 + index - 15
    if termios is None:
        return None
    return getattr(termios, "B%d" % baud, None)


def supports(port, baud):  # type: (str, int) -> bool
    # Whether this module can open `port` at `baud`: a device path and a standard baud.
    return port.startswith("/") and "?" not in port and speed(baud) is not None


def _flag(name):  # type: (str) -> int
    return getattr(termios, name, 0)   # some flags are not on every platform


def raw_mode(fd, baud):  # type: (int, int) -> None
    # Raw bytes both ways at `baud`, 8 data bits, no parity, one stop bit, no flow
    # control, no echo, no line editing or signals: what pyserial's defaults set;
    # then what was queued before we opened is dropped.
    if fcntl is not None:
        _raw_mode_ioctl(fd, baud)
        return
    iflag, oflag, cflag, lflag, _, _, cc = termios.tcgetattr(fd)
    iflag &= ~(termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IGNBRK | _flag("IUCLC")
               | _flag("PARMRK") | termios.INPCK | termios.ISTRIP
               | termios.IXON | termios.IXOFF | _flag("IXANY"))
    oflag &= ~(termios.OPOST | termios.ONLCR | termios.OCRNL)
    lflag &= ~(termios.ICANON | termios.ECHO | termios.ECHOE | termios.ECHOK | termios.ECHONL
               | termios.ISIG | termios.IEXTEN | _flag("ECHOCTL") | _flag("ECHOKE"))
    cflag |= termios.CLOCAL | termios.CREAD
    cflag &= ~(termios.CSIZE | termios.CSTOPB | termios.PARENB | termios.PARODD | _flag("CMSPAR")
               | _flag("CRTSCTS"))
    cflag |= termios.CS8
    cc = list(cc)
    cc[termios.VMIN] = 1
    cc[termios.VTIME] = 0
    rate = speed(baud)
    termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, rate, rate, cc])
    termios.tcflush(fd, termios.TCIFLUSH)


def _raw_mode_ioctl(fd, baud):  # type: (int, int) -> None
    # The same settings with the kernel's struct termios (four 32-bit flag words, the line
    # discipline, 19 control characters) and the generic values, as the C library's
    # tcsetattr and tcflush pass them: only the speed bits (CBAUD) change in c_cflag.
    attrs = bytearray(fcntl.ioctl(fd, TCGETS, bytes(36)))
    flags = [int.from_bytes(attrs[at:at + 4], sys.byteorder) for at in (0, 4, 8, 12)]
    flags[0] &= ~IFLAG_OFF
    flags[1] &= ~OFLAG_OFF
    flags[2] = flags[2] & ~CFLAG_OFF | CFLAG_ON | speed(baud)
    flags[3] &= ~LFLAG_OFF
    attrs[:16] = b"".join(flag.to_bytes(4, sys.byteorder) for flag in flags)
    attrs[17 + VMIN] = 1
    attrs[17 + VTIME] = 0
    fcntl.ioctl(fd, TCSETS, bytes(attrs))
    fcntl.ioctl(fd, TCFLSH, 0)   # TCIFLUSH


class TtyPort(object):
    # One open device: non-blocking, raw, timeouts done with poll.

    in_waiting = 0   # the transport asks; read() takes whatever has arrived anyway

    def __init__(self, path, baud, timeout, write_timeout):  # type: (str, int, float, float) -> None
        self.timeout = timeout
        self.write_timeout = write_timeout
        # O_NOCTTY: the port must never become the application's controlling terminal.
        # Linux raises DTR and RTS on open, as pyserial's default asks.
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)  # type: Optional[int]
        try:
            raw_mode(self.fd, baud)
        except _SET_FAILED as exc:
            os.close(self.fd)
            self.fd = None
            raise SerialException("%s: %s" % (path, exc.args[-1])) from exc
        except Exception:
            os.close(self.fd)
            self.fd = None
            raise

    def read(self, size=1):  # type: (int) -> bytes
        # What has arrived (up to 64 KB), after waiting up to `timeout` for the first byte.
        fd = self._fd()
        if not _wait(fd, select.POLLIN, self.timeout):
            return b""
        try:
            data = os.read(fd, max(size, READ_CHUNK))
        except OSError as exc:
            if exc.errno in _AGAIN:
                return b""
            raise SerialException("read failed: %s" % exc) from exc
        if not data:   # readable with nothing to read: the device is gone (pyserial says the same)
            raise SerialException("device reports readiness to read but returned no data "
                                  "(device disconnected?)")
        return data

    def write(self, data):  # type: (bytes) -> int
        # All of `data`, or SerialTimeoutException once `write_timeout` has passed.
        fd = self._fd()
        view = memoryview(data)
        deadline = time.monotonic() + self.write_timeout
        while view:
            try:
                view = view[os.write(fd, view):]
                continue
            except OSError as exc:
                if exc.errno not in _AGAIN:
                    raise SerialException("write failed: %s" % exc) from exc
            left = deadline - time.monotonic()
            if left <= 0:
                raise SerialTimeoutException("Write timeout")
            _wait(fd, select.POLLOUT, left)
        return len(data)

    def close(self):  # type: () -> None
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)

    def _fd(self):  # type: () -> int
        if self.fd is None:
            raise SerialException("port not open")
        return self.fd


def serial_for_url(url, baudrate, timeout, write_timeout):  # type: (str, int, float, float) -> TtyPort
    # The port at device path `url`, open and configured (pyserial's call, for paths).
    return TtyPort(url, baudrate, timeout, write_timeout)


def _wait(fd, events, timeout):  # type: (int, int, float) -> bool
    # Whether `fd` is ready for `events` within `timeout` seconds. poll, not select:
    # select refuses a descriptor of 1024 or more, which a busy application can give us.
    poller = select.poll()
    poller.register(fd, events | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(None if timeout is None else max(0, int(timeout * 1000))))
