"""The console's SQLite store: devices, messages, samples, events, commands, alerts.

WAL mode, so `watch`, `devices` and `plot` read while `ingest` writes.
Writes arrive in batches (`write_batch`): one transaction per batch is what
lets one recorder keep up with thousands of messages a second. Every message
is kept once, keyed by (device, boot, seq); that key is also the last line of
defence against duplicates, across restarts and several recorders on one file.
"""

import json
import os
import sqlite3
import time
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    device TEXT NOT NULL, boot TEXT NOT NULL, seq INTEGER NOT NULL,
    type TEXT NOT NULL, ts REAL NOT NULL, received REAL NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (device, boot, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_received ON messages (received);
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY, state TEXT, reason TEXT, boot TEXT, model TEXT,
    ceiling_kb INTEGER, first_seen REAL, last_seen REAL, interval_s REAL,
    rss_kb INTEGER, mem_free_kb INTEGER, mem_total_kb INTEGER,
    dropped INTEGER, buffered INTEGER,
    last_collect_ts REAL, last_collect_rule TEXT, last_reclaimed_kb INTEGER,
    rules TEXT, alerts TEXT, status TEXT);
CREATE TABLE IF NOT EXISTS boots (
    device TEXT NOT NULL, boot TEXT NOT NULL, first_seen REAL NOT NULL,
    first_seq INTEGER NOT NULL, max_seq INTEGER NOT NULL, received INTEGER NOT NULL,
    PRIMARY KEY (device, boot)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS samples (
    device TEXT NOT NULL, boot TEXT NOT NULL, ts REAL NOT NULL,
    mem_free_kb INTEGER, mem_total_kb INTEGER, rss_kb INTEGER,
    gc_collected INTEGER, gc_uncollectable INTEGER, pause_ms_total REAL, pause_ms_max REAL);
CREATE INDEX IF NOT EXISTS samples_device_ts ON samples (device, ts);
CREATE TABLE IF NOT EXISTS events (
    device TEXT NOT NULL, boot TEXT NOT NULL, seq INTEGER NOT NULL, ts REAL NOT NULL,
    event TEXT NOT NULL, rule TEXT, reclaimed_kb INTEGER, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_device_ts ON events (device, ts);
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY, device TEXT NOT NULL, cmd TEXT NOT NULL, args TEXT NOT NULL,
    sent REAL NOT NULL, ok INTEGER, resp TEXT, answered REAL);
CREATE TABLE IF NOT EXISTS alerts (
    device TEXT NOT NULL, kind TEXT NOT NULL, ts REAL NOT NULL, state TEXT NOT NULL,
    detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS alerts_device_ts ON alerts (device, ts);
"""

SCHEMA_VERSION = 1   # PRAGMA user_version; bump with a migration when the tables change


class StoreError(Exception):
    """The database cannot be used; the message says what to do."""


DEVICE_COLUMNS = ("device", "state", "reason", "boot", "model", "ceiling_kb", "first_seen",
                  "last_seen", "interval_s", "rss_kb", "mem_free_kb", "mem_total_kb", "dropped",
                  "buffered", "last_collect_ts", "last_collect_rule", "last_reclaimed_kb",
                  "rules", "alerts", "status")
JSON_COLUMNS = ("rules", "alerts", "status")


def default_db_path() -> str:
    """`console.db` in the user's data directory (XDG_DATA_HOME on Linux)."""
    import platformdirs
    return os.path.join(platformdirs.user_data_dir("gc-console", appauthor=False), "console.db")


class Store(object):
    """One SQLite file; each instance owns one connection (use one per thread)."""

    def __init__(self, path: str) -> None:
        self.path = path
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")   # WAL + NORMAL: durable at checkpoints, fast
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        used = self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if used and version != SCHEMA_VERSION:
            self.db.close()
            raise StoreError("%s holds tables of another gc-console version (schema %d, this one "
                             "reads %d): move it aside or give another --db" % (path, version,
                                                                             SCHEMA_VERSION))
        self.db.executescript(SCHEMA)
        self.db.execute("PRAGMA user_version=%d" % SCHEMA_VERSION)

    def close(self) -> None:
        self.db.close()

    # -- writing ---------------------------------------------------------------------------

    def write_batch(self, messages: Sequence[Dict[str, Any]], received: Sequence[float],
                    devices: Iterable[Dict[str, Any]], boots: Iterable[tuple],
                    alerts: Iterable[tuple] = ()) -> int:
        """Record one batch in one transaction; returns how many messages were new to the file."""
        new = 0
        with self.db:
            for message, at in zip(messages, received):
                cursor = self.db.execute(
                    "INSERT OR IGNORE INTO messages VALUES (?,?,?,?,?,?,?)",
                    (message["device"], message["boot"], message["seq"], message["type"],
                     message["ts"], at, json.dumps(message, separators=(",", ":"))))
                if cursor.rowcount != 1:
                    continue   # already here: another recorder on this file, or a replay
                new += 1
                self._details(message)
            self.db.executemany(
                "INSERT INTO boots VALUES (?,?,?,?,?,?) ON CONFLICT (device, boot) DO UPDATE SET "
                "first_seq=excluded.first_seq, max_seq=excluded.max_seq, "
                "received=excluded.received", list(boots))
            rows = [tuple(json.dumps(d.get(c)) if c in JSON_COLUMNS else d.get(c)
                          for c in DEVICE_COLUMNS) for d in devices]
            if rows:
                self.db.executemany("INSERT OR REPLACE INTO devices VALUES (%s)"
                                    % ",".join("?" * len(DEVICE_COLUMNS)), rows)
            self.db.executemany("INSERT INTO alerts VALUES (?,?,?,?,?)", list(alerts))
        return new

    def _details(self, message: Dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "telemetry":
            self.db.executemany(
                "INSERT INTO samples VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(message["device"], message["boot"], s["ts"], s["mem_free_kb"], s["mem_total_kb"],
                  s["rss_kb"], s["gc_collected"], s["gc_uncollectable"], s["gc_pause_ms_total"],
                  s["gc_pause_ms_max"]) for s in message["samples"]])
        elif kind == "event":
            self.db.execute("INSERT INTO events VALUES (?,?,?,?,?,?,?,?)",
                            (message["device"], message["boot"], message["seq"], message["ts"],
                             message["event"], message.get("rule"), reclaimed_kb(message),
                             json.dumps(message, separators=(",", ":"))))
        elif kind == "resp":
            self.db.execute("UPDATE commands SET ok=?, resp=?, answered=? WHERE id=? AND device=?",
                            (int(message["ok"]), json.dumps(message), time.time(),
                             message["id"], message["device"]))

    def record_command(self, command: Dict[str, Any], device: str) -> None:
        """A command as sent (its response is filled in when the `resp` is recorded)."""
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO commands (id, device, cmd, args, sent) "
                            "VALUES (?,?,?,?,?)", (command["id"], device, command["cmd"],
                                                   json.dumps(command.get("args", {})),
                                                   command["ts"]))

    def prune(self, older_than: float) -> int:
        """Delete rows whose time is before `older_than` (Unix seconds); returns rows deleted."""
        deleted = 0
        with self.db:
            for table, column in (("messages", "received"), ("samples", "ts"), ("events", "ts"),
                                  ("alerts", "ts"), ("commands", "sent")):
                deleted += self.db.execute("DELETE FROM %s WHERE %s < ?" % (table, column),
                                           (older_than,)).rowcount
        return deleted

    # -- reading ---------------------------------------------------------------------------

    def devices(self) -> List[Dict[str, Any]]:
        """Every device as a dict (JSON columns decoded), with `missing` summed over its boots.

        `missing` is None for a device whose seqs are not counted here (a recorder
        with --share sees only part of each device's messages).
        """
        missing = dict(self.db.execute(
            "SELECT device, SUM(CASE WHEN received > 0 THEN MAX(0, max_seq - first_seq + 1 - received)"
            " ELSE 0 END) FROM boots GROUP BY device").fetchall())
        out = []
        for row in self.db.execute("SELECT * FROM devices ORDER BY device"):
            device = dict(row)
            for column in JSON_COLUMNS:
                device[column] = json.loads(device[column]) if device[column] else None
            counted = missing.get(device["device"])
            device["missing"] = None if counted is None else int(counted)
            out.append(device)
        return out

    def device(self, device_id: str) -> Optional[Dict[str, Any]]:
        """One device as `devices()` gives it, or None."""
        row = self.db.execute("SELECT * FROM devices WHERE device=?", (device_id,)).fetchone()
        if row is None:
            return None
        device = _decoded(row)
        counted = self.db.execute(
            "SELECT SUM(CASE WHEN received > 0 THEN MAX(0, max_seq - first_seq + 1 - received) "
            "ELSE 0 END) FROM boots WHERE device=?", (device_id,)).fetchone()[0]
        device["missing"] = None if counted is None else int(counted)
        return device

    def recent_devices(self, limit: int) -> List[Dict[str, Any]]:
        """The `limit` devices heard from last, the longest silent of them first (no `missing`)."""
        rows = self.db.execute("SELECT * FROM devices ORDER BY last_seen DESC LIMIT ?",
                               (limit,)).fetchall()
        return [_decoded(r) for r in rows[::-1]]

    def iter_devices(self) -> Iterator[Dict[str, Any]]:
        """Every device as `devices()` gives them, one at a time (memory stays flat)."""
        cursor = self.db.execute(
            "SELECT d.*, m.counted FROM devices d LEFT JOIN (SELECT device, SUM(CASE WHEN "
            "received > 0 THEN MAX(0, max_seq - first_seq + 1 - received) ELSE 0 END) AS counted "
            "FROM boots GROUP BY device) m ON m.device = d.device ORDER BY d.device")
        for row in cursor:
            device = _decoded(row)
            counted = device.pop("counted")
            device["missing"] = None if counted is None else int(counted)
            yield device

    def boots(self) -> List[tuple]:
        """(device, boot, first_seen, first_seq, max_seq, received) for every boot seen."""
        return [tuple(r) for r in self.db.execute("SELECT * FROM boots")]

    def boot(self, device: str, boot: str) -> Optional[tuple]:
        """(device, boot, first_seen, first_seq, max_seq, received) of one boot, or None."""
        row = self.db.execute("SELECT * FROM boots WHERE device=? AND boot=?",
                              (device, boot)).fetchone()
        return tuple(row) if row else None

    def has_message(self, device: str, boot: str, seq: int) -> bool:
        return self.db.execute("SELECT 1 FROM messages WHERE device=? AND boot=? AND seq=?",
                               (device, boot, seq)).fetchone() is not None

    def samples(self, device: str, since: float = 0.0, limit: Optional[int] = None) -> List[sqlite3.Row]:
        """Samples of `device` oldest first (the newest `limit` when given)."""
        if limit:
            rows = self.db.execute("SELECT * FROM samples WHERE device=? AND ts>=? "
                                   "ORDER BY ts DESC LIMIT ?", (device, since, limit)).fetchall()
            return rows[::-1]
        return self.db.execute("SELECT * FROM samples WHERE device=? AND ts>=? ORDER BY ts",
                               (device, since)).fetchall()

    def events(self, device: str, limit: Optional[int] = None) -> List[Dict[str, Any]]:
        """Events of `device` as messages, oldest first (the newest `limit` when given)."""
        sql = "SELECT body FROM events WHERE device=? ORDER BY ts DESC"
        rows = self.db.execute(sql + (" LIMIT %d" % limit if limit else ""), (device,)).fetchall()
        return [json.loads(r[0]) for r in rows[::-1]]

    def messages(self, device: Optional[str] = None) -> List[Dict[str, Any]]:
        sql, args = "SELECT body FROM messages", ()
        if device:
            sql, args = sql + " WHERE device=?", (device,)
        return [json.loads(r[0]) for r in self.db.execute(sql, args)]

    def alerts(self, device: Optional[str] = None, limit: int = 100) -> List[Dict[str, Any]]:
        sql = "SELECT * FROM alerts%s ORDER BY ts DESC LIMIT ?" % (" WHERE device=?" if device else "")
        args = (device, limit) if device else (limit,)
        return [dict(r) for r in self.db.execute(sql, args)][::-1]

    def commands(self, device: Optional[str] = None) -> List[Dict[str, Any]]:
        sql = "SELECT * FROM commands%s ORDER BY sent" % (" WHERE device=?" if device else "")
        return [dict(r) for r in self.db.execute(sql, (device,) if device else ())]


def _decoded(row: sqlite3.Row) -> Dict[str, Any]:
    device = dict(row)
    for column in JSON_COLUMNS:
        device[column] = json.loads(device[column]) if device[column] else None
    return device


def reclaimed_kb(event: Dict[str, Any]) -> Optional[int]:
    """RSS a collection gave back (negative when RSS grew), or None when not measured."""
    before, after = event.get("rss_before_kb"), event.get("rss_after_kb")
    if isinstance(before, int) and isinstance(after, int):
        return before - after
    return None
