# The ranges a schema-v1 message must keep, beyond its types.
#
# `messages.validate` checks types; this checks sizes and ranges, so a reader
# (the console's SQLite store, a dashboard, another JSON parser) can hold every
# value of a message it accepted. What the agent itself sends always fits:
#
# - integers fit in 64 bits signed, anywhere in a message (SQLite's INTEGER;
#   JSON readers built on doubles lose precision long before that);
# - numbers are finite (JSON has no NaN or Infinity; `1e999` parses as inf);
# - nesting is at most MAX_DEPTH deep; strings are valid Unicode (no lone
#   surrogates, which cannot be written as UTF-8);
# - `seq` is 0 or more, times (`ts`, samples' `ts`) are 0 to TS_MAX (year 2286),
#   kilobyte counts are 0 to KB_MAX;
# - `device` and `boot` are 1 to ID_MAX characters (a profile's device id is
#   at most 64, and `DEVICE@APP` adds `@` and an application name of up to 32:
#   docs/field.md), names (`model`, `rule`, `event`, `state`) at most NAME_MAX, the
#   other status strings at most TEXT_MAX;
# - the optional fields a reader keeps (`rule`, `generation`, `rss_before_kb`,
#   `rss_after_kb`, `historical`, `will`) have their types.
#
# See docs/console-robustness.md for what the console does with the rest.


TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, List  # noqa: F401 (type comments)

INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1
TS_MAX = 1e10
KB_MAX = 1 << 42           # 4 PB: any memory size a device can report
MAX_DEPTH = 32
ID_MAX = 64 + 1 + 32
NAME_MAX = 128
TEXT_MAX = 4096
_INF = float("inf")
MAX_PROBLEMS = 5           # said one by one; a message with more is refused all the same

_NAMES = ("model", "rule", "event", "state")
_STATUS_TEXT = ("agent", "python", "gc_flavour", "profile", "profile_sha256")
_KB = ("ceiling_kb", "rss_before_kb", "rss_after_kb")
_SAMPLE_KB = ("mem_free_kb", "mem_total_kb", "rss_kb")
_OPTIONAL = {"rule": str, "generation": int, "rss_before_kb": int, "rss_after_kb": int,
             "historical": bool, "will": bool}


def check(message):  # type: (Any) -> List[str]
    # Every way a type-valid `message` leaves the ranges above (empty when it keeps them).
    problems = []  # type: List[str]
    _walk(message, problems)
    if problems or not isinstance(message, dict):
        return problems[:MAX_PROBLEMS]
    for field, kind in _OPTIONAL.items():
        value = message.get(field)
        if field in message and (not isinstance(value, kind)
                                 or (kind is int and isinstance(value, bool))):
            problems.append("%s has the wrong type (%s)" % (field, type(value).__name__))
    _number(problems, "seq", message.get("seq"), 0, INT_MAX)
    _number(problems, "ts", message.get("ts"), 0, TS_MAX)
    for field in ("device", "boot"):
        _text(problems, field, message.get(field), ID_MAX, least=1)
    for field in _NAMES:
        _text(problems, field, message.get(field), NAME_MAX)
    for field in _STATUS_TEXT:
        _text(problems, field, message.get(field), TEXT_MAX)
    for field in _KB + ("buffered", "dropped"):
        _number(problems, field, message.get(field), 0, KB_MAX)
    samples = message.get("samples")
    for i, sample in enumerate(samples if isinstance(samples, list) else ()):
        if not isinstance(sample, dict):
            continue
        ts = sample.get("ts")
        if type(ts) is not float or not 0 <= ts <= TS_MAX:   # the usual case, tested once
            _number(problems, "samples[%d].ts" % i, ts, 0, TS_MAX)
        for field in _SAMPLE_KB:
            value = sample.get(field)
            if type(value) is not int or not 0 <= value <= KB_MAX:
                _number(problems, "samples[%d].%s" % (i, field), value, 0, KB_MAX)
        if len(problems) >= MAX_PROBLEMS:
            break
    return problems[:MAX_PROBLEMS]


def _number(problems, field, value, low, high):  # type: (List[str], str, Any, float, float) -> None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not low <= value <= high:
        problems.append("%s %s is out of range (%s to %s)" % (field, _short(value), low, high))


def _text(problems, field, value, most, least=0):  # type: (List[str], str, Any, int, int) -> None
    if isinstance(value, str) and not least <= len(value) <= most:
        problems.append("%s of %d characters is out of range (%d to %d)" % (field, len(value),
                                                                           least, most))


def _short(value):  # type: (Any) -> str
    text = repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


def _walk(root, problems):  # type: (Any, List[str]) -> None
    # Integers, floats, strings and depth anywhere in `root`, without recursion.
    #
    # Run on every message the console decodes, so the common case (a container
    # of scalars) costs one type test per value.
    stack = [(root, 1, "")]
    while stack and len(problems) < MAX_PROBLEMS:
        container, depth, where = stack.pop()
        if depth > MAX_DEPTH:
            problems.append("nested more than %d deep" % MAX_DEPTH)
            continue
        if isinstance(container, dict):
            pairs = container.items()
            for key in container:
                if not _unicode(key):
                    problems.append("a key is not valid Unicode (lone surrogate)")
        elif isinstance(container, list):
            pairs = ((where, item) for item in container)
        else:
            pairs = ((where, container),)
        for key, value in pairs:
            kind = type(value)
            if kind is bool or value is None:
                continue
            if kind is int or (kind is not float and isinstance(value, int)
                               and not isinstance(value, bool)):
                if not INT_MIN <= value <= INT_MAX:
                    problems.append("%s integer %s does not fit in 64 bits"
                                    % (_label(key, depth, where), _short(value)))
            elif kind is float:
                if value != value or value in (_INF, -_INF):
                    problems.append("%s number %s is not finite" % (_label(key, depth, where),
                                                                    value))
            elif kind is str:
                if not _unicode(value):
                    problems.append("%s string is not valid Unicode (lone surrogate)"
                                    % _label(key, depth, where))
            elif isinstance(value, (dict, list)):
                stack.append((value, depth + 1, _label(key, depth, where)))


def _label(key, depth, where):  # type: (Any, int, str) -> str
    # Problems name the top-level field they are under.
    return repr(key)[:40] if depth == 1 and isinstance(key, str) else (where or "a")


def _unicode(text):  # type: (str) -> bool
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
