"""The console's serial side: framed lines in, acknowledgements and commands out.

Any pyserial URL works (`/dev/ttyUSB0`, a pty path, `loop://`, `socket://host:port`,
`rfc2217://...`). Lines are `JSON*CRC`; `agent.framing.LineReader` bounds
them and counts the bad ones. Every message the ingestor accepts *or already
had* is acknowledged by (boot, seq), one ack frame per boot per read, so the
agent stops resending it; refused lines are not acknowledged (the agent's
copy stays, and a line garbled on the wire is resent).

A port that goes away (USB unplugged, a pty closed) is reopened with back-off
until the link is stopped: the agent resends what was not acknowledged, so a
cable pull loses nothing.
"""

import json
import logging
import threading
from collections import defaultdict
from typing import Callable, Dict, List, Optional

from agent import framing

log = logging.getLogger("gc-console")

Accept = Callable[[bytes], object]   # returns an ingest.Outcome
REOPEN_MAX = 5.0   # seconds between attempts at most: a console is watched by a person


class SerialLink(object):
    """A reader thread on one port; `send_command` writes from any thread."""

    def __init__(self, url: str, accept: Accept, baud: int = 115200,
                 max_line: int = framing.MAX_LINE) -> None:
        self.url = url
        self.accept = accept
        self.baud = baud
        self.reader = framing.LineReader(max_line)
        self.acks_sent = 0
        self._port = None
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "SerialLink":
        """Open the port; raises OSError (pyserial's SerialException) saying why it cannot."""
        self._port = self._open()
        self._thread = threading.Thread(target=self._run, name="gc-console-serial", daemon=True)
        self._thread.start()
        return self

    def _open(self):
        import serial  # pyserial: imported here so MQTT-only use does not need it
        return serial.serial_for_url(self.url, baudrate=self.baud, timeout=0.2)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._port.read(max(1, self._port.in_waiting))
            except Exception as exc:   # the port went away (USB unplugged, pty closed)
                if self._stop.is_set():
                    return
                log.error("serial port %s failed: %s; reopening", self.url, exc)
                self._reopen()
                continue
            if data:
                self.handle(data)

    def _reopen(self) -> None:
        with self._write_lock:
            port, self._port = self._port, None
        try:
            port.close()
        except Exception:   # a vanished device may fail to close; it is gone either way
            pass
        delay = 0.2
        while not self._stop.wait(delay):
            try:
                port = self._open()
            except Exception:
                delay = min(REOPEN_MAX, delay * 2)
                continue
            with self._write_lock:
                self._port = port
            log.warning("serial port %s is back", self.url)
            return

    def handle(self, data: bytes) -> None:
        """Feed bytes read from the port; acknowledge what was accepted."""
        to_ack: Dict[str, List[int]] = defaultdict(list)
        for body in self.reader.feed(data):
            outcome = self.accept(body)
            message = getattr(outcome, "message", None)
            if getattr(outcome, "status", "") in ("new", "duplicate") and message is not None:
                to_ack[message["boot"]].append(message["seq"])
        for boot, seqs in to_ack.items():
            self._write(framing.ack(seqs, boot))
            self.acks_sent += 1

    def send_command(self, command: Dict[str, object]) -> None:
        """A signed command object, framed the same way as the agent's messages."""
        body = json.dumps(command, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        self._write(framing.frame(body))

    def _write(self, frame: bytes) -> None:
        with self._write_lock:
            if self._port is None:   # reopening: the agent resends what goes unacknowledged
                return
            try:
                self._port.write(frame)
                self._port.flush()
            except Exception as exc:
                log.warning("serial write to %s failed: %s", self.url, exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        with self._write_lock:
            port, self._port = self._port, None
        if port is not None:
            port.close()
