"""Defects 3 and 4: what the journal keeps through outages and kill -9.

3. A device that boots during an outage must journal: spilling used to wait
   for a link-down event that never comes when the link was never up
   (134 of 134 messages lost).
4. Messages in flight when the link drops are journaled too: paho resends
   them after a reconnect, but kill -9 in the outage lost up to `window`
   of them (a gap in seq).
"""

import os
import signal
import time

from agent import messages
from tests.adversarial.agents import (
    kill_agent,
    seq_gaps,
    start_agent,
    stop_agent,
    until_subscribed,
    write_profile,
)
from tests.integration.broker import Subscriber
from tools.mosquitto import Mosquitto


def _replayed_until_quiet(subscriber, boot: str, timeout: float = 30.0) -> list:
    """The boot's messages once its replay has stopped growing for a second."""
    deadline, last, still = time.monotonic() + timeout, -1, 0
    while time.monotonic() < deadline and still < 4:
        got = [m for m in subscriber.messages() if m["boot"] == boot]
        still = still + 1 if len(got) == last else 0
        last = len(got)
        time.sleep(0.25)
    return [m for m in subscriber.messages() if m["boot"] == boot]


def test_boot_in_an_outage_kill_9_then_restart_delivers_the_first_boot_flagged_historical(tmp_path):
    outage = Mosquitto(_folder(tmp_path, "outage"))       # configured, not started: an outage
    profile = write_profile(tmp_path, outage.url)
    proc = start_agent(profile)
    time.sleep(3.5)                 # boots, samples, spills after 1 s; never sees a broker
    kill_agent(proc)
    outage.start()
    recorder = Subscriber(outage.port)
    proc = start_agent(profile)
    try:
        second = recorder.wait_for(lambda s: s.topic.endswith("/status") and not
                                   s.message.get("historical"), what="the second boot online")
        second_boot = second.message["boot"]
        first = recorder.wait_for(lambda s: s.message["boot"] != second_boot, timeout=20,
                                  what="a message of the first boot")
        first_boot = first.message["boot"]
        got = _replayed_until_quiet(recorder, first_boot)
    finally:
        stop_agent(proc)
        recorder.close()
        outage.stop()
    assert len(got) >= 5, "only %d messages of a 3.5 s boot arrived" % len(got)
    assert all(m.get("historical") is True for m in got)
    assert all(messages.validate(m) == [] for m in got)
    assert seq_gaps(got) == []      # what was lost is the tail after the last spill, never a gap


def test_messages_in_flight_when_the_link_drops_survive_kill_9(tmp_path, broker, subscriber):
    profile = write_profile(tmp_path, broker.url)
    proc = start_agent(profile)
    boot = subscriber.wait_for(lambda s: s.topic.endswith("/telemetry"), what="telemetry").message["boot"]
    os.kill(broker.proc.pid, signal.SIGSTOP)   # no more PUBACKs: messages pile up in flight
    time.sleep(3.0)
    os.kill(broker.proc.pid, signal.SIGKILL)   # then the link drops with them in flight
    broker.proc.wait(10)
    time.sleep(2.5)                 # past spill_after (1 s) and sync_every
    kill_agent(proc)
    seen_before = {m["seq"] for m in subscriber.messages() if m["boot"] == boot}
    broker.start()
    until_subscribed(subscriber)    # a replay the recorder misses would look like a loss
    proc = start_agent(profile)
    try:
        subscriber.wait_for(lambda s: s.message["boot"] == boot and s.message.get("historical"),
                            timeout=30, what="the first boot's journal")
        got = _replayed_until_quiet(subscriber, boot)
    finally:
        stop_agent(proc)
    replayed = {m["seq"] for m in got if m.get("historical")}
    assert max(replayed) > max(seen_before) + 5, "nothing of the outage came back"
    assert seq_gaps(got) == [], "lost in flight: %s" % seq_gaps(got)


def _folder(tmp_path, name: str) -> str:
    path = tmp_path / name
    path.mkdir()
    return str(path)
