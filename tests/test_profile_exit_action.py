"""[device] exit_action: the auto-start entry's exit action, for people and the emulator."""

import pytest

from agent.errors import ProfileError
from agent.profile import describe, loads

BASE = "[device]\nid = d1\n%s\n[rule:p]\ntype = periodic\nevery = 1m\n"


def test_default_is_none_and_the_three_actions_load():
    assert loads(BASE % "").device.exit_action == "none"
    for action in ("none", "restart", "reboot", "Reboot"):
        assert loads(BASE % ("exit_action = %s" % action)).device.exit_action == action.lower()


def test_a_wrong_action_is_refused_with_the_choices_and_a_hint():
    with pytest.raises(ProfileError) as caught:
        loads(BASE % "exit_action = rebot")
    text = str(caught.value.problems[0])
    assert "[device] exit_action" in text and "none, restart, reboot" in text and "reboot?" in text


def test_check_v_says_what_follows_the_script():
    assert "reboot" in describe(loads(BASE % "exit_action = reboot"))
    assert "exit" not in describe(loads(BASE % ""))
