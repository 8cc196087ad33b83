"""The plain INI reader (agent.profile.ini) reads what configparser reads, or declines.

On the device profiles are read without configparser (docs/footprint.md), so
whenever the plain reader gives an answer it must be configparser's answer
under the profile's settings; anything else it must hand over (None).
"""

import configparser
import glob
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.profile import load
from agent.profile.ini import parse_plain
from tests.conftest import EMULATOR_PROFILE, REPO
from tests.test_profile_fuzz import ini_like, ini_lines, schema_shaped

PROFILES = sorted(glob.glob(os.path.join(REPO, "device_profiles", "**", "*.ini"), recursive=True))


def configparser_reads(text):
    parser = configparser.ConfigParser(interpolation=None, strict=True, inline_comment_prefixes=(";", "#"),
                                       default_section="\x00no-defaults\x00")
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    return {section: dict(parser.items(section)) for section in parser.sections()}


def same_or_declined(text):
    plain = parse_plain(text)
    if plain is not None:
        assert plain == configparser_reads(text), text
        assert list(plain) == list(configparser_reads(text)), text   # sections in order
    return plain


def test_every_shipped_profile_is_read_without_configparser_to_the_same_values():
    assert PROFILES
    for path in PROFILES:
        with open(path, encoding="utf-8") as handle:
            assert same_or_declined(handle.read()) is not None, path


def test_what_the_plain_reader_declines_goes_to_configparser_with_its_messages(tmp_path):
    declined = {"continued": "[device]\nid = a\n  b\n", "duplicate key": "[device]\nid = a\nid = b\n",
                "no section": "id = a\n", "two comment kinds": "[device]\nid = a ; one # two\n"}
    for name, text in declined.items():
        assert parse_plain(text) is None, name
    path = tmp_path / "dup.ini"
    path.write_text("[device]\nid = a\nid = b\n")
    try:
        load(str(path))
    except Exception as exc:
        assert "dup.ini:3" in str(exc) and "appears twice" in str(exc)
    else:
        raise AssertionError("a duplicate key was accepted")
    path.write_text("[profile]\nextends = %s\n[device]\nmodel = a\n  long name\n" % EMULATOR_PROFILE)
    assert load(str(path)).device.model == "a\nlong name"


@settings(max_examples=300, deadline=None)
@given(st.one_of(ini_like, ini_lines, schema_shaped()))
def test_any_text_reads_the_same_or_is_declined(text):
    same_or_declined(text)
