# Parsing of the profile's sizes and durations.
#
# Sizes use binary units (K = 1024 bytes) because that is what /proc and the
# DAL "Maximum memory" field use; a size may also be a share of the memory
# ceiling ("15%"), resolved once the ceiling is known.

import re

from .lean import record

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_DURATION_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
OFF_WORDS = ("off", "no", "never", "none")


class Amount(record(
        "Amount",
        kb=None,                                # Optional[int]
        fraction=None,                          # Optional[float]
)):
    # A memory amount: absolute (`kb`) or a share of the ceiling (`fraction`).

    __slots__ = ()

    def resolve(self, ceiling_kb):  # type: (int) -> int
        # Kilobytes this amount means under a ceiling of `ceiling_kb`.
        if self.fraction is not None:
            return int(self.fraction * ceiling_kb)
        return int(self.kb or 0)

    def __str__(self):  # type: () -> str
        if self.fraction is not None:
            return "%g%%" % (self.fraction * 100)
        return format_kb(self.kb or 0)


def parse_size(text):  # type: (str) -> int
    # '40M' -> bytes. Raises ValueError with a message fit for a user.
    m = _SIZE.match(text)
    if not m:
        raise ValueError("%r is not a size (examples: 512K, 40M, 1G)" % text)
    value = float(m.group(1)) * _SIZE_FACTORS[m.group(2).lower()]
    if value > 1 << 62:
        raise ValueError("%r is too large to be a size" % text)
    return int(value)


def parse_amount(text, allow_percent=True):  # type: (str, bool) -> Amount
    # '24M' or '15%' -> Amount. Raises ValueError with a message fit for a user.
    m = _PERCENT.match(text)
    if m:
        if not allow_percent:
            raise ValueError("%r: a percentage is not allowed here; give a size like 40M" % text)
        value = float(m.group(1))
        if value > 100:
            raise ValueError("%r is more than 100%%" % text)
        return Amount(fraction=value / 100.0)
    try:
        return Amount(kb=parse_size(text) // 1024)
    except ValueError as exc:
        raise ValueError("%r is not a size or a percentage (examples: 24M, 15%%)" % text) from exc


def parse_percent(text):  # type: (str) -> float
    # '5%' -> 0.05. Raises ValueError with a message fit for a user.
    m = _PERCENT.match(text)
    if not m or float(m.group(1)) > 100:
        raise ValueError("%r is not a percentage between 0%% and 100%%" % text)
    return float(m.group(1)) / 100.0


def parse_duration(text):  # type: (str) -> float
    # '15m' -> 900.0 seconds; a bare number is seconds.
    m = _DURATION.match(text)
    if not m:
        raise ValueError("%r is not a duration (examples: 500ms, 30s, 15m, 2h, 1d)" % text)
    seconds = float(m.group(1)) * _DURATION_FACTORS[(m.group(2) or "s").lower()]
    if seconds > 10 * 365 * 86400:
        raise ValueError("%r is longer than ten years" % text)
    return seconds


def is_off(text):  # type: (str) -> bool
    # True for the words that switch an optional setting off.
    return text.strip().lower() in OFF_WORDS


def format_kb(kb):  # type: (float) -> str
    # 1536 -> '1.5M': short, for messages people read.
    for unit, size in (("G", 1 << 20), ("M", 1 << 10)):
        if abs(kb) >= size:
            return "%g%s" % (round(kb / float(size), 1), unit)
    return "%dK" % kb


def format_duration(seconds):  # type: (float) -> str
    # 900.0 -> '15m'.
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return "%d%s" % (seconds // size, unit)
    if seconds < 1:
        return "%gms" % (seconds * 1000)
    return "%gs" % seconds
