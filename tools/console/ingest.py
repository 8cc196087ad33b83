"""Messages in, fleet state and store rows out: the part every source shares.

`Ingestor.accept(payload)` takes one payload from any source (MQTT, serial,
a test) and

1. decodes and validates it with `agent.messages.decode` (one schema; zlib
   inflation is capped there), counting what it refuses by reason;
2. drops duplicates by (device, boot, seq): a window of recent seqs per boot
   in memory, older ones looked up in the store, so memory stays bounded;
3. counts what is missing per boot: the seqs between the first and the
   highest seen that never arrived (the Last Will's seq 0 aside), so a message
   that arrives late (a replay) fills its gap again. Counting starts at the
   first message seen of a boot, not at 1: a console started in the middle of
   a boot has not "missed" what came before it. Retained messages (the
   broker's snapshot of `status`) are recorded but not counted: they are old;
4. keeps each device's state (online/offline and why, memory, last
   collection, collections per rule, alerts) and queues rows for the store,
   written in batches by `flush()`.

Silence: a device is marked offline when nothing came for SILENT_FACTOR x its
report period. The period is learnt from the telemetry the device sends: the
median gap between the `ts` of its last telemetry messages (the agent's clock,
so a burst after an outage does not shrink it); from a single message of
several samples, their spacing times their number; before any telemetry,
`default_interval` (one hour: the DAL cellular profiles send 12 five-minute
samples per message).
"""

import logging
import sqlite3
import statistics
import threading
import time
from collections import OrderedDict, deque
from typing import Any, Callable, Deque, Dict, List, NamedTuple, Optional, Set

from agent import messages
from agent.errors import MessageError

from . import alerts as alert_rules
from . import leaks, splitwrite
from .devicetable import DeviceTable, in_memory
from .safetext import clean
from .store import Store, reclaimed_kb

log = logging.getLogger("gc-console")

SILENT_FACTOR = 3.0
SEQ_WINDOW = 4096          # recent seqs kept per boot; older duplicates are checked in the store
BOOTS_KEPT = 4             # boots per device whose seq windows stay in memory
FLUSH_EVERY = 500          # messages per write batch (and flush() on a timer in between)
MAX_QUEUED = 100000        # messages held while the database cannot be written
PERIODS_KEPT = 8
MAX_DEVICES = 10000        # devices kept in memory; the longest silent go first (still in the store)
RULES_KEPT = 32            # distinct rule names counted per device; the rest under "other"
BAD_REASONS = ("too_large", "zlib", "not_json", "schema", "range", "topic")


class Outcome(NamedTuple):
    """What `accept` did with one payload: `status` is new, duplicate or bad."""

    status: str
    message: Optional[Dict[str, Any]] = None
    reason: str = ""


class _Seqs(object):
    """What arrived of one boot: highest seq, distinct count, the recent seqs themselves.

    `floor` is the highest seq whose arrival is no longer (or never was) tracked
    in `recent`: at or below it, only the store knows.
    """

    __slots__ = ("first_seen", "first_seq", "floor", "max_seq", "received", "recent")

    def __init__(self, first_seq: int = 0, max_seq: int = 0, received: int = 0,
                 first_seen: float = 0.0, floor: int = -1) -> None:
        self.first_seq = first_seq
        self.max_seq = max_seq
        self.received = received
        self.recent: Set[int] = set()
        self.first_seen = first_seen
        self.floor = floor

    @property
    def missing(self) -> int:
        if not self.received:
            return 0
        return max(0, self.max_seq - self.first_seq + 1 - self.received)

    def count(self, seq: int) -> None:
        """One more distinct seq of this boot arrived."""
        self.first_seq = seq if not self.received else min(self.first_seq, seq)
        self.max_seq = max(self.max_seq, seq)
        self.received += 1


