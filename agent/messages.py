# Message schema v1: building, encoding and decoding (shared with the tools).
#
# Every message has `v`, `type`, `device`, `boot`, `seq` and `ts`; see
# docs/messages.md for each type's fields. Payloads are compact
# UTF-8 JSON, or zlib-compressed JSON where a transport asks; `decode` tells
# them apart by the first byte ('{' against zlib's 0x78) and caps what it
# inflates, so a zlib bomb costs at most `max_bytes`.

import itertools
import json
import os
import time

from .errors import MessageError

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Callable, Dict, List, Optional  # noqa: F401 (type comments)

VERSION = 1
TYPES = ("status", "telemetry", "event", "resp")
ENVELOPE = ("v", "type", "device", "boot", "seq", "ts")
SAMPLE_FIELDS = ("ts", "mem_free_kb", "mem_total_kb", "rss_kb", "gc_count", "gc_collections",
                 "gc_collected", "gc_uncollectable", "gc_pause_ms_total", "gc_pause_ms_max")
STATUS_FIELDS = ("state", "agent", "python", "gc_flavour", "model", "profile",
                 "profile_sha256", "ceiling_kb", "uptime_s")
MAX_BYTES = 256 * 1024

_NUMBER = (int, float)
# type -> field -> accepted Python types (bool is excluded from numbers below)
_REQUIRED = {
    "status": {"state": str, "agent": str, "python": str, "gc_flavour": str, "model": str,
               "profile": str, "profile_sha256": str, "ceiling_kb": int, "uptime_s": _NUMBER},
    "telemetry": {"samples": list, "buffered": int, "dropped": int},
    "event": {"event": str},
    "resp": {"id": str, "ok": bool},
}
_SAMPLE_TYPES = {"ts": _NUMBER, "mem_free_kb": int, "mem_total_kb": int, "rss_kb": int,
                 "gc_count": list, "gc_collections": list, "gc_collected": int,
                 "gc_uncollectable": int, "gc_pause_ms_total": _NUMBER, "gc_pause_ms_max": _NUMBER}


def new_boot_id():  # type: () -> str
    # A random id for this agent start (12 hex digits).
    return os.urandom(6).hex()


class Envelope(object):
    # Stamps messages for one device and one boot; `seq` rises by one per message.

    def __init__(self, device, boot=None, clock=time.time):
        # type: (str, Optional[str], Callable[[], float]) -> None
        self.device = device
        self.boot = boot or new_boot_id()
        self._seq = itertools.count(1)   # next() on a count is atomic under the GIL
        self._clock = clock

    def make(self, type_, **fields):  # type: (str, **Any) -> Dict[str, Any]
        # A new message of `type_` with the envelope filled in.
        message = {"v": VERSION, "type": type_, "device": self.device, "boot": self.boot,
                   "seq": next(self._seq), "ts": round(self._clock(), 3)}
        message.update(fields)
        return message


def encode(message, compress=False):  # type: (Dict[str, Any], bool) -> bytes
    # Compact UTF-8 JSON, zlib-compressed when asked.
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")
    if not compress:
        return body
    import zlib  # here, not at the top: loading zlib costs 0.15 MB of RSS (docs/footprint.md)
    return zlib.compress(body, 9)


def decode(payload, max_bytes=MAX_BYTES):  # type: (bytes, int) -> Dict[str, Any]
    # Payload -> validated message; MessageError says what is wrong (`reason`: a code).
    if len(payload) > max_bytes:
        raise MessageError("too_large", "payload of %d bytes is over the %d-byte cap"
                           % (len(payload), max_bytes))
    if payload[:1] == b"\x78":
        import zlib  # only for compressed payloads (see encode)
        inflater = zlib.decompressobj()
        try:
            payload = inflater.decompress(payload, max_bytes + 1)
        except zlib.error as exc:
            raise MessageError("zlib", "bad zlib payload: %s" % exc) from exc
        if len(payload) > max_bytes or inflater.unconsumed_tail:
            raise MessageError("zlib", "zlib payload inflates past the %d-byte cap" % max_bytes)
    try:
        message = json.loads(payload.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MessageError("not_json", "not UTF-8 JSON: %s" % exc) from exc
    except RecursionError as exc:
        raise MessageError("not_json", "JSON nested too deeply") from exc
    problems = validate(message)
    if problems:   # types are checked first; ranges only of a message whose types are right
        raise MessageError("range" if problems[0].startswith("range: ") else "schema",
                           "; ".join(problems))
    return message


def _no_constant(name):  # type: (str) -> None
    raise ValueError("%s is not JSON" % name)


def _is(value, types):  # type: (Any, Any) -> bool
    if isinstance(value, bool) and types is not bool:
        return False   # True is an int to Python, not to a schema
    return isinstance(value, types)


def validate(message):  # type: (Any) -> List[str]
    # Every way `message` departs from schema v1 (empty when it is valid).
    if not isinstance(message, dict):
        return ["a message is a JSON object, not %s" % type(message).__name__]
    problems = []
    if not _is(message.get("v"), int) or message.get("v") != VERSION:
        return ["schema version %r is not %d" % (message.get("v"), VERSION)]
    kind = message.get("type")
    if kind not in TYPES:
        return ["type %r is not one of %s" % (kind, ", ".join(TYPES))]
    envelope = {"device": str, "boot": str, "seq": int, "ts": _NUMBER}
    required = dict(envelope, **_REQUIRED[kind])
    for field, types in required.items():
        if field not in message:
            problems.append("%s: missing %s" % (kind, field))
        elif not _is(message[field], types):
            problems.append("%s: %s has the wrong type (%s)" % (kind, field,
                                                             type(message[field]).__name__))
    if kind == "telemetry" and isinstance(message.get("samples"), list):
        for i, sample in enumerate(message["samples"]):
            if not isinstance(sample, dict):
                problems.append("telemetry: samples[%d] is not an object" % i)
                continue
            for field, types in _SAMPLE_TYPES.items():
                if not _is(sample.get(field), types):
                    problems.append("telemetry: samples[%d].%s is missing or of the wrong type"
                                    % (i, field))
    if kind == "resp" and "result" not in message and "error" not in message:
        problems.append("resp: needs result or error")
    if not problems:   # sizes and ranges a reader can hold (agent/bounds.py)
        from . import bounds  # readers only: the agent itself never validates (docs/footprint.md)
        problems = ["range: " + p for p in bounds.check(message)]
    return problems
