"""Parse `gc-emulator run --fault SPEC` strings into typed faults (pure: no I/O).

A spec is a kind, then optionally `:` and comma-separated `key=value` pairs.
Times are measured from the device's start; durations and sizes use the
profile's units (agent.units: `500ms`, `30s`, `2m`; `512`, `2K`, `1M`, binary):

    broker-outage:at=10s,for=30s      the proxy to the broker is cut at 10 s, restored at 40 s
    power-loss:at=20s                 SIGKILL at 20 s, then a reboot (the model's restart delay)
    power-loss:at=20s,off=5s          ... powered off for 5 s before the reboot
    serial-noise:share=1%             1% of the console bytes corrupted (also share=0.01)
    serial-noise:share=0.5%,seed=7    ... with a fixed random seed
    flash-full:at=5s                  the journal directory is out of space from 5 s on
    flash-full:at=5s,for=20s          ... and has room again at 25 s
    drm-stall:at=5s,for=10s           Remote Manager stops answering: uploads hang from 5 s to 15 s
    slow-link:delay=300ms,rate=2KB/s  300 ms added each way, 2 KiB/s each way, from the start
    slow-link:delay=1s,at=10s,for=30s ... only between 10 s and 40 s

Keys may come in any order; `at` defaults to 0 where it is optional; a fault
without `for` lasts to the end of the run. `parse_fault` returns one of the
NamedTuples below; `parse_faults` a list, in the order given. A bad spec raises
`FaultSpecError` (a ValueError) whose message quotes the spec and names the
bad part, for example:

    --fault 'broker-outage:at=10x,for=30s': at: '10x' is not a duration (examples: ...)

How each fault is meant to be applied (by the emulator core):

- broker-outage, slow-link: `tools.emulator.proxy.Proxy` between the devices
  and the broker: `cut()`/`restore()`, `delay`, `rate`.
- serial-noise: `tools.emulator.relay.Relay(noise=share, seed=seed)`.
- power-loss: SIGKILL of the device's process, then the reboot path.
- flash-full: without root there is no small filesystem to fill, so the
  device's Python is made to see ENOSPC instead: `tools.emulator.flashfull`
  (loaded in the device process before the agent) makes `os.write` to files
  it opened under the journal directory fail with ENOSPC while a flag file
  exists; the emulator creates the flag at `at` and removes it after `for`.
  Everything outside the journal directory keeps working, as on a device
  whose journal has its own flash partition.
- drm-stall: a flag file the emulated `digidevice.datapoint` watches: while it
  exists an upload hangs (up to its own timeout), as over a cellular link that
  stopped answering without closing.
"""

from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from agent.units import parse_duration, parse_percent, parse_size


class FaultSpecError(ValueError):
    """A --fault SPEC that cannot be parsed; the message names the bad part."""


class BrokerOutage(NamedTuple):
    """The broker is unreachable from `at` for `duration` seconds (None: to the end)."""

    at: float
    duration: Optional[float]
    kind: str = "broker-outage"


class PowerLoss(NamedTuple):
    """The device loses power at `at` (SIGKILL); after `off` seconds (None: the
    model's restart delay) it boots again."""

    at: float
    off: Optional[float] = None
    kind: str = "power-loss"


class SerialNoise(NamedTuple):
    """A `share` (0..1) of the console bytes, each way, is corrupted; `seed` fixes the RNG."""

    share: float
    seed: Optional[int] = None
    at: float = 0.0
    duration: Optional[float] = None
    kind: str = "serial-noise"


class FlashFull(NamedTuple):
    """The journal directory is out of space from `at`, for `duration` seconds (None: to the end)."""

    at: float
    duration: Optional[float] = None
    kind: str = "flash-full"


class DrmStall(NamedTuple):
    """Remote Manager stops answering from `at` for `duration` seconds (None: to the end):
    uploads hang until it answers again or their timeout passes."""

    at: float
    duration: Optional[float] = None
    kind: str = "drm-stall"


class SlowLink(NamedTuple):
    """The link to the broker adds `delay` seconds each way and carries at most
    `rate` bytes a second each way (None: no cap), from `at` for `duration`."""

    delay: float = 0.0
    rate: Optional[int] = None
    at: float = 0.0
    duration: Optional[float] = None
    kind: str = "slow-link"


Fault = Union[BrokerOutage, PowerLoss, SerialNoise, FlashFull, DrmStall, SlowLink]


def _duration(text: str) -> float:
    return parse_duration(text)


def _positive_duration(text: str) -> float:
    value = parse_duration(text)
    if value <= 0:
        raise ValueError("%r: must be longer than 0" % text)
    return value


def _share(text: str) -> float:
    """'1%' or '0.01' -> 0.01."""
    if text.strip().endswith("%"):
        return parse_percent(text)
    try:
        value = float(text)
    except ValueError:
        raise ValueError("%r is not a share (examples: 1%%, 0.01)" % text)
    if not 0.0 <= value <= 1.0:
        raise ValueError("%r is not a share between 0 and 1 (or 0%% and 100%%)" % text)
    return value


