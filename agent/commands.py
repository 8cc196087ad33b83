# Signed commands to the device: verify, refuse with a reason, or run a handler.
#
# A command is JSON ``{id, cmd, args, ts, sig}`` (plus an optional ``device``);
# ``sig`` is hex HMAC-SHA256 with the device's key over `canonical` of the
# other fields. The signature covers the *parsed* fields, re-serialised, so
# what was verified is exactly what runs. Nothing in a command names code or a
# file: ``cmd`` only selects one of the handlers the agent registered.
#
# No hashlib or hmac here (why: `agent.lean`): HMAC is built on the
# interpreter's own SHA-256 module.

import collections
import json
import math
import threading
import time

from .errors import COMMAND_REASONS, AgentError, CommandRefused
from .lean import compare_digest as _compare_digest
from .lean import sha256 as _sha256
from .limits import MAX_COMMAND_BYTES, MAX_ERROR_CHARS, REFUSAL_BURST, REFUSAL_EVERY
from .ratelimit import TokenBucket

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Callable, Dict, Optional, Sequence  # noqa: F401 (type comments)

    Handler = Callable[[Dict[str, Any]], Any]

REASONS = COMMAND_REASONS   # agent.errors holds the one list
FIELDS = ("id", "cmd", "args", "ts", "device", "sig")
_BLOCK = 64                      # SHA-256 block size, bytes
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
_HEX = frozenset(b"0123456789abcdefABCDEF")


