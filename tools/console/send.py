"""`gc-console send`: sign a command exactly as the agent verifies it, send it, wait for the answer.

The command is `{id, cmd, args, ts, device}` signed with `agent.commands.sign`
(HMAC-SHA256 over the canonical JSON of the other fields): the same code the
agent verifies with, so the two cannot drift. Naming `device` in the signed
fields stops a command for one device being replayed to another.
"""

import json
import threading
import time
import uuid
from typing import Any, Dict, List, Optional

from agent.commands import sign
from agent.limits import MAX_COMMAND_BYTES

COMMANDS = ("collect", "status", "set", "snapshot", "reload")


class SendError(Exception):
    """The command could not be sent or got no answer; the message says what to check."""


def parse_args(words: List[str]) -> Dict[str, Any]:
    """`key=value` words (values read as JSON when they are, text otherwise), or one JSON object.

    A bare number is taken as `generation` (so `collect 0` works).
    """
    if len(words) == 1 and words[0].lstrip().startswith("{"):
        args = json.loads(words[0])
        if not isinstance(args, dict):
            raise SendError("ARGS as JSON must be an object")
        return args
    args: Dict[str, Any] = {}
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            if word.isdigit():
                args["generation"] = int(word)
                continue
            raise SendError("argument %r is not key=value (for example generation=2)" % word)
        try:
            args[key] = json.loads(value)
        except ValueError:
            args[key] = value
    return args


def build(device: str, cmd: str, args: Dict[str, Any], key: bytes,
          clock=time.time) -> Dict[str, Any]:
    """The signed command object, ready to send."""
    command = {"id": "c-" + uuid.uuid4().hex[:16], "cmd": cmd, "args": args,
               "ts": round(clock(), 3), "device": device}
    signed = sign(command, key)
    # The device drops a longer payload on arrival, unanswered (docs/messages.md): say it here
    # rather than wait for an answer that cannot come. ASCII-escaped is the longer encoding.
    size = len(json.dumps(signed, separators=(",", ":")).encode("utf-8"))
    if size > MAX_COMMAND_BYTES:
        raise SendError("the signed %s command is %d bytes; a device takes at most %d "
                        "(shorten its arguments)" % (cmd, size, MAX_COMMAND_BYTES))
    return signed


class Waiter(object):
    """Catches the `resp` with one id among the messages the ingestor passes on."""

    def __init__(self, ident: str) -> None:
        self.ident = ident
        self.resp: Optional[Dict[str, Any]] = None
        self._done = threading.Event()

    def __call__(self, message: Dict[str, Any]) -> None:
        if message.get("type") == "resp" and message.get("id") == self.ident:
            self.resp = message
            self._done.set()

    def wait(self, timeout: float) -> Optional[Dict[str, Any]]:
        self._done.wait(timeout)
        return self.resp


def timeout_for(cmd: str, args: Dict[str, Any], asked: Optional[float]) -> float:
    """How long to wait: a snapshot takes its own `seconds` on top."""
    if asked:
        return asked
    extra = args.get("seconds", 5) if cmd == "snapshot" else 0
    return 15.0 + (extra if isinstance(extra, (int, float)) else 0)
