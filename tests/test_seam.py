"""The transport seam and the error tree: codes, causes, and one scheme table."""

import inspect
import itertools
import json
import zlib

import pytest

from agent import errors, messages, transports
from agent.errors import AgentError, MessageError, TransportError
from agent.outbox import Outgoing, outgoing
from agent.profile import loads
from agent.reporter import historical
from agent.transports.base import Context, Transport, TransportSettings

GOOD = {"v": 1, "type": "event", "device": "d", "boot": "b0", "seq": 1, "ts": 1.0, "event": "x"}


@pytest.mark.parametrize("payload, reason", [
    (b"{" + b" " * 300000 + b"}", "too_large"),
    (b"\x78\x9c not zlib at all", "zlib"),
    (zlib.compress(b"{" + b" " * 400000 + b"}"), "zlib"),   # a bomb: inflates past the cap
    (b"\xff\xfe not utf-8", "not_json"),
    (b"[" * 100000 + b"]" * 100000, "not_json"),
    (b'{"v": 1, "type": "event"}', "schema"),
    (json.dumps(dict(GOOD, v=2)).encode(), "schema"),
])
def test_a_refused_payload_carries_a_reason_code(payload, reason):
    with pytest.raises(MessageError) as info:
        messages.decode(payload)
    assert info.value.reason == reason
    assert str(info.value)   # and a sentence for people


def test_a_library_error_stays_the_cause_of_ours():
    with pytest.raises(MessageError) as info:
        messages.decode(b"{not json")
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(TransportError) as info:
        transports.open_transport("mqtt://")
    assert isinstance(info.value.__cause__, ValueError)


def test_a_reason_outside_the_fixed_list_is_a_bug_not_a_new_code():
    with pytest.raises(ValueError):
        MessageError("something_else", "no")


def test_every_error_the_agent_raises_is_in_the_one_documented_tree():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)
               if issubclass(c, Exception) and not c.__name__.startswith("_")]
    assert {c.__name__ for c in classes} >= {"AgentError", "ProfileError", "TransportError",
                                               "MessageError", "JournalError", "CommandRefused"}
    with open(errors.__file__, encoding="utf-8") as handle:   # the tree: the module's opening comment
        opening = "".join(itertools.takewhile(lambda line: line.startswith("#"), handle))
    for cls in classes:
        assert issubclass(cls, AgentError)
        assert cls.__name__ in opening
    from agent.commands import CommandRefused
    from agent.journal import JournalError
    assert CommandRefused is errors.CommandRefused and JournalError is errors.JournalError


class Picky(Transport):
    """A transport that owns its URL check, as every transport does."""

    @classmethod
    def check_url(cls, url):
        if "?" in url:
            raise ValueError("%r: picky: takes no options" % url)

    def send(self, item):
        return True


def test_a_new_transport_is_one_class_and_one_table_line(monkeypatch):
    monkeypatch.setitem(transports.SCHEMES, "picky", (__name__, "Picky"))
    transports.check_url("picky:")
    with pytest.raises(ValueError, match="takes no options"):
        transports.check_url("picky:?x=1")
    profile = "[device]\nid = d\n[rule:p]\ntype = periodic\nevery = 1m\n[report]\nurls = %s\n"
    assert loads(profile % "picky:").report.urls == ("picky:",)
    with pytest.raises(errors.ProfileError, match="takes no options"):
        loads(profile % "picky:?x=1")
    transport = transports.open_transport("picky:", Context("d"))
    assert isinstance(transport, Picky)
    assert transport.context.settings == TransportSettings()   # typed, with the profile's defaults


def test_outgoing_carries_its_boot_and_whether_it_is_a_replay():
    item = outgoing(dict(GOOD))
    assert (item.seq, item.type, item.boot, item.historical) == (1, "event", "b0", False)
    replay = historical(item.body)
    assert isinstance(replay, Outgoing)
    assert (replay.boot, replay.historical) == ("b0", True)
    assert json.loads(replay.body)["historical"] is True