def parse_rate(text: str) -> int:
    """'2KB/s', '2K/s', '2048' -> bytes per second (binary K, as in agent.units)."""
    body = text.strip()
    if body.lower().endswith("/s"):
        body = body[:-2]
    try:
        value = parse_size(body)
    except ValueError:
        raise ValueError("%r is not a rate (examples: 512/s, 2KB/s, 1M/s)" % text)
    if value <= 0:
        raise ValueError("%r: a rate must be more than 0" % text)
    return value


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError("%r is not an integer seed" % text)


# kind -> (type, {key: (field, parser)}, required keys)
_Parser = Callable[[str], object]
_KINDS: Dict[str, Tuple[type, Dict[str, Tuple[str, _Parser]], Tuple[str, ...]]] = {
    "broker-outage": (BrokerOutage, {"at": ("at", _duration), "for": ("duration", _positive_duration)},
                      ("at", "for")),
    "power-loss": (PowerLoss, {"at": ("at", _duration), "off": ("off", _duration)}, ("at",)),
    "serial-noise": (SerialNoise, {"share": ("share", _share), "seed": ("seed", _seed),
                                   "at": ("at", _duration), "for": ("duration", _positive_duration)},
                     ("share",)),
    "flash-full": (FlashFull, {"at": ("at", _duration), "for": ("duration", _positive_duration)},
                   ("at",)),
    "drm-stall": (DrmStall, {"at": ("at", _duration), "for": ("duration", _positive_duration)},
                  ("at",)),
    "slow-link": (SlowLink, {"delay": ("delay", _duration), "rate": ("rate", parse_rate),
                             "at": ("at", _duration), "for": ("duration", _positive_duration)},
                  ()),
}
KINDS: Tuple[str, ...] = tuple(_KINDS)

HELP = """fault specs (repeatable --fault):
  broker-outage:at=10s,for=30s       cut the link to the broker at 10 s for 30 s
  power-loss:at=20s[,off=5s]         SIGKILL at 20 s, then reboot (after 5 s off)
  serial-noise:share=1%[,seed=7]     corrupt 1% of the console bytes
  flash-full:at=5s[,for=20s]         journal directory out of space from 5 s (for 20 s)
  drm-stall:at=5s[,for=10s]          Remote Manager stops answering (drm: uploads hang)
  slow-link:delay=300ms,rate=2KB/s   add 300 ms each way and cap at 2 KiB/s
  optional everywhere it is not shown: at=T (default 0), for=D (default: to the end)"""


def parse_fault(spec: str) -> Fault:
    """One --fault SPEC -> its NamedTuple. Raises FaultSpecError naming the bad part."""
    if not isinstance(spec, str) or not spec.strip():
        raise FaultSpecError("--fault %r: empty; expected KIND:key=value,... (kinds: %s)"
                             % (spec, ", ".join(KINDS)))
    kind, _, rest = spec.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in _KINDS:
        raise FaultSpecError("--fault %r: unknown kind %r; one of %s" % (spec, kind, ", ".join(KINDS)))
    cls, keys, required = _KINDS[kind]
    values: Dict[str, object] = {}
    seen: List[str] = []
    for part in [p for p in rest.split(",") if p.strip()]:
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        if not eq or not value.strip():
            raise FaultSpecError("--fault %r: %r is not key=value" % (spec, part.strip()))
        if key not in keys:
            raise FaultSpecError("--fault %r: %s takes no %r; its keys are %s"
                                 % (spec, kind, key, ", ".join(keys)))
        if key in seen:
            raise FaultSpecError("--fault %r: %r given twice" % (spec, key))
        seen.append(key)
        field, parser = keys[key]
        try:
            values[field] = parser(value.strip())
        except ValueError as exc:
            raise FaultSpecError("--fault %r: %s: %s" % (spec, key, exc))
    missing = [k for k in required if k not in seen]
    if missing:
        raise FaultSpecError("--fault %r: %s needs %s (example: %s)"
                             % (spec, kind, " and ".join(missing), _example(kind)))
    if kind == "slow-link" and "delay" not in seen and "rate" not in seen:
        raise FaultSpecError("--fault %r: slow-link needs delay or rate (example: %s)"
                             % (spec, _example(kind)))
    return cls(**values)


def parse_faults(specs: Sequence[str]) -> List[Fault]:
    """Every --fault SPEC, in order; the first bad one raises FaultSpecError."""
    return [parse_fault(spec) for spec in specs]


def ends_at(fault: Fault) -> Optional[float]:
    """When a fault is over (seconds from start), or None if it lasts to the end or is instant."""
    duration = getattr(fault, "duration", None)
    return None if duration is None else fault.at + duration


def _example(kind: str) -> str:
    for line in HELP.splitlines():
        if line.strip().startswith(kind + ":"):
            return line.split()[0].split("[")[0]
    return kind
