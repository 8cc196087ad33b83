"""Defects 7, 8, 9 and 13: commands abused, against a real agent subprocess and mosquitto.

7. `set` rebuilt the rules from the original profile text each time, so a
   second `set` undid the first, and `before` named the original value.
8. Seen command ids lived in memory only: a captured signed command replayed
   after a restart (within the 5 min window) ran again.
9. Every refusal was answered, unthrottled: 5,000 unsigned commands pushed
   telemetry out of the outbox.
13. A command key file readable by everyone was accepted silently, and a
   journal that cannot write (flash full or gone) was never reported.
"""

import json
import os
import shutil
import time

from tests.adversarial.agents import (
    DEVICE,
    ask,
    command,
    flood,
    recorder,
    seq_gaps,
    start_agent,
    stop_agent,
    until_subscribed,
    write_profile,
)


def _online(subscriber, after: float = 0.0):
    return subscriber.wait_for(lambda s: s.topic.endswith("/status") and s.at > after
                               and s.message["state"] == "online", what="status online")


def test_set_keeps_earlier_sets_and_says_what_was_before(tmp_path, broker, subscriber):
    proc = start_agent(write_profile(tmp_path, broker.url))
    try:
        _online(subscriber)
        first = ask(subscriber, command("set", {"rule": "periodic", "key": "every", "value": "2s"}))
        second = ask(subscriber, command("set", {"rule": "periodic", "key": "generation",
                                                 "value": 1}))
        third = ask(subscriber, command("set", {"rule": "periodic", "key": "every", "value": "3s"}))
        assert (first["result"]["before"], first["result"]["after"]) == ("1s", "2s")
        assert (second["result"]["before"], second["result"]["after"]) == ("0", "1")
        assert (third["result"]["before"], third["result"]["after"]) == ("2s", "3s")
        after = time.monotonic()
        collect = subscriber.wait_for(lambda s: s.at > after and s.message.get("event") == "collect"
                                      and s.message.get("rule") == "periodic", timeout=10,
                                      what="a periodic collection after the third set")
        assert collect.message["generation"] == 1   # the second set still holds
    finally:
        err = stop_agent(proc)
    assert proc.returncode == 0, err


def test_a_captured_signed_command_replayed_after_a_restart_is_refused(tmp_path, broker, subscriber):
    profile = write_profile(tmp_path, broker.url)
    captured = command("collect", {"generation": 0})
    proc = start_agent(profile)
    try:
        _online(subscriber)
        assert ask(subscriber, captured)["ok"] is True
    finally:
        stop_agent(proc)
    restarted = time.monotonic()
    proc = start_agent(profile)
    try:
        _online(subscriber, after=restarted)
        replayed = ask(subscriber, captured)
        assert replayed["ok"] is False and replayed["error"].startswith("replayed"), replayed
        fresh = ask(subscriber, command("collect", {"generation": 0}))
        assert fresh["ok"] is True                  # only the captured one is refused
    finally:
        err = stop_agent(proc)
    assert proc.returncode == 0, err
    ids = tmp_path / ("flash-%s" % DEVICE) / "replay-ids"
    assert ids.stat().st_size < 1024 and oct(ids.stat().st_mode & 0o777) == "0o600"


def test_5000_unsigned_commands_do_not_push_telemetry_out_of_the_outbox(tmp_path, broker):
    subscriber = recorder(broker.port, DEVICE)
    profile = write_profile(tmp_path, broker.url, extra="")
    with open(profile) as handle:
        text = handle.read().replace("[buffer]\n", "[buffer]\nram = 32K\n")
    with open(profile, "w") as handle:
        handle.write(text)
    proc = start_agent(profile)
    try:
        _online(subscriber)
        began = time.monotonic()
        junk = [json.dumps({"id": "u%d" % n, "cmd": "collect", "args": {}, "ts": time.time()}).encode()
                for n in range(5000)]
        flood(broker.port, "gcagent/%s/cmd" % DEVICE, junk, qos=1)
        time.sleep(3.0)
        status = ask(subscriber, command("status"))["result"]
        elapsed = time.monotonic() - began
    finally:
        err = stop_agent(proc)
        subscriber.close()
    assert proc.returncode == 0, err
    got = [m for m in subscriber.messages() if m["boot"] != "probe"]
    answers = [m for m in got if m["type"] == "resp" and not m["ok"]]
    assert len(answers) <= 20 + elapsed + 1, "%d refusals answered in %.1f s" % (len(answers), elapsed)
    assert seq_gaps(got) == [], "messages pushed out of the outbox"
    assert all(m["dropped"] == 0 for m in got if m["type"] == "telemetry")
    refused = status["refused"].get("unsigned", 0)
    assert refused + status["commands_dropped"] >= 1000   # what the broker passed on, all counted
    assert status["refused_unanswered"] == refused - len(answers)


def test_a_key_file_readable_by_others_is_warned_about_at_start_in_an_event_and_in_status(
        tmp_path, broker, subscriber):
    profile = write_profile(tmp_path, broker.url)
    os.chmod(str(tmp_path / "key"), 0o644)
    proc = start_agent(profile)
    try:
        _online(subscriber)
        event = subscriber.wait_for(lambda s: s.message.get("event") == "error"
                                    and s.message.get("part") == "commands", what="the warning event")
        status = ask(subscriber, command("status"))["result"]
    finally:
        err = stop_agent(proc)
    assert "readable by group or others (mode 644)" in event.message["error"]
    assert "chmod 600" in status["key_file_warning"]
    assert "key file %s/key is readable by group or others" % tmp_path in err   # said at start


def test_a_journal_that_cannot_write_is_reported_in_an_event_and_in_status(tmp_path, broker, subscriber):
    # A file report too: it records the event even if the recorder reconnects after the agent.
    record = tmp_path / "record.jsonl"
    profile = write_profile(tmp_path, "%s, file://%s" % (broker.url, record))
    proc = start_agent(profile)
    try:
        _online(subscriber)
        flash = str(tmp_path / ("flash-%s" % DEVICE))
        [journal] = [os.path.join(flash, n) for n in os.listdir(flash) if n.startswith("mqtt")]
        shutil.rmtree(journal)
        with open(journal, "w") as handle:   # the flash gone from under the journal
            handle.write("not a directory")
        broker.stop()
        time.sleep(2.5)                      # past spill_after: the spill fails
        broker.start()
        until_subscribed(subscriber)
        deadline = time.monotonic() + 20   # the event, and the agent back (its second link_up)
        while time.monotonic() < deadline and not (_journal_errors(record) and len(
                _events(record, "link_up")) >= 2):
            time.sleep(0.2)
        time.sleep(0.5)                      # its subscription renewed at the broker
        status = ask(subscriber, command("status"))["result"]
    finally:
        err = stop_agent(proc)
    assert proc.returncode == 0, err
    [event] = _journal_errors(record)[:1] or [None]
    assert event is not None, "no error event about the journal"
    assert "Not a directory" in event["error"]
    assert status["journal_errors"] >= 1


def _events(path, name: str) -> list:
    """The `name` events the file report holds so far (a line being written is skipped)."""
    found = []
    if os.path.exists(str(path)):
        with open(str(path)) as handle:
            for line in handle:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if message.get("event") == name:
                    found.append(message)
    return found


def _journal_errors(path) -> list:
    return [m for m in _events(path, "error") if "journal" in m.get("error", "")]
