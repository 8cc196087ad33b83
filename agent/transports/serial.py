# Serial reporting: `JSON*CRC` lines over RS-232/USB, or any pyserial URL.
#
#     serial:///dev/ttyS1?baud=115200        a real port (or a pty)
#     /dev/ttyUSB0?baud=9600                 the same, scheme left out
#     loop://  socket://host:port  rfc2217://host:port  spy://...   pyserial URLs
#
# Our query keys (`baud`, `ack`, `max`, `resend`) are taken out; the rest of
# the URL goes to pyserial as it is. A device path at a standard baud is opened
# with the standard library (agent/transports/ttyport.py: fcntl or termios), which
# saves the application pyserial's memory (docs/footprint.md); pyserial opens
# its own URLs and any baud the kernel has no constant for.
#
# One I/O thread owns the port: it opens it (again, with back-off, after a USB
# unplug or a pty closing), writes queued frames under a write timeout, and
# reads frames. The agent thread never touches the port, so a stalled line can
# never block the agent loop; the two sides meet only in deques.
#
# Delivery (`ack=`):
# - `on`: a message leaves the outbox when the far end acknowledges it
#   (`{"type":"ack","boot":B,"seq":[N,...]}`, see agent/framing.py);
#   unacknowledged messages are written again every `resend` seconds and after
#   the port comes back, so a pulled cable loses nothing within the outbox bound.
# - `off`: fire-and-forget; a message counts as delivered once written.
# - `auto` (default): acknowledged delivery until `ackwait` (10s) passes with
#   written messages and no acknowledgement ever seen on this opening of the
#   port (a plain terminal), then fire-and-forget; an acknowledgement switches
#   back. The mode is shown in `status` (`reports`).

import collections
import json
import threading
import time

from .. import framing
from ..errors import TransportError
from ..lean import encode_query, query_items
from ..limits import COMMAND_QUEUE, MAX_COMMAND_BYTES
from ..units import parse_duration
from .base import Transport, TransportEvent

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Deque, Dict, List, Optional, Tuple  # noqa: F401 (type comments)

    from ..outbox import Outgoing  # noqa: F401 (type comments)
    from .base import Context  # noqa: F401 (type comments)

DEFAULT_BAUD = 115200
WRITE_TIMEOUT = 1.0       # seconds one write may stall before we drop the port's turn
READ_TIMEOUT = 0.05
REOPEN_MAX = 30.0
BAD_LINE_REPORT_EVERY = 60.0
_OUR_KEYS = ("baud", "ack", "max", "resend", "ackwait")


class SerialSettings(object):
    # A serial report URL, parsed: the pyserial port plus our options.

    def __init__(self, port, baud, ack, max_line, resend, ack_wait):
        # type: (str, int, str, int, float, float) -> None
        self.port = port
        self.baud = baud
        self.ack = ack
        self.max_line = max_line
        self.resend = resend
        self.ack_wait = ack_wait


def parse_serial_url(url):  # type: (str) -> SerialSettings
    # Split a serial report URL; ValueError says what is wrong.
    head, _, query = url.partition("?")
    ours = {}  # type: Dict[str, str]
    rest = []
    for key, value in query_items(query):
        if key in _OUR_KEYS:
            ours[key] = value
        else:
            rest.append((key, value))
    if head.startswith("serial://"):
        port = head[len("serial://"):]
        if not port.startswith("/"):
            raise ValueError("%r: a serial URL names a device path: serial:///dev/ttyS1?baud=115200" % url)
    else:
        port = head
    if rest:
        port += "?" + encode_query(rest)
    if not port:
        raise ValueError("%r: no serial port named" % url)
    try:
        baud = int(ours.get("baud", DEFAULT_BAUD))
        if baud <= 0:
            raise ValueError
    except ValueError as exc:
        raise ValueError("%r: baud must be a positive whole number, such as 115200" % url) from exc
    ack = ours.get("ack", "auto").lower()
    if ack not in ("auto", "on", "off"):
        raise ValueError("%r: ack must be auto, on or off, not %r" % (url, ack))
    try:
        max_line = int(ours.get("max", framing.MAX_LINE))
        if max_line < 256:
            raise ValueError
    except ValueError as exc:
        raise ValueError("%r: max (the line cap in bytes) must be a whole number of at least 256"
                         % url) from exc
    durations = {}
    for key, default in (("resend", "5s"), ("ackwait", "10s")):
        try:
            durations[key] = parse_duration(ours.get(key, default))
        except ValueError:
            durations[key] = 0
        if durations[key] <= 0:
            raise ValueError("%r: %s must be a positive duration, such as %s" % (url, key, default))
    return SerialSettings(port, baud, ack, max_line, durations["resend"], durations["ackwait"])


