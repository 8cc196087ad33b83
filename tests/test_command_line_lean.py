"""`python -m agent run` reads a well-formed line without argparse, to argparse's result.

argparse costs the application RSS (docs/footprint.md); the plain reader must
give what argparse gives, and hand anything else (help, errors, abbreviations)
to argparse, whose answers people know.
"""

from agent.__main__ import _plain_run
from agent.cli import build_parser

SAME = [
    ["run", "--profile", "p.ini"],
    ["run", "--profile=p.ini", "--strict"],
    ["run", "--strict", "--profile", "p.ini", "--report", "stdout:", "--report=file:///tmp/x.jsonl"],
    ["run", "--log", "/tmp/log", "--profile", "a.ini", "--profile", "b.ini"],
    ["run", "--profile", "p.ini", "--report="],
]
DECLINED = [
    ["run"], ["run", "--help"], ["run", "-h"], ["run", "--prof", "p.ini"], ["run", "--profile"],
    ["run", "--profile", "--strict"], ["run", "--profile", "p.ini", "--strict=yes"],
    ["run", "--profile", "p.ini", "extra"], ["check", "p.ini"], ["--version"], [],
]


def test_a_plain_run_line_reads_as_argparse_reads_it():
    parser = build_parser()
    for line in SAME:
        plain, full = _plain_run(line), parser.parse_args(line)
        assert (plain.command, plain.profile, plain.report, plain.log, plain.strict) == \
            (full.command, full.profile, full.report, full.log, full.strict), line


def test_anything_else_goes_to_argparse():
    for line in DECLINED:
        assert _plain_run(line) is None, line
