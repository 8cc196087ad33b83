# Plain INI without configparser: the profiles people write, read at a quarter of the cost.
#
# configparser is 0.2 MB of the application's memory on the device
# (docs/footprint.md), for features a profile rarely uses. `parse_plain` reads
# the plain subset (one `key = value` or `key: value` a line, `[section]`
# headers, `;` and `#` comments, inline after a space) exactly as the
# profile's configparser settings do (no interpolation, strict, keys
# lower-cased), and says None for anything else (a continuation line, a
# duplicate, a line it cannot parse), so that text goes through configparser
# and its messages. tests/test_profile_ini.py holds the two to the same result.

import re

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Dict, Optional  # noqa: F401 (type comments)

_HEADER = re.compile(r"\[([^\[\]]+)\]$")
_OPTION = re.compile(r"(.*?)\s*([=:])\s*(.*)$")   # configparser's OPTCRE


def _cut_comment(line):  # type: (str) -> str
    # The line before an inline comment: a prefix at the start or after whitespace.
    for prefix in ";#":
        at = line.find(prefix)
        while at > 0 and not line[at - 1].isspace():
            at = line.find(prefix, at + 1)
        if at >= 0:
            return line[:at]
    return line


def parse_plain(text):  # type: (str) -> Optional[Dict[str, Dict[str, str]]]
    # section -> key -> value, in the order written; None when configparser must read it.
    sections = {}   # type: Dict[str, Dict[str, str]]
    current = None
    for line in text.split("\n"):   # configparser's lines: split at \n only
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if line[0].isspace() or "\x00" in line:
            return None   # a continuation line; a NUL (the reader's own default section has one)
        if ";" in line and "#" in line:
            return None   # configparser's search for the first of two prefixes has its own order
        value = _cut_comment(line).strip()
        if value.startswith("["):
            header = _HEADER.match(value)
            if header is None or header.group(1) in sections:
                return None
            current = sections[header.group(1)] = {}
            continue
        option = _OPTION.match(value)
        if current is None or option is None or not option.group(1):
            return None
        key = option.group(1).rstrip().lower()
        if key in current:
            return None
        current[key] = option.group(3).strip()
    return sections
