"""The console's serial side: framed lines in, acknowledgements and commands out.

Any pyserial URL works (`/dev/ttyUSB0`, a pty path, `loop://`, `socket://host:port`,
`rfc2217://...`). Lines are `JSON*CRC`; `agent.framing.LineReader` bounds
them and counts the bad ones. Every message the ingestor accepts *or already
had* is acknowledged by (boot, seq), one ack frame per boot per read, so the
agent stops resending it; refused lines are not acknowledged (the agent's
copy stays, and a line garbled on the wire is resent).
"""

import json
import logging
import threading
from collections import defaultdict
from typing import Callable, Dict, List, Optional

from agent import framing

log = logging.getLogger("gc-console")

Accept = Callable[[bytes], object]   # returns an ingest.Outcome


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
        import serial  # pyserial: imported here so MQTT-only use does not need it

        self._port = serial.serial_for_url(self.url, baudrate=self.baud, timeout=0.2)
        self._thread = threading.Thread(target=self._run, name="gc-console-serial", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._port.read(max(1, self._port.in_waiting))
            except Exception as exc:   # the port went away (USB unplugged, pty closed)
                if not self._stop.is_set():
                    log.error("serial port %s failed: %s", self.url, exc)
                return
            if data:
                self.handle(data)

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
            try:
                self._port.write(frame)
                self._port.flush()
            except Exception as exc:
                log.warning("serial write to %s failed: %s", self.url, exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        if self._port is not None:
            self._port.close()