def _pyserial():
    # pyserial, or TransportError saying how to get it.
    try:
        import serial
    except ImportError as exc:
        raise TransportError("serial report URLs need pyserial, which is not installed "
                             "(pip install pyserial, or use the gc-bundle, which carries it)") from exc
    return serial


class _Pending(object):
    # A message written (or waiting to be) whose fate is not known yet.

    __slots__ = ("item", "key", "sent_at", "written")

    def __init__(self, item, key):  # type: (Outgoing, Tuple[str, int]) -> None
        self.item = item
        self.key = key
        self.sent_at = 0.0
        self.written = False


class SerialTransport(Transport):
    # Frames to and from a serial port, from one I/O thread.

    scheme = "serial"
    has_link = True

    @classmethod
    def check_url(cls, url):  # type: (str) -> None
        parse_serial_url(url)

    def __init__(self, url, context=None):  # type: (str, Optional[Context]) -> None
        super().__init__(url, context)
        self.settings = parse_serial_url(url)
        self.ack_wait = self.settings.ack_wait
        self.window = max(1, int(self.context.settings.window or 20))
        self.reader = framing.LineReader(self.settings.max_line)
        self.acking = {"on": True, "off": False}.get(self.settings.ack)  # type: Optional[bool]
        self.write_timeouts = 0
        self._boot = ""
        self._pending = collections.OrderedDict()  # type: Dict[Tuple[str, int], _Pending]
        # I/O thread <-> agent thread: deques only (append/popleft are atomic).
        self._tx = collections.deque()  # type: Deque[Tuple[Tuple[str, int], bytes]]
        self._rx = collections.deque()  # type: Deque[Tuple[str, Any]]
        # What the far end sends has bounded queues of its own (agent/limits.py):
        # a flood of frames can neither grow memory nor delay the port's own news.
        self._rx_acks = collections.deque(maxlen=4 * self.window)  # type: Deque[Tuple[Optional[str], List[int]]]
        self._rx_commands = collections.deque()  # type: Deque[bytes]
        self.commands_dropped = 0
        self.acks_dropped = 0
        self._stop = threading.Event()
        self._thread = None  # type: Optional[threading.Thread]
        self._up = False
        self._reported_bad = 0
        self._bad_reported_at = 0.0
        self._first_unacked = None  # type: Optional[float]

    # -- agent thread -----------------------------------------------------------------

    def open(self):  # type: () -> None
        if self._thread is not None:
            return
        self._library()   # fail now, with the reason, rather than inside the thread
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gc-agent-serial", daemon=True)
        self._thread.start()

    def ready(self):  # type: () -> bool
        return self._up and len(self._pending) < self.window

    def send(self, item):  # type: (Outgoing) -> bool
        if not self._boot and not item.historical:
            self._boot = item.boot   # acks that name no boot are for this one
        pending = _Pending(item, (item.boot, item.seq))
        self._pending[pending.key] = pending
        self._write(pending)
        return False

    def _write(self, pending):  # type: (_Pending) -> None
        pending.sent_at = time.monotonic()
        self._tx.append((pending.key, framing.frame(pending.item.body)))

    def poll(self):  # type: () -> List[TransportEvent]
        out = []  # type: List[TransportEvent]
        now = time.monotonic()
        while self._rx:
            kind, value = self._rx.popleft()
            if kind == "written":
                self._written(value, now, out)
            elif kind == "ack":
                self._acked(value[0], value[1], out)
            elif kind == "opened":
                self._up = True
                self.acking = {"on": True, "off": False}.get(self.settings.ack)
                self._first_unacked = None
                out.append(TransportEvent("link", True))
                for pending in self._pending.values():   # the far end may have missed them
                    pending.written = False
                    self._write(pending)
            elif kind == "lost":
                if self._up or value[1]:
                    out.append(TransportEvent("link", False))
                self._up = False
                if value[0]:
                    out.append(TransportEvent("error", value[0]))
            else:
                out.append(TransportEvent(kind, value))
        while self._rx_acks:
            boot, seqs = self._rx_acks.popleft()
            self._acked(boot, seqs, out)
        while self._rx_commands:
            out.append(TransportEvent("command", self._rx_commands.popleft()))
        self._resend_or_give_up(now, out)
        self._report_bad_lines(now, out)
        return out

    def _written(self, key, now, out):  # type: (Tuple[str, int], float, List[TransportEvent]) -> None
        pending = self._pending.get(key)
        if pending is None:
            return
        pending.written = True
        if self.acking is False:
            del self._pending[key]
            out.append(TransportEvent("ack", pending.item))
        elif self._first_unacked is None:
            self._first_unacked = now

    def _acked(self, boot, seqs, out):  # type: (Optional[str], List[int], List[TransportEvent]) -> None
        if self.acking is not True and self.settings.ack == "auto":
            self.acking = True
            out.append(TransportEvent("mode", self.note()))
        self._first_unacked = None
        for seq in seqs:
            pending = self._pending.pop((boot or self._boot, seq), None)
            if pending is not None:
                out.append(TransportEvent("ack", pending.item))

    def _resend_or_give_up(self, now, out):  # type: (float, List[TransportEvent]) -> None
        if not self._up or not self._pending:
            return
        if self.acking is None and self._first_unacked is not None \
                and now - self._first_unacked >= self.ack_wait:
            # Nothing on this line has ever acknowledged: a terminal or a logger.
            self.acking = False
            out.append(TransportEvent("mode", self.note()))
            for key in [k for k, p in self._pending.items() if p.written]:
                out.append(TransportEvent("ack", self._pending.pop(key).item))
            return
        if self.acking is False:
            return
        for pending in self._pending.values():
            if pending.written and now - pending.sent_at >= self.settings.resend:
                pending.written = False
                self._write(pending)

    def _report_bad_lines(self, now, out):  # type: (float, List[TransportEvent]) -> None
        dropped = self.reader.dropped
        if dropped > self._reported_bad and now - self._bad_reported_at >= BAD_LINE_REPORT_EVERY:
            self._bad_reported_at = now
            self._reported_bad = dropped
            out.append(TransportEvent("error", "%s: %d received lines dropped so far (%s); %d good"
                                      % (self.describe(), dropped, ", ".join(
                                          "%s %d" % kv for kv in sorted(self.reader.bad.items()) if kv[1]),
                                          self.reader.good)))

    def note(self):  # type: () -> str
        return {True: "acknowledged", False: "fire-and-forget", None: "waiting for acks"}[self.acking]

    def close(self):  # type: () -> None
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(WRITE_TIMEOUT + 2.0)

    def describe(self):  # type: () -> str
        return self.url

    # -- I/O thread ----------------------------------------------------------------

    def _library(self):
        # What opens the port: agent.transports.ttyport for a device path at a standard
        # baud (it offers the few names of pyserial's used here), else pyserial.
        from . import ttyport
        if ttyport.supports(self.settings.port, self.settings.baud):
            return ttyport
        return _pyserial()

    def _run(self):  # type: () -> None
        serial = self._library()
        delay = 0.5
        first = True
        while not self._stop.is_set():
            try:
                port = serial.serial_for_url(self.settings.port, baudrate=self.settings.baud,
                                             timeout=READ_TIMEOUT, write_timeout=WRITE_TIMEOUT)
            except (serial.SerialException, OSError, ValueError) as exc:
                self._rx.append(("lost", ("cannot open %s: %s" % (self.settings.port, exc) if first
                                          else "", first)))
                first = False
                self._stop.wait(delay)
                delay = min(REOPEN_MAX, delay * 2)
                continue
            first = False
            # What is still queued to write is pending too, and "opened" writes every
            # pending message again: clear it, or a port that keeps failing grows it.
            self._tx.clear()
            self._rx.append(("opened", None))
            opened_at = time.monotonic()
            try:
                reason = self._serve(port, serial)
            except Exception as exc:   # never let the I/O thread die silently: reopen
                reason = "%s: %s" % (type(exc).__name__, exc)
            # A port that opens and fails at once (a dying USB adapter) keeps its back-off.
            delay = 0.5 if time.monotonic() - opened_at > 5.0 else min(REOPEN_MAX, delay * 2)
            try:
                port.close()
            except Exception:   # a vanished device may fail to close; it is gone either way
                pass
            if reason is not None:
                self._rx.append(("lost", ("%s: %s" % (self.settings.port, reason), False)))
                self._stop.wait(delay)

    def _serve(self, port, serial):  # type: (Any, Any) -> Optional[str]
        # Read and write until stopped (None) or the port fails (the reason).
        broken = False   # a timed-out write may have left half a line on the wire
        while not self._stop.is_set():
            try:
                data = port.read(max(1, getattr(port, "in_waiting", 0) or 0))
                if data:
                    for body in self.reader.feed(data):
                        self._received(body)
                while self._tx and not self._stop.is_set():
                    key, line = self._tx[0]
                    if broken:
                        line = b"\n" + line
                    try:
                        port.write(line)
                    except serial.SerialTimeoutException:
                        self.write_timeouts += 1
                        broken = True
                        break   # nobody reads: leave it queued and go back to reading
                    broken = False
                    self._tx.popleft()
                    self._rx.append(("written", key))
            except (serial.SerialException, OSError) as exc:
                return str(exc) or type(exc).__name__
        return None

    def _received(self, body):  # type: (bytes) -> None
        # Before parsing: no command, nor an ack of a full window, is this long.
        if len(body) > MAX_COMMAND_BYTES + 12 * self.window:
            self.reader.bad["too_long"] += 1
            if b'"cmd"' in body:
                self.commands_dropped += 1
            return
        try:
            message = json.loads(body.decode("utf-8"))
        except (ValueError, RecursionError):   # "[[[[..." deep is short yet not ValueError
            self.reader.bad["malformed"] += 1
            return
        if not isinstance(message, dict):
            self.reader.bad["malformed"] += 1
            return
        if message.get("type") == "ack":
            seqs = message.get("seq")
            if isinstance(seqs, int) and not isinstance(seqs, bool):
                seqs = [seqs]
            if not isinstance(seqs, list) or not all(isinstance(s, int) for s in seqs):
                self.reader.bad["malformed"] += 1
                return
            boot = message.get("boot")
            if len(self._rx_acks) >= self._rx_acks.maxlen:
                self.acks_dropped += 1   # a lost ack costs a resend, nothing more
                return
            self._rx_acks.append((boot if isinstance(boot, str) else None, seqs))
        elif "cmd" in message:
            if len(body) > MAX_COMMAND_BYTES or len(self._rx_commands) >= COMMAND_QUEUE:
                self.commands_dropped += 1
                return
            self._rx_commands.append(body)
        else:
            self.reader.bad["malformed"] += 1
