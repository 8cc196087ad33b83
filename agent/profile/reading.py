# Reading profiles: INI text -> sections of values that remember where they were written.
#
# configparser without interpolation (so `${hostname}` stays as written), plus
# a line index configparser does not keep, so every problem can name its line.
# Plain text (most profiles) is read by `agent.profile.ini` instead, to the
# same result, so configparser is imported only for the rest.
# `[profile] extends = base.ini` layers a profile on another (path relative to
# the file naming it); keys set later win, key by key, rules included. A path
# inside a gc-bundle .pyz is read through zipimport (`agent.lean`).

import io
import os
import re

from ..errors import Problem
from ..lean import read_from_zip, record
from .ini import parse_plain

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Dict, List, Tuple  # noqa: F401 (type comments)

MAX_EXTENDS_DEPTH = 8


class Value(record(
        "Value",
        "text",                                 # str
        "path",                                 # str
        "line",                                 # int
)):
    # One value as written, and where.

    __slots__ = ()


class Layered(object):
    # Sections and keys merged across `extends`, each value with its location.

    def __init__(self):  # type: () -> None
        self.sections = {}  # type: Dict[str, Dict[str, Value]]
        self.headers = {}  # type: Dict[str, Tuple[str, int]]

    def merge(self, other):  # type: (Layered) -> None
        for name, keys in other.sections.items():
            self.sections.setdefault(name, {}).update(keys)
            self.headers.setdefault(name, other.headers[name])


def _index_lines(text):  # type: (str) -> Tuple[Dict[str, int], Dict[Tuple[str, str], int]]
    # Where each section header and key stands; configparser does not say.
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


def _parse_text(text, path, problems):  # type: (str, str, List[Problem]) -> Layered
    layer = Layered()
    plain = parse_plain(text)
    if plain is not None:
        _fill(layer, plain, text, path)
        return layer
    import configparser  # text beyond the plain subset: its full rules and messages
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
    _fill(layer, {section: dict(parser.items(section)) for section in parser.sections()}, text, path)
    return layer


def _fill(layer, sections, text, path):  # type: (Layered, Dict[str, Dict[str, str]], str, str) -> None
    headers, keys = _index_lines(text)
    for section, items in sections.items():
        layer.headers[section] = (path, headers.get(section, 1))
        values = layer.sections.setdefault(section, {})
        for key, value in items.items():
            line = keys.get((section, key), layer.headers[section][1])
            values[key] = Value(value or "", path, line)


def read(path, problems, seen):  # type: (str, List[Problem], Tuple[str, ...]) -> Layered
    if "\x00" in path:
        problems.append(Problem(path.replace("\x00", "\\0"), 0, "", "",
                                "cannot read profile: the path has a NUL byte"))
        return Layered()
    real = os.path.realpath(path)
    if real in seen:
        problems.append(Problem(path, 1, "profile", "extends",
                                "extends itself through %s" % " -> ".join(seen + (real,))))
        return Layered()
    if len(seen) >= MAX_EXTENDS_DEPTH:
        problems.append(Problem(path, 1, "profile", "extends",
                                "more than %d levels of extends" % MAX_EXTENDS_DEPTH))
        return Layered()
    try:
        raw = _read_bytes(path, 1 << 20)
        # A BOM from a Windows editor is not a problem. Stripped by hand: the utf-8-sig
        # codec is a module of its own (RSS, docs/footprint.md), and decodes the same.
        if raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        text = raw.decode("utf-8")
    except OSError as exc:
        problems.append(Problem(path, 0, "", "", "cannot read profile: %s" % (exc.strerror or exc)))
        return Layered()
    except UnicodeDecodeError as exc:
        problems.append(Problem(path, raw[:exc.start].count(b"\n") + 1, "", "",
                                "not UTF-8 text (byte 0x%02x)" % raw[exc.start]))
        return Layered()
    return layer_text(text, path, problems, seen + (real,))


def _read_bytes(path, limit):  # type: (str, int) -> bytes
    # A file's bytes; a path inside a zip (a gc-bundle .pyz) is read through zipimport.
    try:
        with open(path, "rb") as handle:
            return handle.read(limit)
    except (FileNotFoundError, NotADirectoryError):
        data = read_from_zip(path)
        if data is None:
            raise
        return data[:limit]


def layer_text(text, path, problems, seen):  # type: (str, str, List[Problem], Tuple[str, ...]) -> Layered
    own = _parse_text(text, path, problems)
    base_value = own.sections.get("profile", {}).get("extends")
    if base_value is None or not base_value.text.strip():
        return own
    base_path = os.path.join(os.path.dirname(path), base_value.text.strip())
    before = len(problems)
    merged = read(base_path, problems, seen)
    for i in range(before, len(problems)):
        if problems[i].line == 0:   # unreadable base: point at the extends line
            problems[i] = Problem(base_value.path, base_value.line, "profile", "extends",
                                  problems[i].message + " (%s)" % base_path)
    merged.merge(own)
    return merged


def flatten(layer):  # type: (Layered) -> str
    # One INI text with extends resolved: what the profile hash covers.
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
