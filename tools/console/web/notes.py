"""What operators said about alerts and which commands they sent, kept beside the fleet's data.

Three small tables in the console's own database (created on first use; the
fleet tables and their schema version are untouched):

- `console_acks`: an alert acknowledged, by whom and when. An acknowledgement
  covers the alert as raised then; raised again later, it is a new alert.
- `console_silences`: an alert kind (or `*`) of a device that is not
  delivered (webhook, mail) until a time.
- `console_senders`: who sent each command (id as in `commands`), from where.

`AlertBook` knows when each active alert was raised: from the `alerts` table
at start, then from the ingestor as alerts change.
"""

import sqlite3
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

SCHEMA = """
CREATE TABLE IF NOT EXISTS console_acks (
    device TEXT NOT NULL, kind TEXT NOT NULL, raised REAL, at REAL NOT NULL, who TEXT NOT NULL,
    PRIMARY KEY (device, kind));
CREATE TABLE IF NOT EXISTS console_silences (
    device TEXT NOT NULL, kind TEXT NOT NULL, until REAL NOT NULL, who TEXT NOT NULL,
    at REAL NOT NULL, PRIMARY KEY (device, kind));
CREATE TABLE IF NOT EXISTS console_senders (
    id TEXT PRIMARY KEY, device TEXT NOT NULL, who TEXT NOT NULL, origin TEXT, at REAL NOT NULL);
"""
MAX_SILENCE_S = 30 * 86400.0


class Notes(object):
    """Acknowledgements, silences and command senders; one connection of its own, thread-safe."""

    def __init__(self, path: str, clock=time.time) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.db = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
        with self.lock, self.db:
            self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def ack(self, device: str, kind: str, raised: Optional[float], who: str) -> None:
        """`who` acknowledged the alert raised at `raised` (a later raise is a new alert)."""
        with self.lock, self.db:
            self.db.execute("INSERT OR REPLACE INTO console_acks VALUES (?,?,?,?,?)",
                            (device, kind, raised, self.clock(), who))

    def silence(self, device: str, kind: str, seconds: float, who: str) -> float:
        until = self.clock() + max(0.0, min(seconds, MAX_SILENCE_S))
        with self.lock, self.db:
            self.db.execute("INSERT OR REPLACE INTO console_silences VALUES (?,?,?,?,?)",
                            (device, kind, until, who, self.clock()))
        return until

    def acks(self) -> Dict[Tuple[str, str], Tuple[Optional[float], str]]:
        """(device, kind) -> (when the acknowledged alert was raised, who acknowledged it)."""
        with self.lock:
            return {(d, k): (raised, who) for d, k, raised, who in
                    self.db.execute("SELECT device, kind, raised, who FROM console_acks")}

    def silences(self) -> Dict[Tuple[str, str], Tuple[float, str]]:
        """Silences still in force: (device, kind) -> (until, who)."""
        with self.lock:
            return {(d, k): (until, who) for d, k, until, who in self.db.execute(
                "SELECT device, kind, until, who FROM console_silences WHERE until > ?",
                (self.clock(),))}

    def silenced(self, device: str, kind: str) -> bool:
        active = self.silences()
        return (device, kind) in active or (device, "*") in active

    def sender(self, command_id: str, device: str, who: str, origin: Optional[str]) -> None:
        with self.lock, self.db:
            self.db.execute("INSERT OR REPLACE INTO console_senders VALUES (?,?,?,?,?)",
                            (command_id, device, who, origin, self.clock()))

    def commands(self, device: str, limit: int = 20) -> List[Dict[str, Any]]:
        """The device's latest commands with their answers and who sent them, newest first."""
        with self.lock:
            cursor = self.db.execute(
                "SELECT c.id, c.cmd, c.args, c.sent, c.ok, c.answered, s.who FROM commands c "
                "LEFT JOIN console_senders s ON s.id = c.id WHERE c.device=? "
                "ORDER BY c.sent DESC LIMIT ?", (device, limit))
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, r)) for r in cursor]

    def forget(self, device: str) -> None:
        with self.lock, self.db:
            for table in ("console_acks", "console_silences", "console_senders"):
                self.db.execute("DELETE FROM %s WHERE device=?" % table, (device,))


class AlertBook(object):
    """When each active alert was raised: (device, kind) -> (ts, detail)."""

    def __init__(self, db_path: str) -> None:
        self.lock = threading.Lock()
        self.raised: Dict[Tuple[str, str], Tuple[float, str]] = {}
        db = sqlite3.connect(db_path, timeout=30.0)
        try:
            for device, kind, ts, state, detail in db.execute(
                    "SELECT device, kind, ts, state, detail FROM alerts ORDER BY ts"):
                if state == "raised":
                    self.raised[(device, kind)] = (ts, detail)
                else:
                    self.raised.pop((device, kind), None)
        finally:
            db.close()

    def change(self, alert: Dict[str, Any]) -> None:
        key = (alert["device"], alert["alert"])
        with self.lock:
            if alert["state"] == "raised":
                self.raised[key] = (alert["ts"], alert["detail"])
            else:
                self.raised.pop(key, None)

    def since(self, device: str, kind: str) -> Optional[float]:
        with self.lock:
            found = self.raised.get((device, kind))
        return found[0] if found else None

    def forget(self, device: str) -> None:
        with self.lock:
            for key in [k for k in self.raised if k[0] == device]:
                del self.raised[key]