class Ingestor(DeviceTable):
    """Fleet state from a stream of payloads; thread-safe; writes through `store` in batches."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time,
                 default_interval: float = 3600.0, ceiling_margin: float = 0.10,
                 on_alert: Optional[Callable[[Dict[str, Any]], None]] = None,
                 on_message: Optional[Callable[[Dict[str, Any]], None]] = None,
                 max_bytes: int = messages.MAX_BYTES, count_gaps: bool = True,
                 max_devices: int = MAX_DEVICES) -> None:
        self.store = store
        self.clock = clock
        self.default_interval = default_interval
        self.ceiling_margin = ceiling_margin
        self.on_alert = on_alert
        self.on_message = on_message
        self.max_bytes = max_bytes
        self.count_gaps = count_gaps   # False with --share: this instance sees part of each stream
        self.max_devices = max(1, max_devices)
        self.lock = threading.RLock()
        # Least recently heard from first: what goes when there are more than max_devices.
        self.devices: Dict[str, Dict[str, Any]] = OrderedDict()
        self.seqs: Dict[tuple, _Seqs] = {}
        self._boot_order: Dict[str, Deque[str]] = {}
        self._periods: Dict[str, Deque[float]] = {}
        self._last_telemetry_ts: Dict[str, float] = {}
        self._pending: List[Dict[str, Any]] = []
        self._pending_at: List[float] = []
        self._dirty_devices: Set[str] = set()
        self._dirty_boots: Set[tuple] = set()
        self._pending_alerts: List[tuple] = []
        # unwritten: messages not written (queue overflow while the database was down, plus
        # store_refused: rows the database itself refused, see splitwrite.py); evicted: devices
        # dropped from memory (they stay in the store and come back when they speak).
        self.stats = {"received": 0, "recorded": 0, "duplicates": 0, "bad": 0, "unwritten": 0,
                      "store_refused": 0, "evicted": 0}
        self.bad = dict.fromkeys(BAD_REASONS, 0)
        self.leaks = leaks.FleetLeaks()
        self.store.db.executescript(leaks.SCHEMA)
        self._load()

    def _load(self) -> None:
        """Carry on from what the store holds: the devices heard from last, up to max_devices.

        Seq counts per boot, and devices not loaded here, are read when they are needed.
        """
        for device in self.store.recent_devices(self.max_devices):
            self.devices[device["device"]] = in_memory(device)
            self._judge_stored(device)

    # -- intake ----------------------------------------------------------------------------

    def accept(self, payload: bytes, topic: Optional[str] = None, prefix: str = "gcagent",
               retained: bool = False) -> Outcome:
        """Decode, check and record one payload; never raises on bad input."""
        now = self.clock()
        with self.lock:
            self.stats["received"] += 1
            try:
                message = messages.decode(bytes(payload), self.max_bytes)
            except MessageError as exc:
                return self._refuse(exc.reason, str(exc), topic)
            if topic is not None and not _topic_matches(topic, prefix, message):
                return self._refuse("topic", "message of device %r (%s) on topic %s"
                                    % (message["device"], message["type"], topic), topic)
            device_id, boot, seq = message["device"], message["boot"], message["seq"]
            seqs = self._seqs(device_id, boot, now)
            if self._seen(seqs, device_id, boot, seq):
                self.stats["duplicates"] += 1
                return Outcome("duplicate", message)
            if seq > 0 and not retained:   # the Will is seq 0; a retained status is old news
                seqs.count(seq)
            seqs.recent.add(seq)
            if len(seqs.recent) > SEQ_WINDOW + SEQ_WINDOW // 4:   # trim now and then, not each time
                seqs.floor = max(seqs.floor, seqs.max_seq - SEQ_WINDOW)
                seqs.recent = set(s for s in seqs.recent if s > seqs.floor)
            self._dirty_boots.add((device_id, boot))
            try:
                self._update(message, now)
            except Exception:   # a fault of ours must not stop the recording (it is still kept)
                self.stats["update_errors"] = self.stats.get("update_errors", 0) + 1
                log.exception("fleet state not updated for a message of %s", clean(device_id))
            self._pending.append(message)
            self._pending_at.append(now)
            self.stats["recorded"] += 1
            if len(self._pending) >= FLUSH_EVERY:
                try:
                    self.flush()
                except sqlite3.Error as exc:   # kept queued; housekeeping retries and says so
                    log.debug("batch not written yet: %s", exc)
        if self.on_message is not None:
            self.on_message(message)
        return Outcome("new", message)

    def _refuse(self, reason: str, sentence: str, topic: Optional[str]) -> Outcome:
        self.stats["bad"] += 1
        self.bad[reason] += 1
        count = self.bad[reason]
        if count <= 3 or count % 1000 == 0:   # a flood of junk must not flood the log too
            log.warning("refused a message (%s, %d so far)%s: %s", reason, count,
                        " on " + clean(topic[:200]) if topic else "", clean(sentence[:200]))
        return Outcome("bad", None, reason)

    def _seqs(self, device: str, boot: str, now: float) -> _Seqs:
        key = (device, boot)
        seqs = self.seqs.get(key)
        if seqs is None:
            row = _read(self.store.boot, device, boot) if key not in self._dirty_boots else None
            if row is not None:   # a boot from before a restart, or one evicted below
                seqs = _Seqs(row[3], row[4], row[5], row[2], floor=row[4])
            else:
                seqs = _Seqs(first_seen=now)
            self.seqs[key] = seqs
            order = self._boot_order.setdefault(device, deque())
            order.append(boot)
            while len(order) > BOOTS_KEPT:   # an old boot's counts stay in the store
                if (device, order[0]) in self._dirty_boots:
                    try:
                        self.flush()
                    except sqlite3.Error:
                        break   # kept in memory until the store can take its counts
                self.seqs.pop((device, order.popleft()), None)
        return seqs

    def _seen(self, seqs: _Seqs, device: str, boot: str, seq: int) -> bool:
        if seq in seqs.recent:
            return True
        if seq > seqs.floor:
            return False
        # Trimmed seqs are thousands of messages old, so already written: the store decides.
        # A store that cannot be read says "not seen": its primary key still keeps one copy.
        return bool(_read(self.store.has_message, device, boot, seq))

    # -- device state ----------------------------------------------------------------------

    def _update(self, message: Dict[str, Any], now: float) -> None:
        device = self._device(message["device"], now)
        kind = message["type"]
        historical = bool(message.get("historical"))
        current = device.get("boot")
        if not historical and message["boot"] != current and not (kind == "status"
                                                                  and message["state"] == "offline"):
            self._new_boot(device, message["boot"])
        if kind == "status":
            if message["state"] == "offline":
                if message["boot"] == device.get("boot") or device.get("boot") is None:
                    device["boot"] = message["boot"]
                    device["state"] = "offline"
                    device["reason"] = "lost" if message.get("will") else "stopped"
            else:
                device["state"], device["reason"] = "online", None
            if message["state"] == "online" or device.get("status") is None:
                device["status"] = {k: message.get(k) for k in messages.STATUS_FIELDS}
                device["model"] = message["model"]
                device["ceiling_kb"] = message["ceiling_kb"]
        elif not historical and message["boot"] == device.get("boot"):
            device["state"], device["reason"] = "online", None   # a silent device spoke again
        if not (kind == "status" and message["state"] == "offline"):
            device["last_seen"] = now
        if kind == "telemetry":
            self._telemetry(device, message)
        elif kind == "event":
            self._event(device, message)
        self._check_alerts(device, now)
        self._dirty_devices.add(device["device"])

    def _new_boot(self, device: Dict[str, Any], boot: str) -> None:
        device["boot"] = boot
        device["dropped"] = 0
        device.pop("escalated", None)
        self.leaks.new_boot(device, boot)
        self._periods.pop(device["device"], None)
        self._last_telemetry_ts.pop(device["device"], None)

    def _telemetry(self, device: Dict[str, Any], message: Dict[str, Any]) -> None:
        samples = message["samples"]
        if samples:
            last = max(samples, key=lambda s: s["ts"])
            device["rss_kb"] = last["rss_kb"]
            device["mem_free_kb"] = last["mem_free_kb"]
            device["mem_total_kb"] = last["mem_total_kb"]
        if message["boot"] == device.get("boot"):   # replayed samples too: they fill the floor's gaps
            self.leaks.telemetry(device, message)
        if message.get("historical") or message["boot"] != device.get("boot"):
            return
        device["dropped"] = message["dropped"]
        device["buffered"] = message["buffered"]
        name = device["device"]
        periods = self._periods.setdefault(name, deque(maxlen=PERIODS_KEPT))
        previous = self._last_telemetry_ts.get(name)
        if previous is not None and message["ts"] > previous:
            periods.append(message["ts"] - previous)
        self._last_telemetry_ts[name] = max(message["ts"], previous or 0.0)
        if periods:
            device["interval_s"] = statistics.median(periods)
        elif len(samples) >= 2:
            times = sorted(s["ts"] for s in samples)
            spacing = (times[-1] - times[0]) / (len(times) - 1)
            if spacing > 0:
                device["interval_s"] = spacing * len(times)

    def _event(self, device: Dict[str, Any], message: Dict[str, Any]) -> None:
        event = message["event"]
        if event == "collect":
            rule = message.get("rule") or "?"
            if rule not in device["rules"] and len(device["rules"]) >= RULES_KEPT:
                rule = "other"   # a device inventing rule names must not grow the console
            device["rules"][rule] = device["rules"].get(rule, 0) + 1
            if message["ts"] >= (device.get("last_collect_ts") or 0):
                device["last_collect_ts"] = message["ts"]
                device["last_collect_rule"] = rule
                device["last_reclaimed_kb"] = reclaimed_kb(message)
        elif event == "alert":
            device["escalated"] = message.get("rule") or "low-memory"
        elif event == "recovered":
            device.pop("escalated", None)
        # leak_suspected / leak_cleared need nothing here: the console reaches the same
        # verdict from the same telemetry (tools/console/leaks.py).

    # -- silence and alerts ----------------------------------------------------------------

    def period(self, device: Dict[str, Any]) -> float:
        """Seconds between this device's reports, as learnt (see the module docstring)."""
        return device.get("interval_s") or self.default_interval

    def tick(self) -> None:
        """Mark silent devices offline and re-check alerts; call every second or so."""
        now = self.clock()
        with self.lock:
            for device in self.devices.values():
                last = device.get("last_seen") or device.get("first_seen") or now
                if device.get("state") == "online" and now - last > SILENT_FACTOR * self.period(device):
                    device["state"], device["reason"] = "offline", "silent"
                    self._dirty_devices.add(device["device"])
                self._check_alerts(device, now)

    def _check_alerts(self, device: Dict[str, Any], now: float) -> None:
        wanted = alert_rules.active(device, self.ceiling_margin)
        before = device.get("alerts") or {}
        if wanted == before:
            return
        device["alerts"] = wanted
        self._dirty_devices.add(device["device"])
        changes = [(kind, "raised", detail) for kind, detail in wanted.items()
                   if before.get(kind) is None]
        changes += [(kind, "cleared", before[kind]) for kind in before if kind not in wanted]
        for kind, state, detail in changes:
            self._pending_alerts.append((device["device"], kind, now, state, detail))
            if self.on_alert is not None:
                try:
                    self.on_alert({"device": device["device"], "alert": kind, "state": state,
                                   "detail": detail, "ts": round(now, 3)})
                except Exception as exc:   # republishing is best effort; recording is not
                    log.warning("could not republish alert %s of %s: %s", kind,
                                clean(device["device"]), exc)

    # -- writing ---------------------------------------------------------------------------

    def flush(self) -> int:
        """Write what is queued in one transaction; returns how many messages were written.

        When the write fails (disk full, database locked for 30 s), everything
        stays queued for the next try, up to MAX_QUEUED messages; beyond that the
        oldest are dropped and counted in `stats["unwritten"]`. Raises the
        sqlite3 error so the caller can say so.
        """
        with self.lock:
            if not (self._pending or self._dirty_devices or self._dirty_boots or self._pending_alerts):
                return 0
            devices = [self.devices[d] for d in self._dirty_devices]
            boots = [(d, b, self.seqs[(d, b)].first_seen, self.seqs[(d, b)].first_seq,
                      self.seqs[(d, b)].max_seq, self.seqs[(d, b)].received)
                     for d, b in self._dirty_boots if (d, b) in self.seqs and self.count_gaps]
            try:
                refused = splitwrite.write(self.store, self._pending, self._pending_at, devices,
                                           boots, self._pending_alerts)
                self.leaks.save(self.store.db, devices)
            except sqlite3.Error:
                excess = len(self._pending) - MAX_QUEUED
                if excess > 0:
                    del self._pending[:excess], self._pending_at[:excess]
                    self.stats["unwritten"] += excess
                del self._pending_alerts[:-MAX_QUEUED]
                raise
            for sentence in refused:   # only that row is lost; the rest of the batch is written
                self.stats["store_refused"] += 1
                if sentence.startswith("message "):
                    self.stats["unwritten"] += 1
                if self.stats["store_refused"] <= 3 or self.stats["store_refused"] % 1000 == 0:
                    log.warning("the database refused %s", clean(sentence[:300]))
            written = len(self._pending) - sum(1 for r in refused if r.startswith("message "))
            self._pending, self._pending_at, self._pending_alerts = [], [], []
            self._dirty_devices, self._dirty_boots = set(), set()
            return written

    def missing(self, device: str) -> int:
        """Messages missing from `device` over the boots kept in memory."""
        with self.lock:
            return sum(s.missing for (d, _), s in self.seqs.items() if d == device)


def _read(query: Callable[..., Any], *args: Any) -> Any:
    """A store lookup, or None while the database cannot be read (locked past its timeout)."""
    try:
        return query(*args)
    except sqlite3.Error as exc:
        log.debug("store lookup failed: %s", exc)
        return None


def _topic_matches(topic: str, prefix: str, message: Dict[str, Any]) -> bool:
    """A message must come on its own device's topic of its own type (no impersonation)."""
    return topic == "%s/%s/%s" % (prefix, message["device"], message["type"])
