"""The policy, driven with a fake clock: every rule type, escalation, leaks, idle, the budget."""

from agent.probes import Sample
from agent.profile import loads
from agent.rules import Policy

CEILING = 100000   # KB; the low_memory rules below use shares of it


def sample(rss_kb=20000, ceiling_kb=CEILING, mem_free_kb=500000, mem_total_kb=1000000, cpu_s=0.0,
           gc_enabled=True, now=0.0):
    """A Sample with harmless defaults: plenty of room, gc on, nothing happening."""
    return Sample(ts=1700000000.0 + now, mono=now, mem_free_kb=mem_free_kb, mem_total_kb=mem_total_kb,
                  rss_kb=rss_kb, ceiling_kb=ceiling_kb, cpu_s=cpu_s, gc_enabled=gc_enabled,
                  gc_count=(0, 0, 0), gc_collections=(0, 0, 0), gc_collected=0, gc_uncollectable=0,
                  gc_pause_ms_total=0.0, gc_pause_ms_max=0.0)


def rules(text):
    return loads("[device]\nid = test\n" + text).rules


def collects(decisions):
    return [d for d in decisions if d.action == "collect"]


def events(decisions):
    return [d.event for d in decisions if d.action == "event"]


# --- periodic ---------------------------------------------------------------------------


def test_periodic_collects_every_period_and_not_before():
    policy = Policy(rules("[rule:tick]\ntype = periodic\nevery = 1m\ngeneration = 1\n"), start=1000.0)
    fired = []
    for t in range(1000, 1200):
        for d in collects(policy.decide(sample(), [], float(t))):
            fired.append(t)
            assert (d.rule, d.generation) == ("tick", 1)
    assert fired == [1060, 1120, 1180]


def test_a_disabled_rule_never_fires():
    policy = Policy(rules("[rule:tick]\ntype = periodic\nevery = 1s\nenabled = no\n"
                          "[rule:ckpt]\ntype = event\non = app:*\nenabled = no\n"), start=0.0)
    assert not any(policy.decide(sample(), ["app:checkpoint"], float(t)) for t in range(0, 30))


# --- low_memory ------------------------------------------------------------------------------

LOW = """\
[rule:low]
type = low_memory
below = 20%
rearm_above = 40%
escalate = {escalate}
step_every = 5s
min_reclaim = 1M
leak_after = 3
backoff_max = {backoff_max}
"""


def low_policy(escalate="collect0, collect1, collect2, callbacks, event", backoff_max="10m", start=0.0,
               extra=""):
    return Policy(rules(LOW.format(escalate=escalate, backoff_max=backoff_max) + extra), start=start,
                  budget=1.0)


def rss_with_headroom(room_kb):
    return CEILING - room_kb


def test_low_memory_stays_quiet_while_headroom_is_above_below():
    policy = low_policy()
    assert all(policy.decide(sample(rss_kb=rss_with_headroom(25000)), [], float(t)) == []
               for t in range(30))


def test_low_memory_announces_the_episode_then_collects():
    policy = low_policy()
    assert policy.decide(sample(rss_kb=rss_with_headroom(25000)), [], 0.0) == []
    decisions = policy.decide(sample(rss_kb=rss_with_headroom(15000)), [], 1.0)
    assert [d.action for d in decisions] == ["event", "collect"]
    assert decisions[0].event == "low_memory"
    assert dict(decisions[0].fields)["headroom_kb"] == 15000
    assert (decisions[1].rule, decisions[1].generation) == ("low", 0)   # the first step: collect0


def test_headroom_shrinking_fast_enough_to_cross_below_by_the_next_sample_collects_now():
    # 8M a tick with 8M to spare is killed between two samples if the rule waits
    # for headroom to cross `below`: it acts on where headroom will be.
    policy = low_policy()
    assert policy.decide(sample(rss_kb=rss_with_headroom(45000)), [], 0.0) == []
    decisions = policy.decide(sample(rss_kb=rss_with_headroom(30000)), [], 1.0)
    assert [d.action for d in decisions] == ["event", "collect"]
    fields = dict(decisions[0].fields)
    assert (fields["headroom_kb"], fields["expected_kb"], fields["below_kb"]) == (30000, 15000, 20000)


