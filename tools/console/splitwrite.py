"""Writing a batch when the database refuses one of its rows: split it, drop only that row.

A batch is one transaction (`Store.write_batch`), so one row SQLite cannot
hold (an integer past 64 bits, a value of a type it cannot bind, a row a
constraint or trigger rejects) would otherwise fail the whole batch on every
retry: the queue would grow and healthy devices would never be written.
`write` tries the batch whole; on a row-level refusal it halves the messages
until each bad one stands alone, drops it and says which; device, boot and
alert rows are retried one by one the same way.

A database that cannot be written at all (locked, disk full, gone) raises
sqlite3.OperationalError, which is not a row's fault: it propagates and the
caller keeps the whole batch queued. See docs/console-robustness.md.
"""

import sqlite3
from typing import Any, Dict, List, Sequence, Tuple

# What SQLite or its Python binding raise for one row (3.11+ says ProgrammingError for a
# value it cannot bind; older versions InterfaceError; OverflowError for ints past 64 bits).
ROW_ERRORS = (OverflowError, ValueError, TypeError, sqlite3.InterfaceError, sqlite3.DataError,
              sqlite3.IntegrityError, sqlite3.ProgrammingError)


def write(store, messages: Sequence[Dict[str, Any]], received: Sequence[float],
          devices: Sequence[Dict[str, Any]], boots: Sequence[tuple],
          alerts: Sequence[tuple]) -> List[str]:
    """Write everything the database takes; returns one sentence per row it refused."""
    try:
        store.write_batch(messages, received, devices, boots, alerts)
        return []
    except ROW_ERRORS as exc:
        _usable(store, exc)
    refused: List[str] = []
    _messages(store, list(zip(messages, received)), refused)
    for slot, (rows, label) in enumerate(((devices, "device row"), (boots, "boot row"),
                                          (alerts, "alert row"))):
        _rows(store, list(rows), slot, label, refused)
    return refused


def _messages(store, items: List[Tuple[Dict[str, Any], float]], refused: List[str]) -> None:
    if not items:
        return
    try:
        store.write_batch([m for m, _ in items], [at for _, at in items], (), ())
        return
    except ROW_ERRORS as exc:
        _usable(store, exc)
        if len(items) == 1:
            message = items[0][0]
            refused.append("message %s/%s/%s: %s: %s" % (
                _id(message.get("device")), _id(message.get("boot")), _id(message.get("seq")),
                type(exc).__name__, exc))
            return
    half = len(items) // 2
    _messages(store, items[:half], refused)
    _messages(store, items[half:], refused)


def _rows(store, rows: list, slot: int, label: str, refused: List[str]) -> None:
    """Device, boot or alert rows (`slot` 0, 1, 2 of write_batch's last three): all, else each."""
    if not rows:
        return
    parts: List[list] = [[], [], []]
    parts[slot] = rows
    try:
        store.write_batch((), (), *parts)
        return
    except ROW_ERRORS as exc:
        _usable(store, exc)
        if len(rows) == 1:
            name = rows[0].get("device") if isinstance(rows[0], dict) else rows[0][0]
            refused.append("%s of %s: %s: %s" % (label, _id(name), type(exc).__name__, exc))
            return
    for row in rows:
        _rows(store, [row], slot, label, refused)


def _usable(store, exc: BaseException) -> None:
    """Re-raise as OperationalError when the database itself is the trouble (e.g. closed)."""
    try:
        store.db.execute("SELECT 1").fetchone()
    except Exception as probe:
        raise sqlite3.OperationalError("database unusable (%s; %s)" % (exc, probe))


def _id(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
