"""Device profiles: INI text -> validated, immutable settings.

A profile is read with configparser (no interpolation, so `${hostname}` stays
as written) and checked against the schema below. Every problem is collected
and reported at once as ``PATH:LINE: [section] key: what is wrong``; a profile
either loads completely or raises `ProfileError` with all its problems.

`[profile] extends = base.ini` layers a profile on another (path relative to
the file naming it); keys set later win, key by key, rules included.
"""

import configparser
import io
import os
import re
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

from .errors import Problem, ProfileError
from .units import (
    Amount,
    format_duration,
    format_kb,
    is_off,
    parse_amount,
    parse_duration,
    parse_percent,
    parse_size,
)

RULE_PREFIX = "rule:"
RULE_TYPES = ("periodic", "low_memory", "event")
ESCALATION_STEPS = ("collect0", "collect1", "collect2", "callbacks", "event")
EVENT_TRIGGERS = ("idle", "large_free", "link_down", "link_up", "signal")
PROBES = ("auto", "proc", "digidevice", "psutil")
TUNE_MODES = ("off", "auto")                    # [gc] tune: see docs/tuner.md
EXIT_ACTIONS = ("none", "restart", "reboot")   # DAL auto-start: what follows the script's end
_TEMPLATE = re.compile(r"\$\{([^}]*)\}")
_ID_CHARS = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_MAX_EXTENDS_DEPTH = 8


class DeviceSettings(NamedTuple):
    """[device]: who we are and how much memory we may use."""

    id: str                          # as written; may hold ${hostname} etc.
    model: str = "generic"
    memory_limit_kb: Optional[int] = None   # None: auto (cgroup, rlimit, RAM)
    ram_kb: Optional[int] = None     # the model's RAM, for people and the emulator
    python: str = ""                 # the model's Python, for people and the emulator
    exit_action: str = "none"        # the auto-start entry's exit action: none, restart, reboot


class AgentSettings(NamedTuple):
    """[agent]: the agent's own cadence and cost limits."""

    tick: float = 1.0                # seconds between samples/decisions
    budget: float = 0.02             # share of wall time collections may take
    budget_window: float = 60.0
    signals: bool = True             # SIGUSR1 -> full collection
    probe: str = "auto"


class GcSettings(NamedTuple):
    """[gc]: start-up actions on the collector."""

    thresholds: Optional[Tuple[int, ...]] = None   # None: keep the interpreter's
    freeze_after: Optional[float] = None           # None: never gc.freeze()
    tune: str = "off"                              # auto: agent/tuner.py owns thresholds and freeze
    pause_budget: float = 0.002                    # seconds: longest pause wanted while busy
    memory_target: float = 0.70                    # share of the ceiling garbage may fill


class RuleSettings(NamedTuple):
    """[rule:NAME]: one collection rule; which fields matter depends on `type`."""

    name: str
    type: str
    enabled: bool = True
    generation: int = 2
    cooldown: float = 0.0
    every: float = 0.0                               # periodic
    below: Amount = Amount(fraction=0.15)            # low_memory
    rearm_above: Amount = Amount(fraction=0.25)
    escalate: Tuple[str, ...] = ("collect0", "collect2", "callbacks", "event")
    step_every: float = 5.0
    min_reclaim_kb: int = 256
    leak_after: int = 3
    backoff_max: float = 600.0
    ahead: int = 1                                   # samples of growth to anticipate
    on: Tuple[str, ...] = ()                         # event
    idle_cpu: float = 0.05
    idle_for: float = 30.0
    large_free_kb: int = 8192


class ReportSettings(NamedTuple):
    """[report]: where messages go, how telemetry is batched, and the MQTT session."""

    urls: Tuple[str, ...] = ("stdout:",)
    interval: float = 60.0           # seconds between telemetry samples
    batch: int = 10                  # samples per telemetry message
    prefix: str = "gcagent"          # MQTT topics: PREFIX/DEVICE/{status,telemetry,event,resp,cmd}
    keepalive: float = 60.0          # under the carrier's NAT idle timeout
    compress: bool = False           # zlib payloads (MQTT)
    window: int = 20                 # QoS 1 messages in flight at once
    replay_rate: float = 20.0        # journal messages replayed per second after an outage
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    username: str = ""
    password_file: str = ""
    password_env: str = ""