def test_slow_growth_above_below_is_left_alone():
    policy = low_policy()
    for t, room in enumerate((24000, 23000, 22000, 21000)):
        assert policy.decide(sample(rss_kb=rss_with_headroom(room)), [], float(t)) == []


def test_ahead_2_looks_two_samples_ahead_and_ahead_0_waits_for_below():
    def first_low(ahead):
        policy = low_policy(extra="ahead = %d\n" % ahead)
        for t, room in enumerate((60000, 48000, 36000, 24000, 12000)):
            if events(policy.decide(sample(rss_kb=rss_with_headroom(room)), [], float(t))):
                return room
    assert (first_low(0), first_low(1), first_low(2)) == (12000, 24000, 36000)


def fast_grower(reclaimed_kb):
    """Headroom falling 10M a tick between collections; returns the times it collects."""
    policy = low_policy()
    times = []
    for t, room in enumerate((30000, 15000, 19000, 9000, 25000)):
        for d in collects(policy.decide(sample(rss_kb=rss_with_headroom(room)), [], float(t))):
            times.append(t)
            policy.record(d, reclaimed_kb=reclaimed_kb, duration_s=0.001, now=float(t))
    return times


def test_while_collections_work_the_rule_does_not_wait_step_every_to_run_out_of_room():
    # At t=3 headroom (9M) would be gone by the next sample: step_every (5s) must not
    # hold the next collection back when the last one gave memory back.
    assert fast_grower(reclaimed_kb=10000) == [1, 3]


def test_a_leak_keeps_its_pace_even_when_room_runs_out():
    assert fast_grower(reclaimed_kb=0) == [1]


def test_device_free_memory_counts_when_it_is_smaller_than_the_ceiling_room():
    policy = low_policy()
    decisions = policy.decide(sample(rss_kb=rss_with_headroom(60000), mem_free_kb=10000), [], 0.0)
    assert events(decisions) == ["low_memory"]
    assert dict(decisions[0].fields)["headroom_kb"] == 10000


def test_low_memory_walks_its_steps_while_collections_reclaim_too_little():
    policy = low_policy()
    low = sample(rss_kb=rss_with_headroom(10000))
    walk = []
    for t in range(0, 25):
        for d in policy.decide(low, [], float(t)):
            if d.action == "collect":
                walk.append((t, "collect%d" % d.generation))
                policy.record(d, reclaimed_kb=100, duration_s=0.01, now=float(t))
            elif d.action == "callbacks":
                walk.append((t, "callbacks"))
            elif d.event != "low_memory":
                walk.append((t, d.event))
    assert walk == [(0, "collect0"), (5, "collect1"), (10, "collect2"), (15, "callbacks"), (20, "alert")]


def test_a_collection_that_reclaims_enough_sends_the_walk_back_to_its_first_step():
    policy = low_policy()
    low = sample(rss_kb=rss_with_headroom(10000))
    generations = []
    reclaimed = {0: 100, 5: 2048}   # collect0 does little, collect1 gets 2M back
    for t in range(0, 15):
        for d in collects(policy.decide(low, [], float(t))):
            generations.append((t, d.generation))
            policy.record(d, reclaimed_kb=reclaimed.get(t, 100), duration_s=0.01, now=float(t))
    assert generations == [(0, 0), (5, 1), (10, 0)]


def drive_leak(policy, until, room_kb=10000):
    """Every collection reclaims nothing; returns collect times and follow-up events."""
    low = sample(rss_kb=rss_with_headroom(room_kb))
    times, followups = [], []
    for t in range(0, until):
        for d in collects(policy.decide(low, [], float(t))):
            times.append(t)
            followups += policy.record(d, reclaimed_kb=0, duration_s=0.01, now=float(t))
    return times, followups


def test_collections_that_give_back_no_rss_are_not_called_a_leak():
    # A collection can succeed and give back no RSS (pymalloc keeps arenas that still
    # hold a live object); the leak verdict comes from the floor (tests/test_leak.py).
    policy = low_policy(escalate="collect2")
    times, followups = drive_leak(policy, until=600)
    assert len(times) > 3
    assert followups == []


