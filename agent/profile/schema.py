# The profile's sections and keys: section -> key -> (field, parser, required).
#
# Parsers shared with the rule types are `agent.values`; the ones here belong to
# one section each. Rule sections (`[rule:NAME]`) are not here: each rule type
# owns its keys (`agent.rules.table`).

from .. import bounds, values
from ..rules import table as rule_table
from ..units import is_off, parse_duration, parse_percent
from .deviceid import parse_device_id

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Callable, Optional, Tuple  # noqa: F401 (type comments)

    Key = Tuple[str, Callable[[str], object], bool]

PROBES = ("auto", "proc", "digidevice", "psutil")
TUNE_MODES = ("off", "auto")                    # [gc] tune: see docs/tuner.md
EXIT_ACTIONS = ("none", "restart", "reboot")   # DAL auto-start: what follows the script's end
COMMANDS = ("collect", "status", "set", "snapshot", "reload")


def _app(value):  # type: (str) -> str
    from ..identity import check_app
    return check_app(value)


def _model(value):  # type: (str) -> str
    model = values.text(value)
    if len(model) > bounds.NAME_MAX:   # every status carries it; readers refuse longer (agent/bounds.py)
        raise ValueError("is %d characters long; at most %d" % (len(model), bounds.NAME_MAX))
    return model


def _memory_limit(value):  # type: (str) -> Optional[int]
    if value.strip().lower() == "auto":
        return None
    kb = values.kb(value)
    if kb < 1024:
        raise ValueError("%r is below 1M; write auto to use the device's own limits" % value)
    return kb


def _budget(value):  # type: (str) -> float
    share = parse_percent(value)
    if share <= 0:
        raise ValueError("%r would forbid every collection; give a share above 0%%" % value)
    return share


def _thresholds(value):  # type: (str) -> Optional[Tuple[int, ...]]
    if value.strip().lower() == "keep":
        return None
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError("%r: write three whole numbers like 700, 10, 10, or keep" % value)
    numbers = tuple(int(p) for p in parts)
    if any(n > 10 ** 7 for n in numbers):
        raise ValueError("%r: thresholds above 10000000 are not sensible" % value)
    return numbers


def _pause_budget(value):  # type: (str) -> float
    seconds = values.positive_duration(value)
    if seconds > 10.0:
        raise ValueError("%r: a pause budget over 10s would never hold anything back" % value)
    return seconds


def _memory_target(value):  # type: (str) -> float
    share = parse_percent(value)
    if not 0.10 <= share <= 0.95:
        raise ValueError("%r: give a share of the ceiling between 10%% and 95%%" % value)
    return share


def _urls(value):  # type: (str) -> Tuple[str, ...]
    # Imported here: transports import profile-free modules only, keep it that way.
    from ..transports import check_url
    urls = values.word_list(value)
    if not urls:
        raise ValueError("is empty; give at least one URL such as stdout: or file:///path")
    bad = []
    for url in urls:
        try:
            check_url(url)
        except ValueError as exc:
            bad.append(str(exc))
    if bad:
        raise ValueError("; ".join(bad))
    return urls


def _topic_prefix(value):  # type: (str) -> str
    text = values.text(value)
    if any(c in text for c in "+#\x00") or text.startswith("/") or text.endswith("/"):
        raise ValueError("%r: a topic prefix has no +, #, or leading/trailing /" % value)
    return text


def _keepalive(value):  # type: (str) -> float
    seconds = parse_duration(value)
    if not 5 <= seconds <= 65535:
        raise ValueError("%r: keepalive is 5s to 18h (MQTT's limit); keep it under the "
                         "carrier's NAT idle timeout" % value)
    return seconds


def _compress(value):  # type: (str) -> bool
    return values.choice(("none", "zlib"))(value) == "zlib"


def _rate(value):  # type: (str) -> float
    text = value.strip()
    text = text[:-2] if text.endswith("/s") else text
    try:
        rate = float(text)
    except ValueError as exc:
        raise ValueError("%r is not a rate (example: 20/s)" % value) from exc
    if not 0 < rate <= 10000:
        raise ValueError("%r: a rate is above 0 and at most 10000/s" % value)
    return rate


def _flash_dir(value):  # type: (str) -> str
    if is_off(value):
        return ""
    text = values.text(value)
    if not text.startswith("/"):
        raise ValueError("%r: give an absolute directory (flash survives reboots: "
                         "/etc/config/gcagent/outbox on DAL)" % value)
    return text


def _command_names(value):  # type: (str) -> Tuple[str, ...]
    names = values.word_list(value)
    for name in names:
        if name not in COMMANDS:
            raise ValueError("unknown command %r (known: %s)%s"
                             % (name, ", ".join(COMMANDS), values.hint(name, COMMANDS)))
    return names


def _settable(value):  # type: (str) -> Tuple[str, ...]
    pairs = values.word_list(value)
    keys = [k for k in rule_table.all_keys() if k != "type"]
    for pair in pairs:
        rule, _, key = pair.partition(".")
        if not rule or key not in keys:
            raise ValueError("%r: write RULE.KEY, e.g. low-memory.below (keys: %s)"
                             % (pair, ", ".join(keys)))
    return pairs


def _bytes(value):  # type: (str) -> int
    return values.positive_kb(value) * 1024


SCHEMA = {
    "profile": {
        "extends": ("extends", values.text, False),
        "description": ("description", str, False),
    },
    "device": {
        "id": ("id", parse_device_id, True),
        "model": ("model", _model, False),
        "memory_limit": ("memory_limit_kb", _memory_limit, False),
        "ram": ("ram_kb", values.positive_kb, False),
        "python": ("python", values.text, False),
        "exit_action": ("exit_action", values.choice(EXIT_ACTIONS), False),
    },
    "agent": {
        "tick": ("tick", values.positive_duration, False),
        "budget": ("budget", _budget, False),
        "budget_window": ("budget_window", values.positive_duration, False),
        "signals": ("signals", values.boolean, False),
        "probe": ("probe", values.choice(PROBES), False),
        "app": ("app", _app, False),
    },
    "gc": {
        "thresholds": ("thresholds", _thresholds, False),
        "freeze_after_start": ("freeze_after", values.duration_or_off, False),
        "tune": ("tune", values.choice(TUNE_MODES), False),
        "pause_budget": ("pause_budget", _pause_budget, False),
        "memory_target": ("memory_target", _memory_target, False),
    },
    "report": {
        "urls": ("urls", _urls, False),
        "interval": ("interval", values.positive_duration, False),
        "batch": ("batch", values.int_range(1, 1000), False),
        "prefix": ("prefix", _topic_prefix, False),
        "keepalive": ("keepalive", _keepalive, False),
        "compress": ("compress", _compress, False),
        "window": ("window", values.int_range(1, 1000), False),
        "replay_rate": ("replay_rate", _rate, False),
        "ca_file": ("ca_file", values.text, False),
        "cert_file": ("cert_file", values.text, False),
        "key_file": ("key_file", values.text, False),
        "username": ("username", values.text, False),
        "password_file": ("password_file", values.text, False),
        "password_env": ("password_env", values.text, False),
    },
    "buffer": {
        "ram": ("ram_bytes", _bytes, False),
        "flash": ("flash", _flash_dir, False),
        "flash_max": ("flash_max_bytes", _bytes, False),
        "spill_after": ("spill_after", parse_duration, False),
        "sync_every": ("sync_every", parse_duration, False),
    },
    "commands": {
        "key_file": ("key_file", values.text, True),
        "window": ("window", values.positive_duration, False),
        "allow": ("allow", _command_names, False),
        "settable": ("settable", _settable, False),
    },
}
