"""digidevice.datapoint (emulated): uploads to Digi Remote Manager, recorded to a file.

Each uploaded data point becomes one JSON line in DEVICE_DIR/datapoints.jsonl
(stream_id, data, timestamp, units, description, data_type, ...), written
with one append per call, which is what the emulator counts as "arrived at
Remote Manager". While DEVICE_DIR/drm_down exists (the emulator's outage
fault), uploads fail with DataPointException, as they do when the cellular
link or Remote Manager is unreachable. While DEVICE_DIR/drm_stall exists, an
upload hangs as on a link that stopped answering: it goes through if the flag
goes away within its `timeout`, else raises TimeoutError.

Remote Manager's limits are enforced as the server does (FIELD notes in
docs/field.md, "Remote Manager's limits"): at most 250 data points and 2 MB
in one upload (refused with DataPointException, nothing stored), at most
`GCEMU_DRM_RATE` uploads (default 60; 12 on Developer accounts) in any rolling
minute, and one upload at a time per device (throttled with
DataPointException). Each accepted upload is logged in
DEVICE_DIR/drm_uploads.jsonl (time, points, bytes), each refusal in
DEVICE_DIR/drm_refused.jsonl, for tests and the emulator to count.
"""

import enum
import fcntl
import json
import os
import time
from typing import Any, List, Optional, Tuple

from . import _device_dir


class DataType(enum.Enum):
    """The stream's data type, sent as its name."""

    INT = "INT"
    LONG = "LONG"
    FLOAT = "FLOAT"
    DOUBLE = "DOUBLE"
    STRING = "STRING"
    BINARY = "BINARY"
    JSON = "JSON"
    GEOJSON = "GEOJSON"

    def __str__(self) -> str:
        return self.name   # the NAME is what the server takes (Digi's stub)

    def __int__(self) -> int:
        return list(type(self)).index(self)


class DataPointException(RuntimeError):
    """An upload failed; the message says why."""


class DataPoint(object):
    """One data point, for upload_multiple()."""

    def __init__(self, stream_id: str, data, *, description: Optional[str] = None,
                 timestamp: Optional[float] = None, units: Optional[str] = None,
                 geo_location: Optional[Tuple[float, float, float]] = None,
                 quality: Optional[int] = None, data_type: Optional[DataType] = None) -> None:
        if not isinstance(stream_id, str) or not stream_id:
            raise ValueError("invalid data stream id %r" % (stream_id,))
        if data is None:
            raise ValueError("no data for stream %s" % stream_id)
        if data_type is not None and not isinstance(data_type, DataType):
            raise TypeError("data_type must be a DataType, not %r" % (data_type,))
        if isinstance(data, (bytes, bytearray)) and data_type not in (None, DataType.BINARY):
            raise TypeError("binary data needs data_type=DataType.BINARY")
        self.stream_id = stream_id
        self.data = data
        self.description = description
        self.timestamp = timestamp
        self.units = units
        self.geo_location = geo_location
        self.quality = quality
        self.data_type = data_type

    def _record(self, now: float) -> dict:
        if self.data_type == DataType.GEOJSON and not isinstance(self.data, str):
            data = json.dumps(self.data)
        elif isinstance(self.data, (bytes, bytearray)):
            data = bytes(self.data).hex()
        else:
            data = str(self.data)
        record = {"stream_id": self.stream_id, "data": data,
                  "timestamp": float(self.timestamp) if self.timestamp is not None else now,
                  "uploaded": now}
        for key in ("description", "units", "geo_location", "quality"):
            value = getattr(self, key)
            if value is not None:
                record[key] = value
        if self.data_type is not None:
            record["data_type"] = str(self.data_type)
        return record


MAX_POINTS = 250
MAX_BYTES = 2 * 1024 * 1024
WINDOW = 60.0


def _log(folder: str, name: str, record: dict) -> None:
    with open(os.path.join(folder, name), "a") as handle:
        handle.write(json.dumps(record) + "\n")


def _recent_uploads(folder: str, now: float) -> int:
    try:
        with open(os.path.join(folder, "drm_uploads.jsonl")) as handle:
            return sum(1 for line in handle if json.loads(line)["at"] > now - WINDOW)
    except (OSError, ValueError, KeyError):
        return 0


def _limits(folder: str, points: List[DataPoint], body: bytes, now: float) -> None:
    """Refuse or throttle as Remote Manager does; the caller holds the device's upload lock."""
    refusal = None
    if len(points) > MAX_POINTS:
        refusal = "too many data points in one upload: %d, at most %d" % (len(points), MAX_POINTS)
    elif len(body) > MAX_BYTES:
        refusal = "upload too large: %d bytes, at most %d" % (len(body), MAX_BYTES)
    else:
        rate = int(os.environ.get("GCEMU_DRM_RATE", "60") or 60)
        if _recent_uploads(folder, now) >= rate:
            refusal = "throttled: more than %d uploads in 60 seconds" % rate
    if refusal is not None:
        _log(folder, "drm_refused.jsonl", {"at": now, "points": len(points), "bytes": len(body),
                                           "why": refusal})
        raise DataPointException("Remote Manager refused the upload: " + refusal)


def _write(points: List[DataPoint], timeout: Optional[float]) -> None:
    folder = _device_dir()
    stall = os.path.join(folder, "drm_stall")
    if os.path.exists(stall):
        deadline = time.monotonic() + (60.0 if timeout is None else timeout)
        while os.path.exists(stall) and time.monotonic() < deadline:
            time.sleep(0.05)
        if os.path.exists(stall):
            raise TimeoutError("Remote Manager did not answer within %ss" % timeout)
    if os.path.exists(os.path.join(folder, "drm_down")):
        raise DataPointException("Remote Manager is not reachable (no connection)")
    now = time.time()
    data = "".join(json.dumps(p._record(now), separators=(",", ":")) + "\n" for p in points)
    body = data.encode("utf-8")
    with open(os.path.join(folder, "drm_upload.lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            _log(folder, "drm_refused.jsonl", {"at": now, "points": len(points), "bytes": len(body),
                                               "why": "another upload in progress"})
            raise DataPointException("Remote Manager refused the upload: throttled: another "
                                     "upload in progress (one at a time)")
        _limits(folder, points, body, now)
        fd = os.open(os.path.join(folder, "datapoints.jsonl"),
                     os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view):]
        except OSError as exc:
            raise DataPointException("upload failed: %s" % (exc.strerror or exc))
        finally:
            os.close(fd)
        _log(folder, "drm_uploads.jsonl", {"at": now, "points": len(points), "bytes": len(body)})


def upload(stream_id: str, data: Any, *, description: Optional[str] = None,
           timestamp: Optional[float] = None, units: Optional[str] = None,
           geo_location: Optional[Tuple[float, float, float]] = None,
           quality: Optional[int] = None, data_type: Optional[DataType] = None,
           timeout: Optional[float] = None) -> None:
    """Upload one data point (DataPointException when it cannot)."""
    _write([DataPoint(stream_id, data, description=description, timestamp=timestamp,
                      units=units, geo_location=geo_location, quality=quality,
                      data_type=data_type)], timeout)


def upload_multiple(datapoints: List[DataPoint], timeout: Optional[float] = None) -> None:
    """Upload several data points in one request (DataPointException when it cannot)."""
    if not isinstance(datapoints, (list, tuple)) or \
            not all(isinstance(p, DataPoint) for p in datapoints):
        raise ValueError("upload_multiple takes a list of DataPoint")
    if datapoints:
        _write(list(datapoints), timeout)
