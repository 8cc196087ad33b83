"""`gc-console forget DEVICE`: a retired device leaves the console's database, all of it.

Every row of the device goes: its state, messages, samples, events, boots,
commands, alerts, and what operators noted about it (acknowledgements,
silences, senders). If it reports again it comes back as a new device.
A running `serve` forgets it in memory too (the device page's Forget
button, or `Backend.forget`); a running `watch` or `ingest` would write
the device back from memory, so stop those first.
"""

import sqlite3
from typing import Any, Dict

TABLES = ("devices", "messages", "samples", "events", "boots", "commands", "alerts", "leaks",
          "console_acks", "console_silences", "console_senders")


def forget(db_path: str, device: str) -> Dict[str, int]:
    """Delete every row of `device`; returns rows deleted per table (tables absent are skipped)."""
    db = sqlite3.connect(db_path, timeout=30.0)
    try:
        present = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        deleted = {}
        with db:
            for table in TABLES:
                if table in present:
                    deleted[table] = db.execute("DELETE FROM %s WHERE device=?" % table,
                                                (device,)).rowcount
        return deleted
    finally:
        db.close()


def forget_in_memory(ingestor: Any, device: str) -> bool:
    """Drop `device` from a running ingestor's state (its rows are not written back)."""
    with ingestor.lock:
        found = ingestor.devices.pop(device, None) is not None
        for key in [k for k in ingestor.seqs if k[0] == device]:
            del ingestor.seqs[key]
        ingestor._boot_order.pop(device, None)
        ingestor._periods.pop(device, None)
        ingestor._last_telemetry_ts.pop(device, None)
        leaks = getattr(ingestor, "leaks", None)
        if leaks is not None:
            leaks.watches.pop(device, None)
        ingestor._dirty_devices.discard(device)
        ingestor._dirty_boots = set(k for k in ingestor._dirty_boots if k[0] != device)
        ingestor._pending_alerts = [a for a in ingestor._pending_alerts if a[0] != device]
        keep = [i for i, m in enumerate(ingestor._pending) if m["device"] != device]
        ingestor._pending = [ingestor._pending[i] for i in keep]
        ingestor._pending_at = [ingestor._pending_at[i] for i in keep]
    return found
