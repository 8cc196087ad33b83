"""The leak verdict on real emulator runs: a real leak is called with a plausible rate, by the
agent and by the console from the same telemetry; healthy workloads are not called leaks."""

from agent.leakrecords import judge_stored
from tests.scenarios import test_leak, test_workloads  # noqa: F401 (they register "leak", "bigfree-agent")
from tests.scenarios.conftest import EMULATOR_INI, Emulation, background, messages

LEAK_KB_PER_HOUR = 1.5 * 1024 * 3600   # the `leak` run's --rate 1.5 MB/s (tests/scenarios/test_leak.py)


@background("gcoff-leakcheck")
def _gcoff(folder):
    # gcoff used to be reported as a leak: its collections often give back no RSS
    return Emulation(folder, "--profile", EMULATOR_INI, "--workload", "gcoff", "--duration", "25")


def verdicts(run):
    device = run.result()["devices"][0]
    sent = messages(run.device_folder(device["device"]))
    status = next(m for m in sent if m["type"] == "status")
    console = judge_stored(sent, {"boot": status["boot"], "ceiling_kb": status["ceiling_kb"]})
    events = [m for m in sent if m["type"] == "event" and m["event"] == "leak_suspected"]
    return events, console, sent


def test_a_real_leak_is_called_by_the_agent_and_the_console_with_a_plausible_rate(launched):
    events, console, _ = verdicts(launched["leak"])
    assert len(events) == 1, events
    rate = events[0]["rate_kb_per_hour"]
    assert 0.6 * LEAK_KB_PER_HOUR < rate < 1.6 * LEAK_KB_PER_HOUR, rate
    assert events[0]["ceiling_eta_s"] > 0 and 0 < events[0]["confidence"] <= 1
    # the console, judging the recorded telemetry, says the same
    assert console.reported is not None
    assert abs(console.reported.rate_kb_per_hour - rate) / rate < 0.5


def test_healthy_workloads_are_not_called_leaks(launched):
    for name in ("gcoff-leakcheck", "bigfree-agent"):
        events, console, sent = verdicts(launched[name])
        assert len([m for m in sent if m["type"] == "telemetry"]) >= 2, name   # it was judged
        assert events == [], (name, events)
        assert console.reported is None and not console.verdict.leak, (name, console.verdict)
