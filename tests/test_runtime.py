"""The agent loop, driven tick by tick with a fake clock and a scripted probe."""

import json
import textwrap

import pytest

from agent import profile as profiles
from agent.errors import TransportError
from agent.probes import Ceiling, Sample
from agent.runtime import MAX_FAILURES, Agent
from agent.transports import memory

PROFILE = """
[device]
id = unit-1
memory_limit = 64M
[agent]
tick = 1s
[rule:low]
type = low_memory
below = 20%
rearm_above = 30%
escalate = collect2, callbacks, event
step_every = 1s
[report]
urls = memory:{name}
interval = 1s
batch = 2
[buffer]
ram = {ram}
"""


class Clock(object):
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class ScriptedProbe(object):
    """Stands in for agent.probes.Probe: RSS and free memory as the test says."""

    backend = "scripted"

    def __init__(self, clock):
        self.clock = clock
        self.rss = 20 * 1024
        self.ceiling = Ceiling(64 * 1024, "profile", (("profile", 64 * 1024),))

    def sample(self):
        return Sample(self.clock(), self.clock(), 200000, 262144, self.rss, self.ceiling.kb,
                      0.0, True, (1, 0, 0), (5, 1, 0), 10, 0, 0.5, 0.25)

    def rss_kb(self):
        return self.rss

    def close(self):
        pass


def make_agent(tmp_path, name, ram="256K"):
    path = tmp_path / "p.ini"
    path.write_text(textwrap.dedent(PROFILE.format(name=name, ram=ram)))
    clock = Clock()
    probe = ScriptedProbe(clock)
    agent = Agent.build(profiles.load(str(path)), probe=probe, clock=clock, monotonic=clock)
    return agent, clock, probe, memory.get(name)


def sent(transport):
    return [json.loads(item.body) for item in transport.sent]


def test_status_telemetry_and_offline_reach_the_transport(tmp_path):
    agent, clock, _, link = make_agent(tmp_path, "basic")
    agent.start = lambda: None   # drive the loop by hand below
    agent._emit_status("online")
    for _ in range(4):
        agent._tick()
        clock.now += 1
    agent.stop()
    got = sent(link)
    # the first sample at once, a full batch while running, then the final reading at stop
    assert [m["type"] for m in got] == ["status", "telemetry", "telemetry", "telemetry", "status"]
    assert [len(m["samples"]) for m in got[1:4]] == [1, 2, 1]
    assert got[1]["samples"][0]["gc_pause_ms_total"] == 0.5
    assert got[-1]["state"] == "offline"


def test_pauses_since_the_last_report_reach_the_final_telemetry(tmp_path):
    agent, clock, _, link = make_agent(tmp_path, "final")
    agent.start = lambda: None
    agent._tick()                     # t=0: into the batch (batch = 2: not sent yet)
    clock.now += 0.5
    agent._tick()                     # t=0.5: not due (interval 1s); its pause waits in the agent
    agent.stop()
    samples = [s for m in sent(link) if m["type"] == "telemetry" for s in m["samples"]]
    assert [s["ts"] for s in samples] == [1000.0, 1000.5]
    assert [s["gc_pause_ms_total"] for s in samples] == [0.5, 0.5]


def test_low_memory_escalates_to_the_applications_callbacks_then_recovers(tmp_path):
    agent, clock, probe, link = make_agent(tmp_path, "low")
    seen = []
    agent.add_low_memory_callback(lambda info: seen.append(info["headroom_kb"]))
    agent.add_low_memory_callback(lambda info: 1 / 0)
    probe.rss = 60 * 1024            # 4M of 64M left: below 20%; collections give nothing back
    for _ in range(3):
        agent._tick()
        clock.now += 1
    events = [m for m in sent(link) if m["type"] == "event"]
    assert [m["event"] for m in events] == ["low_memory", "collect", "error", "callbacks", "alert"]
    assert seen == [4 * 1024]        # the good callback ran despite the bad one
    assert "ZeroDivisionError" in events[2]["error"]
    assert events[3]["callbacks"] == 2
    assert events[4]["ineffective_collections"] == 1
    probe.rss = 30 * 1024            # 34M left: above rearm_above = 30%
    agent._tick()
    assert [m["event"] for m in sent(link) if m["type"] == "event"][-1] == "recovered"


def test_a_part_that_keeps_failing_is_disabled_and_the_rest_goes_on(tmp_path):
    agent, clock, _, link = make_agent(tmp_path, "faulty")

    def broken(*args):
        raise RuntimeError("rule bug")

    agent.policy.decide = broken
    for _ in range(200):
        agent._tick()
        clock.now += 1
    got = sent(link)
    errors = [m for m in got if m.get("event") == "error" and m["part"] == "rules"]
    assert len(errors) == MAX_FAILURES
    assert [m["part"] for m in got if m.get("event") == "disabled"] == ["rules"]
    gaps = [b["ts"] - a["ts"] for a, b in zip(errors, errors[1:])]
    assert gaps == sorted(gaps) and gaps[-1] > gaps[0]   # backed off between tries
    assert sum(1 for m in got if m["type"] == "telemetry") > 50   # sampling went on every tick


def test_messages_wait_while_the_transport_fails_and_arrive_in_order(tmp_path):
    agent, clock, _, link = make_agent(tmp_path, "flaky")
    link.fail_with = "link down"
    for _ in range(10):
        agent._tick()
        clock.now += 1
    assert not link.sent
    assert len(agent.reporters[0].outbox) >= 5
    link.fail_with = None
    for _ in range(70):              # back-off is at most a minute
        agent._tick()
        clock.now += 1
    seqs = [m["seq"] for m in sent(link)]
    assert seqs == sorted(seqs) and seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert any(m.get("event") == "error" and "link down" in m["error"] for m in sent(link))


def test_a_full_outbox_drops_the_oldest_and_telemetry_counts_them(tmp_path):
    agent, clock, _, link = make_agent(tmp_path, "small", ram="4K")
    link.fail_with = "down"
    for _ in range(60):
        agent._tick()
        clock.now += 1
    assert agent.reporters[0].outbox.bytes <= 4096
    assert agent.reporters[0].outbox.dropped > 0
    link.fail_with = None
    for _ in range(70):
        agent._tick()
        clock.now += 1
    telemetry = [m for m in sent(link) if m["type"] == "telemetry"]
    assert telemetry[-1]["dropped"] >= agent.reporters[0].outbox.dropped > 0


def test_transport_error_is_ours_not_the_applications(tmp_path):
    agent, _, _, link = make_agent(tmp_path, "err")
    link.fail_with = "nope"
    with pytest.raises(TransportError):
        link.send(None)
    agent.stop(timeout=0.5)   # does not raise with a dead link