class BufferSettings(NamedTuple):
    """[buffer]: the outbox bounds, and the journal on flash for long outages."""

    ram_bytes: int = 256 * 1024
    flash: str = ""                  # journal directory; "" keeps everything in RAM
    flash_max_bytes: int = 2 * 1024 * 1024
    spill_after: float = 60.0        # link down this long: RAM backlog goes to flash
    sync_every: float = 5.0          # fsync at most this often (flash wear)


class CommandSettings(NamedTuple):
    """[commands]: signed remote commands (off without a key file)."""

    key_file: str = ""
    window: float = 300.0            # accepted clock difference of a command's ts
    allow: Tuple[str, ...] = ("collect", "status", "set", "snapshot", "reload")
    settable: Tuple[str, ...] = ()   # RULE.KEY pairs `set` may change, e.g. low-memory.below


class Profile(NamedTuple):
    """A whole validated profile. `text` is the flattened INI (extends resolved)."""

    path: str
    sha256: str
    text: str
    device: DeviceSettings
    agent: AgentSettings
    gc: GcSettings
    rules: Tuple[RuleSettings, ...]
    report: ReportSettings
    buffer: BufferSettings
    commands: CommandSettings = CommandSettings()


# --- value parsers: text -> value, ValueError with a user's message ---------

def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty")
    return value.strip()


def _bool(value: str) -> bool:
    low = value.strip().lower()
    if low in ("yes", "true", "on", "1"):
        return True
    if low in ("no", "false", "off", "0"):
        return False
    raise ValueError("%r is not yes or no" % value)


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value.strip())
        except ValueError:
            raise ValueError("%r is not a whole number" % value)
        if not lo <= number <= hi:
            raise ValueError("%d is out of range %d..%d" % (number, lo, hi))
        return number
    return parse


def _positive_duration(value: str) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("%r must be longer than zero" % value)
    return seconds


def _pause_budget(value: str) -> float:
    seconds = _positive_duration(value)
    if seconds > 10.0:
        raise ValueError("%r: a pause budget over 10s would never hold anything back" % value)
    return seconds


def _memory_target(value: str) -> float:
    share = parse_percent(value)
    if not 0.10 <= share <= 0.95:
        raise ValueError("%r: give a share of the ceiling between 10%% and 95%%" % value)
    return share


def _duration_or_off(value: str) -> Optional[float]:
    return None if is_off(value) else parse_duration(value)


def _kb(value: str) -> int:
    return parse_size(value) // 1024


def _memory_limit(value: str) -> Optional[int]:
    if value.strip().lower() == "auto":
        return None
    kb = _kb(value)
    if kb < 1024:
        raise ValueError("%r is below 1M; write auto to use the device's own limits" % value)
    return kb


def _positive_kb(value: str) -> int:
    kb = _kb(value)
    if kb <= 0:
        raise ValueError("%r must be larger than zero" % value)
    return kb


def _budget(value: str) -> float:
    share = parse_percent(value)
    if share <= 0:
        raise ValueError("%r would forbid every collection; give a share above 0%%" % value)
    return share


def _thresholds(value: str) -> Optional[Tuple[int, ...]]:
    if value.strip().lower() == "keep":
        return None
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError("%r: write three whole numbers like 700, 10, 10, or keep" % value)
    numbers = tuple(int(p) for p in parts)
    if any(n > 10 ** 7 for n in numbers):
        raise ValueError("%r: thresholds above 10000000 are not sensible" % value)
    return numbers


def _device_id(value: str) -> str:
    text = _text(value)
    for name in _TEMPLATE.findall(text):
        if name not in ("hostname", "serial") and not name.startswith("env:"):
            raise ValueError("unknown template ${%s} (known: ${hostname}, ${serial}, ${env:NAME})"
                             % name)
    literal = _TEMPLATE.sub("x", text)
    if not _ID_CHARS.match(literal):
        raise ValueError("%r: use letters, digits, '.', '_' and '-' (at most 64)" % value)
    return text


