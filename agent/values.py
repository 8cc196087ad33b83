# Value parsers for profile keys: text -> value, or ValueError with a user's message.
#
# Shared by the section schema (`agent.profile.schema`) and by each rule type's
# schema (`agent.rules.*`): the same words mean the same thing in every section.
# Sizes, shares and durations themselves are `agent.units`.

import re

from .units import is_off, parse_duration, parse_percent, parse_size

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Callable, Optional, Tuple  # noqa: F401 (type comments)


def text(value):  # type: (str) -> str
    # Any text but blank, stripped.
    if not value.strip():
        raise ValueError("is empty")
    return value.strip()


def boolean(value):  # type: (str) -> bool
    low = value.strip().lower()
    if low in ("yes", "true", "on", "1"):
        return True
    if low in ("no", "false", "off", "0"):
        return False
    raise ValueError("%r is not yes or no" % value)


def int_range(lo, hi):  # type: (int, int) -> Callable[[str], int]
    # A parser for whole numbers from `lo` to `hi`.
    def parse(value):  # type: (str) -> int
        try:
            number = int(value.strip())
        except ValueError as exc:
            raise ValueError("%r is not a whole number" % value) from exc
        if not lo <= number <= hi:
            raise ValueError("%d is out of range %d..%d" % (number, lo, hi))
        return number
    return parse


def positive_duration(value):  # type: (str) -> float
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("%r must be longer than zero" % value)
    return seconds


def duration_or_off(value):  # type: (str) -> Optional[float]
    return None if is_off(value) else parse_duration(value)


def kb(value):  # type: (str) -> int
    # A size in kilobytes.
    return parse_size(value) // 1024


def positive_kb(value):  # type: (str) -> int
    size = kb(value)
    if size <= 0:
        raise ValueError("%r must be larger than zero" % value)
    return size


def percent(value):  # type: (str) -> float
    return parse_percent(value)


def choice(choices):  # type: (Tuple[str, ...]) -> Callable[[str], str]
    # A parser for one of `choices` (case-insensitive), with a did-you-mean hint.
    def parse(value):  # type: (str) -> str
        low = value.strip().lower()
        if low not in choices:
            raise ValueError("%r is not one of %s%s" % (value, ", ".join(choices), hint(low, choices)))
        return low
    return parse


def word_list(value):  # type: (str) -> Tuple[str, ...]
    # Words separated by commas and/or blanks.
    return tuple(p for p in re.split(r"[\s,]+", value.strip()) if p)


def closest(word, choices):  # type: (str, Any) -> str
    # The closest of `choices` to `word`, or ''.
    import difflib  # only on the error path: it costs RSS on every device otherwise
    close = difflib.get_close_matches(word, list(choices), n=1)
    return close[0] if close else ""


def hint(word, choices):  # type: (str, Any) -> str
    # '; did you mean X?' for the closest of `choices`, or ''.
    close = closest(word, choices)
    return "; did you mean %s?" % close if close else ""