def test_collections_back_off_during_a_leak_up_to_backoff_max():
    times, _ = drive_leak(low_policy(escalate="collect2", backoff_max="1m"), until=600)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(gaps) >= 5
    assert gaps == sorted(gaps)          # never closer together...
    assert gaps[-1] > gaps[0]            # ...and further apart as the leak goes on
    assert max(gaps) == 60               # but not beyond backoff_max


def test_an_effective_collection_ends_the_back_off():
    policy = low_policy(escalate="collect2", backoff_max="1m")
    times, _ = drive_leak(policy, until=200)
    assert times[-1] - times[-2] == 60
    low = sample(rss_kb=rss_with_headroom(10000))
    t = times[-1] + 60
    [first] = collects(policy.decide(low, [], float(t)))
    policy.record(first, reclaimed_kb=4096, duration_s=0.01, now=float(t))
    later = [u for u in range(t + 1, t + 30) if collects(policy.decide(low, [], float(u)))]
    assert later and later[0] - t == 5   # back to step_every


def test_recovered_when_headroom_rises_above_rearm_above_and_a_new_episode_can_start():
    policy = low_policy()
    assert events(policy.decide(sample(rss_kb=rss_with_headroom(10000)), [], 0.0)) == ["low_memory"]
    # between below (20%) and rearm_above (40%): still the same episode, nothing to do
    assert policy.decide(sample(rss_kb=rss_with_headroom(30000)), [], 10.0) == []
    decisions = policy.decide(sample(rss_kb=rss_with_headroom(45000)), [], 20.0)
    assert events(decisions) == ["recovered"]
    assert dict(decisions[0].fields)["episode_s"] == 20.0
    assert not collects(decisions)
    assert policy.decide(sample(rss_kb=rss_with_headroom(45000)), [], 30.0) == []
    again = policy.decide(sample(rss_kb=rss_with_headroom(10000)), [], 40.0)
    assert events(again) == ["low_memory"]
    assert collects(again)


# --- event rules ------------------------------------------------------------------------------


def test_an_app_event_fires_its_rule_with_cooldown():
    policy = Policy(rules("[rule:ckpt]\ntype = event\non = app:checkpoint\ngeneration = 1\n"
                          "cooldown = 10s\n"), start=0.0)
    fired = [t for t in range(0, 30)
             if collects(policy.decide(sample(), ["app:checkpoint"], float(t)))]
    assert fired == [0, 10, 20]
    assert not collects(policy.decide(sample(), ["app:other"], 100.0))
    [d] = collects(policy.decide(sample(), ["app:checkpoint"], 101.0))
    assert (d.rule, d.generation, dict(d.fields)["trigger"]) == ("ckpt", 1, "app:checkpoint")


def test_app_star_fires_on_any_application_event_but_not_on_others():
    policy = Policy(rules("[rule:any]\ntype = event\non = app:*\n"), start=0.0)
    assert collects(policy.decide(sample(), ["app:client_disconnected"], 1.0))
    assert collects(policy.decide(sample(), ["app:x"], 2.0))
    assert not collects(policy.decide(sample(), ["link_down"], 3.0))
    assert not collects(policy.decide(sample(), [], 4.0))


def test_app_star_respects_its_cooldown_across_different_events():
    policy = Policy(rules("[rule:any]\ntype = event\non = app:*\ncooldown = 1m\n"), start=0.0)
    names = ["app:a", "app:b", "app:c"]
    fired = [t for t in range(0, 180, 5) if collects(policy.decide(sample(), [names[t % 3]], float(t)))]
    assert fired == [0, 60, 120]


def test_link_events_fire_the_rules_that_list_them():
    policy = Policy(rules("[rule:link]\ntype = event\non = link_down\n"), start=0.0)
    [d] = collects(policy.decide(sample(), ["link_down"], 1.0))
    assert dict(d.fields)["trigger"] == "link_down"
    assert not collects(policy.decide(sample(), ["link_up"], 2.0))


IDLE = "[rule:idle]\ntype = event\non = idle\nidle_cpu = 5%\nidle_for = 10s\n"