def canonical(fields):  # type: (Dict[str, Any]) -> bytes
    # The bytes a signature covers: sorted keys, no spaces, UTF-8.
    return json.dumps(fields, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def hmac_sha256_hex(key, data):  # type: (bytes, bytes) -> str
    # HMAC-SHA256 (RFC 2104) of `data` under `key`, as lowercase hex.
    if len(key) > _BLOCK:
        key = _sha256(key).digest()
    key = key.ljust(_BLOCK, b"\x00")
    inner = _sha256(key.translate(_IPAD))
    inner.update(data)
    outer = _sha256(key.translate(_OPAD))
    outer.update(inner.digest())
    return outer.hexdigest()


def sign(command, key):  # type: (Dict[str, Any], bytes) -> Dict[str, Any]
    # A copy of `command` with `sig` set over its other fields.
    fields = dict((k, v) for k, v in command.items() if k != "sig")
    signed = dict(fields)
    signed["sig"] = hmac_sha256_hex(key, canonical(fields))
    return signed


def load_key(path):  # type: (str) -> bytes
    # The key in file `path`: hex (64+ digits) is decoded, anything else used as text.
    #
    # Raises AgentError naming the path (never the key) when the file cannot be
    # read or holds fewer than 16 bytes of key.
    try:
        with open(path, "rb") as handle:
            text = handle.read().strip()
    except OSError as exc:
        raise AgentError("key file %s: cannot be read (%s)" % (path, exc.strerror or exc)) from exc
    if not text:
        raise AgentError("key file %s: is empty" % path)
    if len(text) >= 64 and len(text) % 2 == 0 and all(b in _HEX for b in text):
        text = bytes.fromhex(text.decode("ascii"))
    if len(text) < 16:
        raise AgentError("key file %s: key is %d bytes, at least 16 are needed" % (path, len(text)))
    return text


def _no_constant(name):  # type: (str) -> None
    raise ValueError("%s is not JSON" % name)


class Commands(object):
    # Verifies commands for one device and runs the matching handler.
    #
    # `remember` bounds the ids kept for replay checks; keep it above the number
    # of commands the device may see within `window` seconds, since a forgotten
    # id whose `ts` is still fresh could be replayed. With `ids` (an
    # `agent.replay_guard.ReplayIds`) the accepted ids also survive a restart.
    # `answers` limits how many refusals get an answer (agent/limits.py).

    def __init__(self, key, device, handlers, allow=None, window=300.0, remember=1024,
                 max_bytes=MAX_COMMAND_BYTES, clock=time.time, ids=None, monotonic=time.monotonic):
        # type: (bytes, str, Dict[str, Handler], Optional[Sequence[str]], float, int, int, Callable[[], float], Any, Callable[[], float]) -> None
        self._key = bytes(key)
        self.device = device
        self.handlers = dict(handlers)
        self.allow = None if allow is None else frozenset(allow)
        self.window = float(window)
        self.remember = max(1, int(remember))
        self.max_bytes = max_bytes
        self._clock = clock
        self._seen = collections.OrderedDict()  # type: Dict[str, None]  # oldest first
        self._lock = threading.Lock()   # transports may deliver from more than one thread
        self.refused = {}  # type: Dict[str, int]
        self.answers = TokenBucket(REFUSAL_BURST, REFUSAL_EVERY, monotonic)
        # One snapshot at a time: tracemalloc is one per process (agent/control.py).
        self.snapshot_lock = threading.Lock()
        self.key_file_warning = ""   # set by agent/control.py make_commands
        self._ids = ids
        if ids is not None:   # what ran before a restart stays refused as a replay
            for ident in ids.load(clock()):
                self._seen[ident] = None

    def verify(self, payload):  # type: (bytes) -> Dict[str, Any]
        # The command (without `sig`) if it may run; else raise CommandRefused.
        return self._check(self._parse(payload))

    def _parse(self, payload):  # type: (bytes) -> Dict[str, Any]
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        if len(payload) > self.max_bytes:
            raise CommandRefused("too_large", "the command is %d bytes, over the %d-byte cap"
                                 % (len(payload), self.max_bytes))
        try:
            command = json.loads(bytes(payload).decode("utf-8"), parse_constant=_no_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise CommandRefused("not_json", "the command is not UTF-8 JSON") from exc
        if not isinstance(command, dict):
            raise CommandRefused("not_object", "a command is a JSON object, not %s"
                                 % type(command).__name__)
        return command

    def _check(self, command):  # type: (Dict[str, Any]) -> Dict[str, Any]
        _check_fields(command)
        command = dict(command)
        sig = command.pop("sig", None)
        if not sig:
            raise CommandRefused("unsigned", "the command has no signature")
        expected = hmac_sha256_hex(self._key, canonical(command))
        # constant time, so response timing does not leak how much of a forged sig matched
        if not _compare_digest(expected.encode("ascii"), sig.lower().encode("utf-8")):
            raise CommandRefused("bad_signature", "the signature does not match this device's key")
        if "device" in command and command["device"] != self.device:
            raise CommandRefused("wrong_device", "the command is for device %r, not this one"
                                 % command["device"])
        age = self._clock() - command["ts"]
        if abs(age) > self.window:
            raise CommandRefused("stale", "the command's ts is %.0f s %s, outside the %.0f s window"
                                 % (abs(age), "old" if age > 0 else "ahead", self.window))
        with self._lock:
            if command["id"] in self._seen:
                raise CommandRefused("replayed", "command id %r was already seen" % command["id"])
            if command["cmd"] not in self.handlers:
                raise CommandRefused("unknown_command", "no command named %r" % command["cmd"])
            if self.allow is not None and command["cmd"] not in self.allow:
                raise CommandRefused("not_allowed", "command %r is not allowed on this device"
                                     % command["cmd"])
            # remembered only now: refused commands must not burn ids of ones to come
            self._seen[command["id"]] = None
            while len(self._seen) > self.remember:
                self._seen.popitem(last=False)
            if self._ids is not None:   # on flash before it runs: a crash mid-run still counts
                self._ids.add(command["id"], command["ts"], self._clock())
        command.setdefault("args", {})
        return command

    def handle(self, payload):  # type: (bytes) -> Dict[str, Any]
        # The `resp` fields for `payload`: verified and run, or refused. Never raises.
        ident = ""
        try:
            command = self._parse(payload)
            ident = command.get("id")
            ident = ident if isinstance(ident, str) and 0 < len(ident) <= 64 else ""
            command = self._check(command)
            result = self.handlers[command["cmd"]](command["args"])
            json.dumps(result, allow_nan=False)   # unserialisable results fail here, not in a transport
            return {"id": ident, "ok": True, "result": result}
        except CommandRefused as exc:
            reason, sentence = exc.reason, str(exc)
        except Exception as exc:   # a handler or agent bug is an answer, never a crash
            reason, sentence = "failed", "%s: %s" % (type(exc).__name__, exc)
        with self._lock:
            self.refused[reason] = self.refused.get(reason, 0) + 1
        return {"id": ident, "ok": False, "error": ("%s: %s" % (reason, sentence))[:MAX_ERROR_CHARS]}


def _check_fields(command):  # type: (Dict[str, Any]) -> None
    # Raise bad_field for the first missing, mistyped or unexpected field.
    extra = sorted(set(command) - set(FIELDS))
    if extra:
        raise CommandRefused("bad_field", "unexpected field %r" % extra[0])
    ident = command.get("id")
    if not isinstance(ident, str) or not 0 < len(ident) <= 64:
        raise CommandRefused("bad_field", "id must be a string of 1 to 64 characters")
    if not isinstance(command.get("cmd"), str):
        raise CommandRefused("bad_field", "cmd must be a string")
    if not isinstance(command.get("args", {}), dict):
        raise CommandRefused("bad_field", "args must be an object")
    ts = command.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not _finite(ts):
        raise CommandRefused("bad_field", "ts must be a finite number of Unix seconds")
    if not isinstance(command.get("device", ""), str):
        raise CommandRefused("bad_field", "device must be a string")
    if not isinstance(command.get("sig", ""), (str, type(None))):
        raise CommandRefused("bad_field", "sig must be a hex string")


def _finite(number):  # type: (float) -> bool
    try:
        return math.isfinite(number)   # a 400-digit int overflows here rather than in `age`
    except OverflowError:
        return False

