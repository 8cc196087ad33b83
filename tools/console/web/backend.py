"""What the web pages ask of the running console, in plain Python (no HTTP here).

The fleet comes from the ingestor's memory (the live state, no database
round trip), histories from the database through a read-only connection per
call, and everything an operator changes goes through `Notes`.
"""

import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from agent import messages

from ..alerts import KINDS
from . import fleet, series
from .notes import AlertBook, Notes

ROWS_TTL_S = 0.4        # the fleet's rows are rebuilt at most this often, whatever the browsers
MAX_ARG_BYTES = 4096
DEFAULT_SPAN_S = 86400.0


class CommandRefused(Exception):
    """A command the page may not send; the message says why."""


class Backend(object):
    def __init__(self, ingestor: Any, db_path: str, notes: Notes, book: AlertBook,
                 default_interval: float = 3600.0, keys_dir: Optional[str] = None,
                 send: Optional[Callable[[str, Dict[str, Any]], None]] = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.ingestor = ingestor
        self.db_path = db_path
        self.notes = notes
        self.book = book
        self.default_interval = default_interval
        self.keys_dir = keys_dir
        self._send = send
        self.clock = clock
        self._rows_lock = threading.Lock()
        self._rows: List[Dict[str, Any]] = []
        self._rows_at = -1.0

    # -- the fleet --------------------------------------------------------------------------

    def snapshot(self) -> List[Dict[str, Any]]:
        """Copies of every device's state, with `missing` (one pass over the boots)."""
        ingestor = self.ingestor
        with ingestor.lock:
            missing: Dict[str, int] = {}
            for (device, _), seqs in ingestor.seqs.items():
                missing[device] = missing.get(device, 0) + seqs.missing
            out = []
            for device in ingestor.devices.values():
                copy = dict(device, rules=dict(device.get("rules") or {}),
                            alerts=dict(device.get("alerts") or {}))
                copy["missing"] = missing.get(device["device"], 0) if ingestor.count_gaps else None
                out.append(copy)
        return out

    def rows(self) -> List[Dict[str, Any]]:
        """Every device's row, riskiest first; shared by all browsers for ROWS_TTL_S."""
        with self._rows_lock:
            now = time.monotonic()
            if now - self._rows_at >= ROWS_TTL_S:
                self._rows = fleet.rows(self.snapshot(), self.clock(), self.default_interval)
                self._rows_at = now
            return self._rows

    def alerts(self, rows: Optional[List[Dict[str, Any]]] = None) -> List[Dict[str, Any]]:
        """Active alerts, newest first, each with whether (and by whom) it was acknowledged."""
        acks, silences = self.notes.acks(), self.notes.silences()
        out = []
        for item in rows if rows is not None else self.rows():
            for kind, detail in sorted(item["alerts"].items()):
                since = self.book.since(item["device"], kind)
                ack = acks.get((item["device"], kind))
                acked = ack is not None and ack[0] == since
                silence = silences.get((item["device"], kind)) or silences.get((item["device"], "*"))
                out.append({"device": item["device"], "alert": kind, "detail": detail,
                            "since": since, "acked": acked, "acked_by": ack[1] if acked else None,
                            "silenced_until": silence[0] if silence else None})
        out.sort(key=lambda a: (a["acked"], -(a["since"] or 0), a["device"], a["alert"]))
        return out

    def fleet(self) -> Dict[str, Any]:
        rows = self.rows()
        return {"rows": rows, "counts": fleet.counts(rows), "alerts": self.alerts(rows),
                "now": self.clock()}

    # -- one device ---------------------------------------------------------------------------

    def device(self, device: str) -> Optional[Dict[str, Any]]:
        row = next((r for r in self.rows() if r["device"] == device), None)
        if row is None:
            return None
        with self.ingestor.lock:
            status = dict(self.ingestor.devices.get(device, {}).get("status") or {})
        db = series.connect(self.db_path)
        try:
            events = series.recent_events(db, device)
        finally:
            db.close()
        return {"row": row, "status": {k: status.get(k) for k in messages.STATUS_FIELDS},
                "events": events, "commands": self.notes.commands(device),
                "alerts": [a for a in self.alerts([row])],
                "can_command": self.can_command(device)}

    def history(self, device: str, since: Optional[float], until: Optional[float],
                points: int = series.MAX_POINTS) -> Dict[str, Any]:
        with self.ingestor.lock:
            ceiling = (self.ingestor.devices.get(device) or {}).get("ceiling_kb")
        db = series.connect(self.db_path)
        try:
            if since is None or until is None:
                first, last = db.execute("SELECT MIN(ts), MAX(ts) FROM samples WHERE device=?",
                                         (device,)).fetchone()
                until = until if until is not None else max(last or 0, self.clock()) + 1.0
                # By default the last day, or all of a younger history.
                since = since if since is not None else max(first or 0, until - DEFAULT_SPAN_S)
            if since <= 0:
                first = db.execute("SELECT MIN(ts) FROM samples WHERE device=?",
                                   (device,)).fetchone()[0]
                since = first or until - DEFAULT_SPAN_S
            return series.history(db, device, since, until, ceiling, points)
        finally:
            db.close()

    # -- what an operator does --------------------------------------------------------------

    def acknowledge(self, device: str, kind: str, who: str) -> bool:
        if kind not in KINDS or device not in self.ingestor.devices:
            return False
        self.notes.ack(device, kind, self.book.since(device, kind), who)
        return True

    def silence(self, device: str, kind: str, seconds: float, who: str) -> Optional[float]:
        if (kind not in KINDS and kind != "*") or device not in self.ingestor.devices:
            return None
        return self.notes.silence(device, kind, seconds, who)

    def forget(self, device: str) -> bool:
        """The device leaves memory and the database (it comes back if it reports again)."""
        from ..forget import forget, forget_in_memory
        found = forget_in_memory(self.ingestor, device)
        forget(self.db_path, device)
        self.book.forget(device)
        with self._rows_lock:
            self._rows_at = -1.0
        return found

    def key_path(self, device: str) -> Optional[str]:
        if not self.keys_dir or "/" in device or device.startswith("."):
            return None
        path = os.path.join(self.keys_dir, device + ".key")
        return path if os.path.isfile(path) else None

    def can_command(self, device: str) -> bool:
        return self._send is not None and self.key_path(device) is not None

    def command(self, device: str, cmd: str, args: Dict[str, Any], who: str,
                origin: Optional[str]) -> Dict[str, Any]:
        """Sign and send one command as `who`; returns the command sent (its id names it)."""
        import json

        from agent.commands import load_key

        from ..send import COMMANDS, SendError, build
        if cmd not in COMMANDS:
            raise CommandRefused("unknown command %r (one of %s)" % (cmd, ", ".join(COMMANDS)))
        if not isinstance(args, dict) or len(json.dumps(args)) > MAX_ARG_BYTES:
            raise CommandRefused("args must be a JSON object under %d bytes" % MAX_ARG_BYTES)
        path = self.key_path(device)
        if self._send is None or path is None:
            raise CommandRefused("this console holds no command key for %s" % device)
        try:
            command = build(device, cmd, args, load_key(path), clock=self.clock)
        except SendError as exc:
            raise CommandRefused(str(exc)) from exc
        self.notes.sender(command["id"], device, who, origin)
        self._send(device, command)
        return command