def test_an_event_with_the_idle_edge_is_named_and_a_held_back_collection_spends_no_cooldown():
    policy = Policy(rules("[rule:idle]\ntype = event\non = idle, app:checkpoint\nidle_cpu = 5%\n"
                          "idle_for = 5s\ncooldown = 10s\n"), start=0.0)
    for t in range(0, 5):
        assert not collects(policy.decide(sample(cpu_s=0.0), [], float(t)))
    # Idle from the start: the edge comes at 5 s, with the application's event.
    [d] = collects(policy.decide(sample(cpu_s=0.0), ["app:checkpoint"], 5.0))
    assert dict(d.fields)["trigger"] == "app:checkpoint"    # what the application did, not idle
    # The tuner held it back (docs/tuner.md, "Quiet heaps"): nothing ran, so the
    # application's next event, within the cooldown, still collects.
    policy.dropped([d], 6.0)
    [again] = collects(policy.decide(sample(cpu_s=0.0), ["app:checkpoint"], 8.0))
    assert dict(again.fields)["trigger"] == "app:checkpoint"
    assert not collects(policy.decide(sample(cpu_s=0.0), ["app:checkpoint"], 9.0))   # cooldown


def test_idle_fires_once_on_entering_idle_and_again_only_after_being_busy():
    policy = Policy(rules(IDLE), start=0.0)
    busy = set(range(0, 30)) | set(range(60, 70))
    cpu, fired = 0.0, []
    for t in range(0, 150):
        cpu += 0.5 if t in busy else 0.01    # 50% of a CPU, then 1%
        if collects(policy.decide(sample(cpu_s=cpu), [], float(t))):
            fired.append(t)
    assert len(fired) == 2
    first, second = fired
    # busy until 29, then quiet: a whole idle_for (10 s) of quiet is seen at 39
    assert 39 <= first < 60
    assert 79 <= second < 150


def test_a_busy_process_is_never_idle():
    policy = Policy(rules(IDLE), start=0.0)
    assert not any(collects(policy.decide(sample(cpu_s=0.2 * t), [], float(t))) for t in range(120))


def test_large_free_fires_on_a_drop_in_rss():
    policy = Policy(rules("[rule:free]\ntype = event\non = large_free\nlarge_free = 4M\n"), start=0.0)
    rss = [50000, 47000, 60000, 55000, 50000]   # drops: 3M (too small), grows, 5M, 5M
    fired = [t for t, kb in enumerate(rss) if collects(policy.decide(sample(rss_kb=kb), [], float(t)))]
    assert fired == [3, 4]
    [d] = collects(policy.decide(sample(rss_kb=40000), [], 5.0))
    assert dict(d.fields)["trigger"] == "large_free"


# --- derived events, freeze, signal --------------------------------------------------------------


def test_the_application_switching_gc_off_and_on_is_reported():
    policy = Policy(rules("[rule:tick]\ntype = periodic\nevery = 1h\n"), start=0.0)
    states = [True, True, False, False, True]
    seen = [events(policy.decide(sample(gc_enabled=on), [], float(t))) for t, on in enumerate(states)]
    assert seen == [[], [], ["gc_disabled"], [], ["gc_enabled"]]


def test_a_collector_already_off_at_the_first_look_is_reported_once():
    # Whether the application switched it off just before or just after the agent's
    # first sample must not decide whether the operator hears of it.
    policy = Policy(rules("[rule:tick]\ntype = periodic\nevery = 1h\n"), start=0.0)
    assert events(policy.decide(sample(gc_enabled=False), [], 0.0)) == ["gc_disabled"]
    assert events(policy.decide(sample(gc_enabled=False), [], 1.0)) == []
    assert events(policy.decide(sample(gc_enabled=True), [], 2.0)) == ["gc_enabled"]


def test_freeze_after_start_gives_one_freeze_decision():
    policy = Policy(rules("[rule:tick]\ntype = periodic\nevery = 1h\n"), start=100.0, freeze_after=30.0)
    freezes = [t for t in range(100, 300)
               if any(d.action == "freeze" for d in policy.decide(sample(), [], float(t)))]
    assert freezes == [130]


def test_no_freeze_unless_asked():
    policy = Policy(rules("[rule:tick]\ntype = periodic\nevery = 1h\n"), start=0.0)
    assert not any(d.action == "freeze" for t in range(100) for d in policy.decide(sample(), [], float(t)))