def _choice(choices: Tuple[str, ...]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        low = value.strip().lower()
        if low not in choices:
            raise ValueError("%r is not one of %s%s" % (value, ", ".join(choices), _hint(low, choices)))
        return low
    return parse


def _list(value: str) -> Tuple[str, ...]:
    return tuple(p for p in re.split(r"[\s,]+", value.strip()) if p)


def _urls(value: str) -> Tuple[str, ...]:
    # Imported here: transports import profile-free modules only, keep it that way.
    from .transports import check_url
    urls = _list(value)
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


def _escalate(value: str) -> Tuple[str, ...]:
    steps = _list(value)
    if not steps:
        raise ValueError("is empty; the rule would never act (steps: %s)" % ", ".join(ESCALATION_STEPS))
    for step in steps:
        if step not in ESCALATION_STEPS:
            raise ValueError("unknown step %r (steps: %s)%s" % (step, ", ".join(ESCALATION_STEPS),
                                                               _hint(step, ESCALATION_STEPS)))
    return steps


def _triggers(value: str) -> Tuple[str, ...]:
    triggers = _list(value)
    if not triggers:
        raise ValueError("is empty; the rule would never fire")
    for trigger in triggers:
        if trigger.startswith("app:"):
            if len(trigger) == 4:
                raise ValueError("%r names no application event (app:NAME or app:*)" % trigger)
        elif trigger not in EVENT_TRIGGERS:
            raise ValueError("unknown trigger %r (known: %s, app:NAME, app:*)%s"
                             % (trigger, ", ".join(EVENT_TRIGGERS), _hint(trigger, EVENT_TRIGGERS)))
    return triggers


def _topic_prefix(value: str) -> str:
    text = _text(value)
    if any(c in text for c in "+#\x00") or text.startswith("/") or text.endswith("/"):
        raise ValueError("%r: a topic prefix has no +, #, or leading/trailing /" % value)
    return text


def _keepalive(value: str) -> float:
    seconds = parse_duration(value)
    if not 5 <= seconds <= 65535:
        raise ValueError("%r: keepalive is 5s to 18h (MQTT's limit); keep it under the "
                         "carrier's NAT idle timeout" % value)
    return seconds


def _compress(value: str) -> bool:
    return _choice(("none", "zlib"))(value) == "zlib"


def _rate(value: str) -> float:
    text = value.strip()
    text = text[:-2] if text.endswith("/s") else text
    try:
        rate = float(text)
    except ValueError:
        raise ValueError("%r is not a rate (example: 20/s)" % value)
    if not 0 < rate <= 10000:
        raise ValueError("%r: a rate is above 0 and at most 10000/s" % value)
    return rate


def _flash_dir(value: str) -> str:
    if is_off(value):
        return ""
    text = _text(value)
    if not text.startswith("/"):
        raise ValueError("%r: give an absolute directory (flash survives reboots: "
                         "/etc/config/gcagent/outbox on DAL)" % value)
    return text


COMMANDS = ("collect", "status", "set", "snapshot", "reload")


def _command_names(value: str) -> Tuple[str, ...]:
    names = _list(value)
    for name in names:
        if name not in COMMANDS:
            raise ValueError("unknown command %r (known: %s)%s"
                             % (name, ", ".join(COMMANDS), _hint(name, COMMANDS)))
    return names


def _settable(value: str) -> Tuple[str, ...]:
    pairs = _list(value)
    for pair in pairs:
        rule, _, key = pair.partition(".")
        if not rule or key not in _ALL_RULE_KEYS or key == "type":
            raise ValueError("%r: write RULE.KEY, e.g. low-memory.below (keys: %s)"
                             % (pair, ", ".join(k for k in _ALL_RULE_KEYS if k != "type")))
    return pairs


def _hint(word: str, choices) -> str:
    import difflib  # only on the error path: it costs RSS on every device otherwise
    close = difflib.get_close_matches(word, list(choices), n=1)
    return "; did you mean %s?" % close[0] if close else ""


# --- the schema --------------------------------------------------------------
# section -> key -> (field, parser, required)

_Key = Tuple[str, Callable[[str], object], bool]

SCHEMA = {
    "profile": {
        "extends": ("extends", _text, False),
        "description": ("description", str, False),
    },
    "device": {
        "id": ("id", _device_id, True),
        "model": ("model", _text, False),
        "memory_limit": ("memory_limit_kb", _memory_limit, False),
        "ram": ("ram_kb", _positive_kb, False),
        "python": ("python", _text, False),
        "exit_action": ("exit_action", _choice(EXIT_ACTIONS), False),
    },
    "agent": {
        "tick": ("tick", _positive_duration, False),
        "budget": ("budget", _budget, False),
        "budget_window": ("budget_window", _positive_duration, False),
        "signals": ("signals", _bool, False),
        "probe": ("probe", _choice(PROBES), False),
    },
    "gc": {
        "thresholds": ("thresholds", _thresholds, False),
        "freeze_after_start": ("freeze_after", _duration_or_off, False),
        "tune": ("tune", _choice(TUNE_MODES), False),
        "pause_budget": ("pause_budget", _pause_budget, False),
        "memory_target": ("memory_target", _memory_target, False),
    },
    "report": {
        "urls": ("urls", _urls, False),
        "interval": ("interval", _positive_duration, False),
        "batch": ("batch", _int_range(1, 1000), False),
        "prefix": ("prefix", _topic_prefix, False),
        "keepalive": ("keepalive", _keepalive, False),
        "compress": ("compress", _compress, False),
        "window": ("window", _int_range(1, 1000), False),
        "replay_rate": ("replay_rate", _rate, False),
        "ca_file": ("ca_file", _text, False),
        "cert_file": ("cert_file", _text, False),
        "key_file": ("key_file", _text, False),
        "username": ("username", _text, False),
        "password_file": ("password_file", _text, False),
        "password_env": ("password_env", _text, False),
    },
    "buffer": {
        "ram": ("ram_bytes", lambda v: _positive_kb(v) * 1024, False),
        "flash": ("flash", _flash_dir, False),
        "flash_max": ("flash_max_bytes", lambda v: _positive_kb(v) * 1024, False),
        "spill_after": ("spill_after", parse_duration, False),
        "sync_every": ("sync_every", parse_duration, False),
    },
    "commands": {
        "key_file": ("key_file", _text, True),
        "window": ("window", _positive_duration, False),
        "allow": ("allow", _command_names, False),
        "settable": ("settable", _settable, False),
    },
}

_RULE_COMMON = {
    "type": ("type", _choice(RULE_TYPES), True),
    "enabled": ("enabled", _bool, False),
}
RULE_SCHEMA = {
    "periodic": {
        "every": ("every", _positive_duration, True),
        "generation": ("generation", _int_range(0, 2), False),
    },
    "low_memory": {
        "below": ("below", parse_amount, True),
        "rearm_above": ("rearm_above", parse_amount, False),
        "escalate": ("escalate", _escalate, False),
        "step_every": ("step_every", _positive_duration, False),
        "min_reclaim": ("min_reclaim_kb", _kb, False),
        "leak_after": ("leak_after", _int_range(1, 1000), False),
        "backoff_max": ("backoff_max", _positive_duration, False),
        "ahead": ("ahead", _int_range(0, 10), False),
    },
    "event": {
        "on": ("on", _triggers, True),
        "generation": ("generation", _int_range(0, 2), False),
        "cooldown": ("cooldown", parse_duration, False),
        "idle_cpu": ("idle_cpu", parse_percent, False),
        "idle_for": ("idle_for", _positive_duration, False),
        "large_free": ("large_free_kb", _positive_kb, False),
    },
}
_ALL_RULE_KEYS = sorted(set(_RULE_COMMON).union(*RULE_SCHEMA.values()))


# --- reading: text -> layered values with locations ---------------------------

class _Value(NamedTuple):
    text: str
    path: str
    line: int


class _Layered(object):
    """Sections and keys merged across `extends`, each value with its location."""

    def __init__(self) -> None:
        self.sections: Dict[str, Dict[str, _Value]] = {}
        self.headers: Dict[str, Tuple[str, int]] = {}

    def merge(self, other: "_Layered") -> None:
        for name, keys in other.sections.items():
            self.sections.setdefault(name, {}).update(keys)
            self.headers.setdefault(name, other.headers[name])


def _index_lines(text: str) -> Tuple[Dict[str, int], Dict[Tuple[str, str], int]]:
    """Where each section header and key stands; configparser does not say."""
    headers, keys = {}, {}
    section = None
    for number, raw in enumerate(io.StringIO(text), 1):
        line = raw.rstrip("\r\n")
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        m = re.match(r"\[(.+)\]", re.split(r"\s[;#]", stripped, maxsplit=1)[0].rstrip())
        if m and not line[:1].isspace():
            section = m.group(1)
            headers.setdefault(section, number)
            continue
        if section is not None and not line[:1].isspace():
            m = re.match(r"([^=:]+?)\s*[=:]", line)
            if m:
                keys.setdefault((section, m.group(1).strip().lower()), number)
    return headers, keys


def _parse_text(text: str, path: str, problems: List[Problem]) -> _Layered:
    layer = _Layered()
    parser = configparser.ConfigParser(interpolation=None, strict=True,
                                       inline_comment_prefixes=(";", "#"),
                                       default_section="\x00no-defaults\x00")
    try:
        parser.read_string(text, source=path)
    except configparser.MissingSectionHeaderError as exc:
        problems.append(Problem(path, exc.lineno, "", "",
                                "text before the first [section]: %r" % exc.line.strip()))
        return layer
    except configparser.DuplicateSectionError as exc:
        problems.append(Problem(path, exc.lineno or 1, exc.section, "", "section appears twice"))
        return layer
    except configparser.DuplicateOptionError as exc:
        problems.append(Problem(path, exc.lineno or 1, exc.section, exc.option,
                                "key appears twice in this section"))
        return layer
    except configparser.ParsingError as exc:
        for lineno, line in exc.errors:
            problems.append(Problem(path, lineno, "", "",
                                    "cannot parse %s (expected key = value)" % line.strip()[:60]))
        return layer
    except configparser.Error as exc:   # any other configparser complaint, located at line 1
        problems.append(Problem(path, 1, "", "", str(exc).splitlines()[0]))
        return layer
    headers, keys = _index_lines(text)
    for section in parser.sections():
        layer.headers[section] = (path, headers.get(section, 1))
        values = layer.sections.setdefault(section, {})
        for key, value in parser.items(section):
            line = keys.get((section, key), layer.headers[section][1])
            values[key] = _Value(value or "", path, line)
    return layer


def _read(path: str, problems: List[Problem], seen: Tuple[str, ...]) -> _Layered:
    if "\x00" in path:
        problems.append(Problem(path.replace("\x00", "\\0"), 0, "", "",
                                "cannot read profile: the path has a NUL byte"))
        return _Layered()
    real = os.path.realpath(path)
    if real in seen:
        problems.append(Problem(path, 1, "profile", "extends",
                                "extends itself through %s" % " -> ".join(seen + (real,))))
        return _Layered()
    if len(seen) >= _MAX_EXTENDS_DEPTH:
        problems.append(Problem(path, 1, "profile", "extends",
                                "more than %d levels of extends" % _MAX_EXTENDS_DEPTH))
        return _Layered()
    try:
        raw = _read_bytes(path, 1 << 20)
        text = raw.decode("utf-8-sig")   # a BOM from a Windows editor is not a problem
    except OSError as exc:
        problems.append(Problem(path, 0, "", "", "cannot read profile: %s" % (exc.strerror or exc)))
        return _Layered()
    except UnicodeDecodeError as exc:
        problems.append(Problem(path, raw[:exc.start].count(b"\n") + 1, "", "",
                                "not UTF-8 text (byte 0x%02x)" % raw[exc.start]))
        return _Layered()
    return _layer_text(text, path, problems, seen + (real,))


def _read_bytes(path: str, limit: int) -> bytes:
    """A file's bytes; a path inside a zip (a gc-bundle .pyz) is read through zipimport."""
    try:
        with open(path, "rb") as handle:
            return handle.read(limit)
    except (FileNotFoundError, NotADirectoryError):
        data = _read_from_zip(path)
        if data is None:
            raise
        return data[:limit]


def _read_from_zip(path: str) -> Optional[bytes]:
    archive = os.path.dirname(path)
    while archive and not os.path.isfile(archive) and os.path.dirname(archive) != archive:
        archive = os.path.dirname(archive)
    if not os.path.isfile(archive):
        return None
    import zipimport
    try:
        importer = zipimport.zipimporter(archive)
    except zipimport.ZipImportError:
        return None
    member = path[len(archive) + 1:]
    try:
        return importer.get_data(member)
    except OSError:
        raise FileNotFoundError(2, "%s is not inside %s" % (member, archive))


def _layer_text(text: str, path: str, problems: List[Problem], seen: Tuple[str, ...]) -> _Layered:
    own = _parse_text(text, path, problems)
    base_value = own.sections.get("profile", {}).get("extends")
    if base_value is None or not base_value.text.strip():
        return own
    base_path = os.path.join(os.path.dirname(path), base_value.text.strip())
    before = len(problems)
    merged = _read(base_path, problems, seen)
    for i in range(before, len(problems)):
        if problems[i].line == 0:   # unreadable base: point at the extends line
            problems[i] = Problem(base_value.path, base_value.line, "profile", "extends",
                                  problems[i].message + " (%s)" % base_path)
    merged.merge(own)
    return merged


# --- validation: layered values -> Profile ------------------------------------

def _convert(section: str, values: Dict[str, _Value], schema: Dict[str, _Key],
             header: Tuple[str, int], problems: List[Problem]) -> Dict[str, object]:
    fields = {}
    for key, value in values.items():
        spec = schema.get(key)
        if spec is None:
            known = list(schema)
            problems.append(Problem(value.path, value.line, section, key,
                                    "unknown key%s" % (_hint(key, known) or
                                                       " (known: %s)" % ", ".join(sorted(known)))))
            continue
        field, parse, _ = spec
        try:
            fields[field] = parse(value.text)
        except (ValueError, OverflowError) as exc:
            problems.append(Problem(value.path, value.line, section, key, str(exc)))
    for key, (_, _, required) in schema.items():
        if required and key not in values:
            problems.append(Problem(header[0], header[1], section, key, "missing required key"))
    return fields


def _rule(section: str, values: Dict[str, _Value], header: Tuple[str, int],
          problems: List[Problem]) -> Optional[RuleSettings]:
    name = section[len(RULE_PREFIX):].strip()
    if not name:
        problems.append(Problem(header[0], header[1], section, "", "a rule needs a name: [rule:NAME]"))
        return None
    type_value = values.get("type")
    if type_value is None:
        problems.append(Problem(header[0], header[1], section, "type",
                                "missing required key (one of %s)" % ", ".join(RULE_TYPES)))
        return None
    rule_type = type_value.text.strip().lower()
    if rule_type not in RULE_SCHEMA:
        problems.append(Problem(type_value.path, type_value.line, section, "type",
                                "%r is not one of %s%s" % (type_value.text, ", ".join(RULE_TYPES),
                                                          _hint(rule_type, RULE_TYPES))))
        return None
    schema = dict(_RULE_COMMON)
    schema.update(RULE_SCHEMA[rule_type])
    before = len(problems)
    fields = _convert(section, values, schema, header, problems)
    for i in range(before, len(problems)):   # say why a key of another rule type is unknown
        p = problems[i]
        if p.message.startswith("unknown key") and p.key in _ALL_RULE_KEYS:
            problems[i] = p._replace(message="not used by a %s rule (it belongs to %s rules)"
                                     % (rule_type, ", ".join(t for t in RULE_TYPES
                                                             if p.key in RULE_SCHEMA[t])))
    if len(problems) > before:
        return None
    fields["name"] = name
    rule = RuleSettings(**fields)
    _check_rule_fires(rule, section, values, header, problems)
    return rule


def _check_rule_fires(rule: RuleSettings, section: str, values: Dict[str, _Value],
                      header: Tuple[str, int], problems: List[Problem]) -> None:
    """Catch rules that validate key by key yet can never act."""
    def at(key: str) -> Tuple[str, int]:
        v = values.get(key)
        return (v.path, v.line) if v else header

    if rule.type == "low_memory":
        below, rearm = rule.below, rule.rearm_above
        if below.resolve(1 << 30) == 0 and below.resolve(1) == 0:
            problems.append(Problem(*at("below"), section=section, key="below",
                                    message="0 can never be reached; the rule would never fire"))
        elif (below.fraction is None) == (rearm.fraction is None) and \
                rearm.resolve(1 << 30) <= below.resolve(1 << 30):
            problems.append(Problem(*at("rearm_above"), section=section, key="rearm_above",
                                    message="%s must be above below = %s, or the rule never re-arms"
                                    % (rearm, below)))
        if rearm.fraction is not None and rearm.fraction >= 1.0:
            problems.append(Problem(*at("rearm_above"), section=section, key="rearm_above",
                                    message="100% of the ceiling is never free (RSS is never 0): "
                                    "the episode would never end"))
        if below.fraction is not None and below.fraction >= 1.0:
            problems.append(Problem(*at("below"), section=section, key="below",
                                    message="100% of the ceiling is always below: the rule would "
                                    "fire on every tick"))
    if rule.type == "event":
        if "idle" in rule.on and rule.idle_cpu <= 0:
            problems.append(Problem(*at("idle_cpu"), section=section, key="idle_cpu",
                                    message="0% can never be reached; idle would never fire"))
        for key, trigger in (("idle_cpu", "idle"), ("idle_for", "idle"), ("large_free", "large_free")):
            if key in values and trigger not in rule.on:
                problems.append(Problem(*at(key), section=section, key=key,
                                        message="has no effect: on = does not list %s" % trigger))


def _check_mixed_hysteresis(rules: List[RuleSettings], device: Dict[str, object],
                            layer: _Layered, problems: List[Problem]) -> None:
    """`below = 50M` with `rearm_above = 10%` inverts on a small ceiling: check it
    against the memory the profile names (memory_limit, else ram)."""
    ceiling = device.get("memory_limit_kb") or device.get("ram_kb")
    if not ceiling:
        return
    for rule in rules:
        if rule.type != "low_memory" or \
                (rule.below.fraction is None) == (rule.rearm_above.fraction is None):
            continue
        below, rearm = rule.below.resolve(ceiling), rule.rearm_above.resolve(ceiling)
        if rearm <= below:
            section = RULE_PREFIX + rule.name
            value = layer.sections[section].get("rearm_above")
            path, line = (value.path, value.line) if value else layer.headers[section]
            said = "" if value else "(default) "
            problems.append(Problem(path, line, section, "rearm_above",
                                    "%s%s of a %s ceiling is %s, not above below = %s: the rule "
                                    "would never re-arm" % (said, rule.rearm_above, format_kb(ceiling),
                                                            format_kb(rearm), format_kb(below))))


def _build(layer: _Layered, path: str, problems: List[Problem]) -> Optional[Profile]:
    parts = {}
    rules = []
    for section, values in layer.sections.items():
        header = layer.headers[section]
        if section.startswith(RULE_PREFIX):
            rule = _rule(section, values, header, problems)
            if rule is not None:
                rules.append(rule)
            continue
        schema = SCHEMA.get(section)
        if schema is None:
            hint = _hint(section, list(SCHEMA) + ["rule:NAME"])
            problems.append(Problem(header[0], header[1], section, "",
                                    "unknown section%s" % (hint or " (known: %s, rule:NAME)"
                                                           % ", ".join(SCHEMA))))
            continue
        parts[section] = _convert(section, values, schema, header, problems)
    _check_mixed_hysteresis(rules, parts.get("device", {}), layer, problems)
    if "device" not in layer.sections:
        problems.append(Problem(path, 1, "device", "id",
                                "missing required key (add a [device] section with id = ...)"))
    if not rules and not problems:
        problems.append(Problem(path, 1, "", "",
                                "no [rule:NAME] section: the agent would only watch; add at least "
                                "one rule (see the README)"))
    if problems:
        return None
    text = _flatten(layer)
    return Profile(
        path=path,
        sha256=sha256_hex(text.encode("utf-8")),
        text=text,
        device=DeviceSettings(**parts["device"]),
        agent=AgentSettings(**parts.get("agent", {})),
        gc=GcSettings(**parts.get("gc", {})),
        rules=tuple(rules),
        report=ReportSettings(**parts.get("report", {})),
        buffer=BufferSettings(**parts.get("buffer", {})),
        commands=CommandSettings(**parts.get("commands", {})),
    )


def _flatten(layer: _Layered) -> str:
    """One INI text with extends resolved: what the profile hash covers."""
    out = []
    for section, values in layer.sections.items():
        keys = [(k, v) for k, v in values.items() if not (section == "profile" and k == "extends")]
        if section == "profile" and not keys:
            continue
        out.append("[%s]" % section)
        for key, value in keys:
            out.append("%s = %s" % (key, value.text.replace("\n", "\n    ")))
        out.append("")
    return "\n".join(out)


def sha256_hex(data: bytes) -> str:
    """SHA-256 without hashlib where possible: hashlib maps OpenSSL, ~4 MB of RSS."""
    try:
        from _sha256 import sha256  # CPython 3.6-3.11
    except ImportError:
        try:
            from _sha2 import sha256  # CPython 3.12+
        except ImportError:
            from hashlib import sha256
    return sha256(data).hexdigest()


# --- public API -----------------------------------------------------------------

def load(path: str) -> Profile:
    """Read and validate the profile at `path`; raise ProfileError listing every problem."""
    problems: List[Problem] = []
    layer = _read(path, problems, ())
    profile = None if problems else _build(layer, path, problems)
    if profile is None:
        raise ProfileError(sorted(problems, key=lambda p: (p.path != path, p.path, p.line)))
    return profile


def loads(text: str, path: str = "<profile>") -> Profile:
    """Validate profile text; `extends` is resolved relative to `path`."""
    problems: List[Problem] = []
    layer = _layer_text(text, path, problems, (os.path.realpath(path),))
    profile = None if problems else _build(layer, path, problems)
    if profile is None:
        raise ProfileError(sorted(problems, key=lambda p: (p.path != path, p.path, p.line)))
    return profile


def resolve_device_id(profile: Profile, environ: Optional[Dict[str, str]] = None) -> str:
    """Fill `${hostname}`, `${serial}` and `${env:NAME}` in the device id."""
    env = os.environ if environ is None else environ

    def fill(match: "re.Match") -> str:
        name = match.group(1)
        if name == "hostname":
            return os.uname()[1].split(".")[0]   # not socket: it costs ~0.8 MB of RSS
        if name == "serial":
            return _device_serial()
        value = env.get(name[4:], "")
        if not value:
            raise ValueError("${%s}: environment variable %s is not set" % (name, name[4:]))
        return value

    try:
        device_id = _TEMPLATE.sub(fill, profile.device.id)
    except ValueError as exc:
        raise ProfileError([Problem(profile.path, 1, "device", "id", str(exc))])
    if not _ID_CHARS.match(device_id):
        device_id = re.sub(r"[^A-Za-z0-9._-]", "-", device_id)[:64]
    return device_id


def _device_serial() -> str:
    # DAL devices expose the serial in the device tree; x86 gateways in DMI.
    for path in ("/proc/device-tree/serial-number", "/sys/class/dmi/id/product_serial"):
        try:
            with open(path, "rb") as handle:
                serial = handle.read(128).decode("ascii", "replace").strip("\x00 \n")
            if serial:
                return serial
        except OSError:
            continue
    raise ValueError("${serial}: this device exposes no serial number "
                     "(/proc/device-tree/serial-number); write the id explicitly")


def describe(profile: Profile) -> str:
    """A short human summary, used by `check -v` and the README's examples."""
    lines = ["device %s (model %s), %d rule(s)" % (profile.device.id, profile.device.model,
                                                    len(profile.rules))]
    if profile.device.exit_action != "none":
        lines.append("  when the script ends (or is killed over memory_limit): %s"
                     % profile.device.exit_action)
    if profile.gc.tune == "auto":
        lines.append("  gc: tuned (pause budget %s, memory target %.0f%%); thresholds and "
                     "freeze_after_start are the tuner's" % (format_duration(profile.gc.pause_budget),
                                                             profile.gc.memory_target * 100))
    for rule in profile.rules:
        if rule.type == "periodic":
            what = "every %s, generation %d" % (format_duration(rule.every), rule.generation)
        elif rule.type == "low_memory":
            what = "below %s (re-arm above %s): %s" % (rule.below, rule.rearm_above,
                                                       " -> ".join(rule.escalate))
        else:
            what = "on %s, generation %d" % (", ".join(rule.on), rule.generation)
        lines.append("  %s: %s%s" % (rule.name, what, "" if rule.enabled else " (disabled)"))
    return "\n".join(lines)
