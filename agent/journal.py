# The journal: messages kept on flash while the uplink is down, or over a restart.
#
# Records go into append-only segment files (`seg-000000000042.log`, numbered in
# write order across restarts), each as an 8-byte header, big-endian length and
# CRC-32 of the payload, then the payload. fsync is batched (every `sync_every`
# seconds, and when a segment is closed) to spare the flash: a power loss may
# lose the last few seconds, never the journal. The total size is bounded: the
# oldest closed segments are removed first and their records counted in
# `dropped`.
#
# Read back after a crash, a torn or damaged record fails its length or CRC check
# and is skipped and counted in `corrupt`; reading then scans forward, byte by
# byte, for the next record whose header and CRC check out. A record of length 0
# is impossible (zeroed blocks after a power loss would otherwise read as empty
# records), so empty payloads are refused. Thread-safe.

import collections
import os
import re
import struct
import threading
import time
import zlib

from .errors import JournalError

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Callable, Dict, List, Optional, Set, Tuple  # noqa: F401 (type comments)

_HEADER = struct.Struct(">II")
_NAME = re.compile(r"^seg-(\d+)\.log$")


def _record_at(data, pos):  # type: (memoryview, int) -> Optional[bytes]
    # The payload of a valid record at `pos`, or None if none starts there.
    if len(data) - pos < _HEADER.size:
        return None
    length, crc = _HEADER.unpack_from(data, pos)
    start = pos + _HEADER.size
    # Checked against the bytes present before anything is sliced or
    # allocated: a garbage length of 4 GB costs nothing.
    if length == 0 or length > len(data) - start:
        return None
    payload = data[start:start + length]
    if zlib.crc32(payload) & 0xFFFFFFFF != crc:
        return None
    return bytes(payload)


def _parse(data):  # type: (bytes) -> Tuple[List[bytes], int]
    # The valid records in `data`, and how many damaged stretches were skipped.
    view = memoryview(data)
    records = []  # type: List[bytes]
    bad = 0
    pos = 0
    resyncing = False
    while pos < len(view):
        payload = _record_at(view, pos)
        if payload is None:
            if not resyncing:   # one damaged record, however many bytes it spans
                bad += 1
                resyncing = True
            pos += 1
            continue
        records.append(payload)
        pos += _HEADER.size + len(payload)
        resyncing = False
    return records, bad


