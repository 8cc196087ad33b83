"""The agent reports a leak from the floor of what it samples: once, with its rate, then cleared."""

from tests.test_runtime import make_agent, sent


def leak_events(link):
    return [m for m in sent(link) if m["type"] == "event" and m["event"].startswith("leak_")]


def test_a_steady_rise_is_reported_once_with_its_rate_then_cleared_when_it_stops(tmp_path):
    agent, clock, probe, link = make_agent(tmp_path, "leaky")
    agent.start = lambda: None   # the test drives the ticks itself
    for _ in range(110):   # 200 KB a second, from 20M towards the 64M ceiling
        probe.rss += 200
        agent._tick()
        clock.now += 1
    [suspected] = leak_events(link)
    assert suspected["event"] == "leak_suspected"
    assert abs(suspected["rate_kb_per_hour"] - 200 * 3600) / (200 * 3600) < 0.1
    left = (64 * 1024 - suspected["floor_kb"]) / 200.0
    assert abs(suspected["ceiling_eta_s"] - left) / left < 0.1
    assert 0 < suspected["confidence"] <= 1
    for _ in range(60):    # the rise stops
        agent._tick()
        clock.now += 1
    assert [m["event"] for m in leak_events(link)] == ["leak_suspected", "leak_cleared"]


def test_a_flat_process_whose_collections_give_nothing_back_is_not_a_leak(tmp_path):
    agent, clock, probe, link = make_agent(tmp_path, "flat")
    agent.start = lambda: None
    probe.rss = 60 * 1024          # low on memory, and collections reclaim nothing
    for _ in range(120):
        agent._tick()
        clock.now += 1
    events = [m["event"] for m in sent(link) if m["type"] == "event"]
    assert "collect" in events and not [e for e in events if e.startswith("leak_")]
