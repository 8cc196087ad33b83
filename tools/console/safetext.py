"""Device-supplied strings made safe to show: plain text, never markup or terminal controls.

Anything a device sends (its id, model, rule and event names, error text) is
untrusted. Given to rich as a string it would be read as markup (`[/]` ends a
style that was never opened and the whole table fails to render); written to a
terminal raw, ESC and OSC sequences would move the cursor, retitle the window
or worse. `clean` turns C0 and C1 controls, DEL, lone surrogates and the
bidirectional overrides (which reorder what the operator reads) into visible
`\\xNN`-style escapes; `text` wraps the result in a rich Text, which rich never
parses as markup. `csv_cell` also keeps spreadsheets from reading a cell as a
formula. See docs/console-robustness.md.
"""

import re
from typing import Any

from rich.text import Text

# C0 (tab and newline too: a table cell is one line), DEL, C1, lone surrogates,
# bidi embeddings/overrides/isolates and the line/paragraph separators.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u200e\u200f\u202a-\u202e"
                     "\u2028\u2029\u2066-\u2069]")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _escape(match: "re.Match") -> str:
    code = ord(match.group())
    return "\\x%02x" % code if code < 0x100 else "\\u%04x" % code


def clean(value: Any) -> str:
    """`value` as one line of printable text (None as '-')."""
    if value is None:
        return "-"
    return _UNSAFE.sub(_escape, value if isinstance(value, str) else str(value))


def text(value: Any, style: str = "") -> Text:
    """A rich Text of `clean(value)`: shown as written, never read as markup."""
    return Text(clean(value), style=style)


def csv_cell(value: Any) -> Any:
    """A CSV value: numbers as they are; strings cleaned and never a spreadsheet formula."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    cell = clean(value)
    if cell.startswith(_FORMULA):
        cell = "'" + cell   # OWASP: a leading quote makes a spreadsheet show the cell as text
    return cell