class Journal(object):
    # Records on flash, delivered a segment at a time, oldest first.

    def __init__(self, directory, max_bytes=2 * 1024 * 1024, segment_bytes=64 * 1024, sync_every=5.0,
                 clock=time.monotonic):  # type: (str, int, int, float, Callable[[], float]) -> None
        self._dir = directory
        self._max_bytes = max_bytes
        # At least two segments fit under max_bytes, so the bound never forces
        # dropping the segment just written.
        self._limit = min(segment_bytes, max_bytes // 2)
        self._sync_every = sync_every
        self.dropped = 0
        self.corrupt = 0
        self._clock = clock
        self._lock = threading.RLock()
        self._sizes = collections.OrderedDict()  # type: Dict[str, int]  # every segment, in write order
        self._counts = {}  # type: Dict[str, int]  # valid records, once known
        self._checked = set()  # type: Set[str]  # corruption already counted
        self._fd = None  # type: Optional[int]
        self._current = None  # type: Optional[str]
        self._last_sync = clock()
        numbers = []
        try:
            os.makedirs(directory, exist_ok=True)
            for name in os.listdir(directory):
                match = _NAME.match(name)
                if match:
                    numbers.append((int(match.group(1)), name))
            for _, name in sorted(numbers):
                self._sizes[name] = os.path.getsize(os.path.join(directory, name))
        except OSError as e:
            raise JournalError("journal directory %s: %s" % (directory, e)) from e
        # Never append to an old segment: its tail may be torn.
        self._next = max(numbers)[0] + 1 if numbers else 1

    def append(self, payload):  # type: (bytes) -> None
        # Write one record; rotate, fsync and drop the oldest segments as needed.
        record = _HEADER.pack(len(payload), zlib.crc32(payload) & 0xFFFFFFFF) + payload
        if not payload or len(record) > self._limit:
            raise JournalError("journal %s: a record of %d bytes does not fit (1 to %d)"
                               % (self._dir, len(payload), self._limit - _HEADER.size))
        with self._lock:
            try:
                if self._fd is None:
                    self._open()
                self._write(record)
                if self._sizes[self._current] >= self._limit:
                    self._close()
                elif self._clock() - self._last_sync >= self._sync_every:
                    self.sync()
            except OSError as e:
                raise JournalError("journal %s: %s" % (self._dir, e)) from e
            self._bound()

    def sync(self):  # type: () -> None
        # fsync the open segment now (writes go straight to the OS, unbuffered).
        with self._lock:
            if self._fd is not None:
                try:
                    os.fsync(self._fd)
                except OSError as e:
                    raise JournalError("journal %s: %s" % (self._dir, e)) from e
            self._last_sync = self._clock()

    def oldest(self):  # type: () -> Optional[Tuple[str, List[bytes]]]
        # The oldest segment's name and valid records (possibly none); None if empty.
        with self._lock:
            while self._sizes:
                name = next(iter(self._sizes))
                if name == self._current:
                    self.close()   # the next append starts a new segment
                records = self._read(name)
                if records is not None:
                    return name, records
            return None

    def remove(self, name):  # type: (str) -> None
        # Delete a segment once delivered (a no-op if it is already gone).
        with self._lock:
            if name not in self._sizes:
                return
            if name == self._current:
                self.close()
            try:
                os.remove(os.path.join(self._dir, name))
            except FileNotFoundError:
                pass
            except OSError as e:
                raise JournalError("journal %s: %s" % (self._dir, e)) from e
            self._forget(name)

    def pending(self):  # type: () -> int
        # Valid records in all segments (reads each older segment once).
        with self._lock:
            for name in list(self._sizes):
                if name not in self._counts:
                    self._read(name)
            return sum(self._counts.values())

    def close(self):  # type: () -> None
        # Sync and close the open segment; safe to call twice.
        with self._lock:
            try:
                self._close()
            except OSError as e:
                raise JournalError("journal %s: %s" % (self._dir, e)) from e

    def _open(self):  # type: () -> None
        name = "seg-%012d.log" % self._next
        self._fd = os.open(os.path.join(self._dir, name),
                           os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._next += 1
        self._current = name
        self._sizes[name] = 0
        self._counts[name] = 0
        self._checked.add(name)   # written by us: nothing to count
        try:
            # The new name must survive a power loss too; not every
            # filesystem can fsync a directory, and it is not worth failing for.
            dir_fd = os.open(self._dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            pass

    def _write(self, record):  # type: (bytes) -> None
        name = self._current
        done = 0
        try:
            while done < len(record):   # os.write may be short when the disk fills
                done += os.write(self._fd, record[done:])
        except OSError:
            # Cut the partial record off; if even that fails, abandon the
            # segment so the next append starts clean (the reader skips the tail).
            try:
                os.ftruncate(self._fd, self._sizes[name])
            except OSError:
                self._checked.discard(name)
                self._abandon()
            raise
        self._sizes[name] += len(record)
        self._counts[name] += 1

    def _close(self):  # type: () -> None
        if self._fd is None:
            return
        try:
            os.fsync(self._fd)
            self._last_sync = self._clock()
        finally:
            self._abandon()

    def _abandon(self):  # type: () -> None
        fd, self._fd, self._current = self._fd, None, None
        try:
            os.close(fd)
        except OSError:
            pass

    def _bound(self):  # type: () -> None
        # Remove the oldest closed segments until the total fits in max_bytes.
        while self.bytes > self._max_bytes:
            name = next(iter(self._sizes))
            if name == self._current:
                return
            if name not in self._counts:
                self._read(name)
            count = self._counts.get(name, 0)
            self.remove(name)
            self.dropped += count

    def _read(self, name):  # type: (str) -> Optional[List[bytes]]
        # A segment's valid records, counting its damage once; None if it vanished.
        try:
            with open(os.path.join(self._dir, name), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            self._forget(name)
            return None
        except OSError as e:
            raise JournalError("journal %s: %s" % (self._dir, e)) from e
        records, bad = _parse(data)
        if name not in self._checked:
            self._checked.add(name)
            self.corrupt += bad
        self._counts[name] = len(records)
        return records

    def _forget(self, name):  # type: (str) -> None
        self._sizes.pop(name, None)
        self._counts.pop(name, None)
        self._checked.discard(name)

    # Last in the class: from here on, `bytes` in the class body is this property.
    @property
    def bytes(self):  # type: () -> int
        # Total size of the segment files.
        with self._lock:
            return sum(self._sizes.values())