def test_a_signal_gives_a_full_collection_when_no_rule_claims_it():
    policy = Policy(rules("[rule:tick]\ntype = periodic\nevery = 1h\n"), start=0.0)
    [d] = policy.decide(sample(), ["signal"], 5.0)
    assert (d.action, d.rule, d.generation) == ("collect", "signal", 2)
    assert policy.decide(sample(), [], 6.0) == []


def test_signal_always_collects_fully_and_a_rule_listing_it_fires_too():
    policy = Policy(rules("[rule:sig]\ntype = event\non = signal\ngeneration = 0\n"), start=0.0)
    got = [(d.rule, d.generation) for d in policy.decide(sample(), ["signal"], 5.0)]
    assert got == [("signal", 2), ("sig", 0)]


# --- the budget -------------------------------------------------------------------------------------


def budget_policy():
    # 10% of a 10 s window: collections may take 1 s of every 10 s
    return Policy(rules("[rule:tick]\ntype = periodic\nevery = 1s\n"), start=0.0,
                  budget=0.1, budget_window=10.0)


def test_the_budget_suppresses_rule_collections_once_spent():
    policy = budget_policy()
    ran = []
    for t in range(1, 8):
        for d in collects(policy.decide(sample(), [], float(t))):
            ran.append(t)
            policy.record(d, reclaimed_kb=0, duration_s=0.6, now=float(t))
    assert ran == [1, 2]                     # 1.2 s spent: over the 1 s allowed
    assert policy.state()["budget_skipped"] == 5


def test_cheap_collections_stay_within_the_budget():
    policy = budget_policy()
    ran = 0
    for t in range(1, 60):
        for d in collects(policy.decide(sample(), [], float(t))):
            ran += 1
            policy.record(d, reclaimed_kb=0, duration_s=0.05, now=float(t))
    assert ran == 59
    assert policy.state()["budget_skipped"] == 0


def test_collections_resume_once_the_window_has_moved_on():
    policy = budget_policy()
    ran = []
    for t in range(1, 40):
        for d in collects(policy.decide(sample(), [], float(t))):
            ran.append(t)
            policy.record(d, reclaimed_kb=0, duration_s=0.6, now=float(t))
    assert ran[:2] == [1, 2]
    assert any(t > 12 for t in ran)
    # never more than the budget in any window, give or take the one collection that crossed it
    for start in range(0, 40):
        assert sum(0.6 for t in ran if start <= t < start + 10) <= 1.0 + 0.6


def test_the_budget_is_announced_once_per_window():
    policy = budget_policy()
    said = []
    for t in range(1, 60):
        decisions = policy.decide(sample(), [], float(t))
        said += [t for e in events(decisions) if e == "budget"]
        for d in collects(decisions):
            policy.record(d, reclaimed_kb=0, duration_s=5.0, now=float(t))   # each one blows the budget
    assert said
    assert said[0] == 2
    for a, b in zip(said, said[1:]):
        assert b - a >= 10
    for start in range(0, 60, 10):
        assert len([t for t in said if start <= t < start + 10]) <= 1


def test_the_budget_never_suppresses_a_signal():
    policy = budget_policy()
    for t in range(1, 4):
        for d in collects(policy.decide(sample(), [], float(t))):
            policy.record(d, reclaimed_kb=0, duration_s=5.0, now=float(t))
    for t in range(4, 10):
        decisions = policy.decide(sample(), ["signal"], float(t))
        assert [(d.rule, d.generation) for d in collects(decisions)] == [("signal", 2)]
        policy.record(collects(decisions)[0], reclaimed_kb=0, duration_s=5.0, now=float(t))


def test_the_budget_does_not_silence_low_memory_announcements():
    policy = Policy(rules(LOW.format(escalate="collect2", backoff_max="10m")
                          + "[rule:tick]\ntype = periodic\nevery = 1s\n"),
                    start=0.0, budget=0.1, budget_window=10.0)
    for t in range(1, 4):
        for d in collects(policy.decide(sample(), [], float(t))):
            policy.record(d, reclaimed_kb=0, duration_s=5.0, now=float(t))
    decisions = policy.decide(sample(rss_kb=rss_with_headroom(10000)), [], 4.0)
    assert "low_memory" in events(decisions)
    assert not collects(decisions)
