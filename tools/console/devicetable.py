"""The ingestor's devices in memory: at most `max_devices`, the longest silent dropped first.

100,000 device ids (most of them one message each, as a typo'd id or a probe
makes) grew the console from 40 to 285 MB. The ingestor keeps its devices in an
OrderedDict, least recently heard from first; past `max_devices` the first goes
(its row written first), with its boots' seq windows and learnt period. Its
rows stay in the store: `devices`, `watch` and `plot` read them there, and when
it speaks again its state (state, boot, counts per rule, alerts) is read back.
See docs/console-robustness.md.
"""

import logging
import sqlite3
from typing import Any, Dict

from . import leaks
from .safetext import clean

log = logging.getLogger("gc-console")


class DeviceTable(object):
    """Mixed into Ingestor: `_device` finds, reloads or makes a device; `_evict` bounds them."""

    def _device(self, device_id: str, now: float) -> Dict[str, Any]:
        device = self.devices.get(device_id)
        if device is not None:
            self.devices.move_to_end(device_id)   # type: ignore[attr-defined]
            return device
        stored = None
        if device_id not in self._dirty_devices:
            try:
                stored = self.store.device(device_id)
            except sqlite3.Error as exc:   # locked past its timeout: start afresh, not raise
                log.debug("device %s not read back: %s", clean(device_id), exc)
        if stored is not None:   # evicted earlier (or from before a restart): carry on from it
            device = in_memory(stored)
            self._judge_stored(device)
        else:
            device = {"device": device_id, "first_seen": now, "rules": {}, "alerts": {},
                      "state": "online", "reason": None}
        self.devices[device_id] = device
        self._evict()
        return device

    def _judge_stored(self, device: Dict[str, Any]) -> None:
        """Carry on judging a loaded device's boot for leaks where its records stop."""
        if not device.get("boot"):
            return
        try:
            telemetry = leaks.stored_telemetry(self.store, device)
        except sqlite3.Error as exc:   # judged afresh from its next telemetry instead
            log.debug("telemetry of %s not read back: %s", clean(device["device"]), exc)
            return
        watch = leaks.judge_stored(telemetry, device)
        self.leaks.watches[device["device"]] = (device["boot"], watch)
        leaks.apply(device, watch)
        self._dirty_devices.add(device["device"])

    def _evict(self) -> None:
        """Forget the longest-silent devices beyond max_devices (their rows stay in the store)."""
        while len(self.devices) > self.max_devices:
            oldest = next(iter(self.devices))
            if oldest in self._dirty_devices:   # (a dirty boot's device is dirty too)
                try:
                    self.flush()
                except sqlite3.Error as exc:   # its latest state is lost; its messages stay queued
                    log.debug("evicting %s unwritten: %s", clean(oldest), exc)
                    self._dirty_devices.discard(oldest)
                    self._dirty_boots = set(k for k in self._dirty_boots if k[0] != oldest)
            del self.devices[oldest]
            for boot in self._boot_order.pop(oldest, ()):
                self.seqs.pop((oldest, boot), None)
            self._periods.pop(oldest, None)
            self._last_telemetry_ts.pop(oldest, None)
            self.leaks.forget(oldest)
            self.stats["evicted"] += 1


def in_memory(device: Dict[str, Any]) -> Dict[str, Any]:
    """A device row from the store as the ingestor keeps it."""
    device.pop("missing", None)
    device["rules"] = device.get("rules") or {}
    device["alerts"] = device.get("alerts") or {}
    return device
