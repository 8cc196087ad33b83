"""The leak verdict (agent/leak.py) on synthetic series: what leaks, what only looks like it."""

import math
import random

from agent.leak import CAPACITY, Floors, LeakWatch

HOUR = 3600.0
DAY = 24 * HOUR
CEILING = 64 * 1024


def run(floor, hours, period=300.0, garbage=4000.0, gc_every=0.5 * HOUR, noise=200.0, seed=1,
        gaps=(), watch=None):
    """Feed a series (floor(t) + sawtooth garbage + noise, collections marked); return
    the watch and the changes it reported as (t, event, fields)."""
    rng = random.Random(seed)
    watch = watch or LeakWatch()
    changes = []
    t = 0.0
    collections = 0
    while t < hours * HOUR:
        since = t % gc_every
        if since < period:
            collections += 1
        if not any(a * HOUR <= t < b * HOUR for a, b in gaps):
            kb = int(floor(t) + garbage * since / gc_every + rng.gauss(0, noise))
            change = watch.observe(t, kb, CEILING, (0, 0, collections))
            if change:
                changes.append((t, change[0], change[1]))
        t += period
    return watch, changes


def events(changes):
    return [name for _, name, _ in changes]


def flat(t):
    return 24000.0


def test_a_healthy_sawtooth_is_not_a_leak():
    watch, changes = run(flat, 72, garbage=12000)
    assert changes == []
    assert not watch.verdict.leak


def test_a_cache_that_warms_up_then_stays_flat_is_not_a_leak():
    watch, changes = run(lambda t: 20000 + 12000 * (1 - math.exp(-t / (1.5 * HOUR))), 72)
    assert changes == [] and not watch.verdict.leak


def test_a_daily_load_cycle_is_not_a_leak():
    watch, changes = run(lambda t: 24000 + 8000 * 0.5 * (1 - math.cos(2 * math.pi * t / DAY)), 96)
    assert changes == [] and not watch.verdict.leak


def test_a_one_time_step_is_not_a_leak():
    watch, changes = run(lambda t: 22000 + (10000 if t > 30 * HOUR else 0), 72)
    assert changes == [] and not watch.verdict.leak


def test_a_steady_slow_rise_of_the_floor_is_a_leak_with_its_rate_and_time_to_the_ceiling():
    rate = 150.0   # KB an hour: a week's worth is 25 MB
    watch, changes = run(lambda t: 24000 + rate * t / HOUR, 24 * 12, period=600.0)
    assert events(changes) == ["leak_suspected"] and watch.verdict.leak
    t, _, fields = changes[0]
    assert abs(fields["rate_kb_per_hour"] - rate) / rate < 0.25
    true_eta = (CEILING - (24000 + rate * t / HOUR)) / rate * HOUR
    assert abs(fields["ceiling_eta_s"] - true_eta) / true_eta < 0.25
    assert 0 < fields["confidence"] <= 1
    # early: well over half the time to the ceiling was still ahead
    assert true_eta / (true_eta + t) > 0.5


def test_a_fast_leak_under_heavy_garbage_is_found_in_time():
    rate = 4096.0
    watch, changes = run(lambda t: 20000 + rate * t / HOUR, 10, garbage=8000, gc_every=0.25 * HOUR,
                         period=60.0, noise=400)
    assert events(changes)[:1] == ["leak_suspected"] and watch.reported is not None
    t, _, fields = changes[0]
    ceiling_at = (CEILING - 20000) / rate * HOUR
    assert (ceiling_at - t) / ceiling_at > 0.5
    assert abs(fields["rate_kb_per_hour"] - rate) / rate < 0.25


def test_a_leak_that_starts_after_a_healthy_week_is_found():
    start = 7 * DAY
    watch, changes = run(lambda t: 24000 + max(0.0, t - start) * 600 / HOUR, 7 * 24 + 40)
    assert events(changes) == ["leak_suspected"]
    assert changes[0][0] > start
    assert abs(watch.verdict.rate_kb_per_hour - 600) / 600 < 0.25


def test_outages_leave_the_rate_right():
    rate = 800.0
    watch, changes = run(lambda t: 20000 + rate * t / HOUR, 40, gaps=((5, 11), (20, 23)))
    assert events(changes) == ["leak_suspected"] and watch.verdict.leak
    assert abs(changes[0][2]["rate_kb_per_hour"] - rate) / rate < 0.25


def test_leak_cleared_once_when_the_floor_stops_rising():
    stop = 20 * HOUR
    watch, changes = run(lambda t: 20000 + 1500 * min(t, stop) / HOUR, 60)
    assert events(changes) == ["leak_suspected", "leak_cleared"]
    assert changes[0][0] < stop < changes[1][0]
    assert not watch.verdict.leak


def test_a_new_boot_starts_a_new_baseline():
    watch, changes = run(lambda t: 20000 + 1500 * t / HOUR, 20)
    assert events(changes) == ["leak_suspected"]
    watch.reset()
    # the new process sits where the old one ended: no rise seen in this boot
    watch, changes = run(lambda t: 50000.0, 24, watch=watch)
    assert changes == [] and not watch.verdict.leak


def test_memory_stays_bounded_however_long_the_boot():
    floors = Floors()
    for i in range(200000):
        floors.add(i * 5.0, 20000 + i % 97)
    assert len(floors) < CAPACITY
    assert floors.points()[0][0] < 5000.0   # the oldest window still starts near the boot


def test_a_late_sample_lands_in_its_own_window():
    floors = Floors()
    for i in range(40):
        floors.add(i * 60.0, 30000)
    floors.add(600.0, 1000)   # a replayed sample from the outage at 10 minutes
    assert (600.0, 1000) in floors.points()
    assert len(floors) == 40


def test_the_leak_watchs_own_search_finds_what_bisect_right_finds():
    import bisect

    from agent.leak import _bisect_right
    rng = random.Random(5)
    for _ in range(2000):
        values = sorted(rng.choice((rng.randrange(20), rng.random() * 20)) for _ in range(rng.randrange(70)))
        x = rng.choice(values + [rng.random() * 22 - 1]) if values else rng.random()
        assert _bisect_right(values, x) == bisect.bisect_right(values, x), (values, x)


def test_garbage_piling_up_after_the_only_collection_so_far_is_not_a_leak():
    # make demo's bigfree device (128M) at start, as it reported it: one full collection
    # (at 6 s), then 8 MB of garbage a second until the next one (at 13 s). Until a second
    # collection shows how long the sawtooth's teeth are, the ramp since the first is at
    # least one tooth long: garbage, not a floor (this once said leak_suspected at 10 s).
    series = [(0.0, 13068, 0), (1.0, 22888, 0), (2.0, 31088, 0), (3.0, 18720, 0), (4.0, 26920, 0),
              (5.0, 35112, 0), (6.0, 26924, 1), (7.0, 35120, 1), (8.0, 43312, 1), (9.0, 51504, 1),
              (10.0, 59696, 1), (11.0, 67888, 1), (12.1, 76080, 1), (13.1, 22832, 2)]
    watch = LeakWatch()
    said = [watch.observe(t, kb, 128 * 1024, (0, 0, full)) for t, kb, full in series]
    assert not any(said), said
