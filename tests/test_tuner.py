"""The tuner (agent/tuner.py) driven with a fake clock and synthetic series: no gc, no sleeping."""

from agent.probes import Sample
from agent.profile import loads
from agent.rules import Decision, Policy
from agent.tuner import HIGH_THRESHOLD2, QUIET_MAX, Reading, Tuner

MB = 1024
CEILING = 64 * MB
TICK = 0.25


class Device(object):
    """A synthetic process: RSS, CPU time and young collections advance as the test says."""

    def __init__(self, tuner: Tuner, rss_kb: int = 20 * MB, below_kb: int = 0,
                 thresholds=(700, 10, 10)) -> None:
        self.tuner = tuner
        self.now = 0.0
        self.cpu = 0.0
        self.rss = rss_kb
        self.below = below_kb
        self.thresholds = tuple(thresholds)
        self.log = []   # (now, busy, Change)

    def tick(self, busy: bool = True, grow_kb: int = 0, decisions=(), pause_ms=(0.2, 0.5, 0.0),
             hint: bool = False, young: int = 3):
        self.now += TICK
        self.cpu += TICK * (0.6 if busy else 0.01)
        self.rss += grow_kb
        reading = Reading(self.now, self.rss, CEILING, CEILING - self.rss, self.below, self.cpu,
                          self.thresholds, pause_ms, (young, 1 if young else 0, 0), hint)
        kept, changes = self.tuner.decide(reading, list(decisions))
        for change in changes:
            self.log.append((self.now, self.tuner.busy, change))
            if change.what == "thresholds":
                self.thresholds = tuple(change.after)
        return kept, changes

    def run(self, seconds: float, **kw):
        out = []
        for _ in range(round(seconds / TICK)):
            out.append(self.tick(**kw))
        return out

    def full_collections(self, busy=None):
        return [c for t, b, c in self.log
                if c.what == "collect" and c.generation == 2 and (busy is None or b == busy)]


def tuner(**kw) -> Tuner:
    kw.setdefault("tick", TICK)
    kw.setdefault("rule_types", {"low-memory": "low_memory", "periodic": "periodic", "idle": "event"})
    kw.setdefault("min_reclaim_kb", 1024)
    return Tuner(0.0, **kw)


def test_start_turns_automatic_full_collections_off_and_says_why():
    dev = Device(tuner())
    dev.tick()
    change = dev.log[0][2]
    assert change.what == "thresholds"
    assert change.before == [700, 10, 10] and change.after == [700, 10, HIGH_THRESHOLD2]
    assert "budget" in change.why and "idle" in change.why


def test_incremental_collector_keeps_threshold2_and_free_threaded_only_threshold0():
    inc = Device(tuner(flavour="incremental"), thresholds=(2000, 10, 0))
    inc.run(2)
    assert inc.thresholds[1:] == (10, 0)        # only threshold0 is the tuner's
    free = Device(tuner(flavour="free-threaded"), thresholds=(2000, 10, 10))
    free.run(2)
    assert free.thresholds[1:] == (10, 10)


def test_freeze_waits_for_start_up_growth_to_settle_then_for_idle():
    dev = Device(tuner())
    dev.run(6, grow_kb=2 * MB // 4)             # start-up: 2 MB a second for 6 s
    dev.run(4)                                  # then flat, still busy
    assert not [c for _, _, c in dev.log if c.what == "freeze"]
    assert dev.tuner.state()["freeze"] == "ready"
    dev.run(2, busy=False, young=0)             # idle: a full collection, then the freeze
    done = [(t, c) for t, _, c in dev.log if c.what in ("collect", "freeze")]
    assert [c.what for _, c in done] == ["collect", "freeze"] and done[0][0] == done[1][0] > 10
    assert "settled" in done[1][1].why
    dev.run(20)
    assert len([c for _, _, c in dev.log if c.what == "freeze"]) == 1
    assert dev.tuner.state()["freeze"] == "done"


def test_freeze_comes_anyway_when_no_idle_phase_does():
    dev = Device(tuner())
    dev.run(40)                                 # busy all along, RSS flat
    freezes = [c for _, _, c in dev.log if c.what == "freeze"]
    assert len(freezes) == 1
    assert not dev.full_collections()           # a young collection before it, not a full one


def test_no_freeze_where_the_interpreter_has_none():
    dev = Device(tuner(can_freeze=False))
    dev.run(20)
    assert not [c for _, _, c in dev.log if c.what == "freeze"]
    assert dev.tuner.state()["freeze"] == "unavailable"


def test_full_collections_at_idle_once_per_idle_phase_never_in_busy():
    dev = Device(tuner())
    for _ in range(4):
        dev.run(3, busy=True)
        dev.run(3, busy=False, young=0)
    assert dev.full_collections(busy=True) == []
    idle = dev.full_collections(busy=False)
    assert 3 <= len(idle) <= 4               # one per idle phase (none before the freeze settle)


def test_the_tuners_own_idle_collection_does_not_make_the_phase_busy():
    dev = Device(tuner())
    dev.run(3, busy=True)
    dev.tick(busy=False, hint=True, young=0)     # collects at once
    dev.now += TICK
    dev.cpu += 0.08                              # the collection's own 80 ms of CPU...
    dev.tuner.decide(Reading(dev.now, dev.rss, CEILING, CEILING - dev.rss, 0, dev.cpu, dev.thresholds,
                             gc_ms=80.0), [])   # ...reported as collection time
    assert not dev.tuner.busy
    dev.run(2, busy=False, young=0)
    assert len(dev.full_collections()) == 1


def test_a_long_idle_phase_with_growing_memory_collects_again():
    dev = Device(tuner())
    dev.run(3, busy=True)
    dev.run(2, busy=False)                      # the idle collection
    dev.tuner.record(2, 0, 5000, dev.rss, dev.now, CEILING)
    assert len(dev.full_collections()) == 1
    dev.run(1, busy=False)                      # flat: nothing more
    assert len(dev.full_collections()) == 1
    dev.run(2, busy=False, grow_kb=MB)          # +8M while idle
    again = dev.full_collections()[1:]
    assert again and "grew" in again[0].why


def test_a_rules_idle_collection_counts_as_the_idle_phases_and_growth_still_collects():
    # An idle rule's full collection came first: the tuner does not run one more, and
    # a leak growing through the idle phase still gets its sawtooth (docs/leaks.md).
    # (An application idle from its start that promoted nothing, like the emulator's leak.)
    dev = Device(tuner())
    dev.run(2, busy=False, young=0)
    rule = Decision("collect", "idle", 2, fields=(("trigger", "idle"),))
    kept, _ = dev.tick(busy=False, young=0, decisions=[rule])
    assert kept == [rule] and dev.full_collections() == []
    dev.tuner.record(2, 0, 5000, dev.rss, dev.now, CEILING)
    dev.run(2, busy=False)
    assert dev.full_collections() == []
    dev.run(2, busy=False, young=0, grow_kb=MB)   # +8M while idle
    assert dev.full_collections() and "grew" in dev.full_collections()[0].why


def test_the_idle_hint_collects_at_once():
    dev = Device(tuner())
    dev.run(3, busy=True)
    _, changes = dev.tick(busy=False, hint=True, young=0)
    assert [c.why for c in changes if c.what == "collect"] == ["idle"]


def test_memory_target_collects_even_when_busy_and_again_after_growth():
    dev = Device(tuner(memory_target=0.7), rss_kb=40 * MB)
    dev.run(2, busy=True)
    assert dev.full_collections() == []
    dev.tick(busy=True, grow_kb=8 * MB)         # to 48M: past 70% of 64M
    first = dev.full_collections(busy=True)
    assert len(first) == 1 and "memory_target" in first[0].why
    dev.tuner.record(2, 2 * MB, 50000, dev.rss - 2 * MB, dev.now, CEILING)
    dev.rss -= 2 * MB
    dev.run(2, busy=True)
    assert len(dev.full_collections(busy=True)) == 1   # not again until it has grown
    dev.tick(busy=True, grow_kb=4 * MB)
    assert len(dev.full_collections(busy=True)) >= 2


def test_a_live_heap_in_the_low_memory_zone_gets_no_more_full_collections_while_busy():
    """The issue's case: a healthy application whose live heap sits inside `below`."""
    dev = Device(tuner(), rss_kb=44 * MB, below_kb=26 * MB)
    low = Decision("collect", "low-memory", 2, fields=(("step", "collect2"),))
    kept_in_busy = []
    for _phase in range(4):
        for _ in range(12):                     # busy: the rule asks every tick
            kept, changes = dev.tick(busy=True, decisions=[low])
            for d in kept:
                kept_in_busy.append(d)
                dev.tuner.record(2, 0, 40, dev.rss, dev.now, CEILING)   # reclaims nothing
            for c in changes:
                if c.what == "collect" and c.generation == 2:
                    kept_in_busy.append(c)
                    dev.tuner.record(2, 0, 40, dev.rss, dev.now, CEILING)
        for _ in range(12):
            kept, changes = dev.tick(busy=False, young=0, decisions=[low])
            if kept:
                dev.tuner.record(2, 0, 40, dev.rss, dev.now, CEILING)
    assert len(kept_in_busy) == 1               # the first one, which found the heap live
    assert dev.tuner.state()["deferred"] > 10
    assert dev.tuner.state()["live_heap_kb"] == 44 * MB
    assert dev.thresholds[2] == HIGH_THRESHOLD2  # automatic full collections stay off too


LOW_MEMORY = ("[rule:low-memory]\ntype = low_memory\nbelow = 40%\nrearm_above = 55%\n"
              "escalate = collect2, collect2, callbacks, event\nstep_every = 250ms\n"
              "min_reclaim = 1M\nbackoff_max = 30s\n")   # device_profiles/emulator.ini's


def test_a_live_heap_gets_one_full_collection_per_idle_phase_and_the_rule_walk_goes_on():
    """A healthy heap inside `below`, idle phases of 3 s: the low-memory rule's walk keeps
    asking for full collections in them; one that starts late in an idle phase runs into
    the next busy one. The tuner runs one at each idle phase's start; the rule's, on a
    heap found live with RSS where it was, are futile: skipped, and the rule moves on to
    the application's callbacks as if they had run and given nothing back."""
    dev = Device(tuner(), rss_kb=44 * MB, below_kb=26 * MB)
    policy = Policy(loads("[device]\nid = t\n" + LOW_MEMORY).rules, start=0.0)
    ran, callbacks = [], []      # (now, busy) of each full collection; times of callbacks
    for phase in range(8):
        busy = phase % 2 == 0
        for _ in range(12):
            now = dev.now + TICK
            sample = Sample(ts=now, mono=now, mem_free_kb=200 * MB, mem_total_kb=256 * MB,
                            rss_kb=dev.rss, ceiling_kb=CEILING, cpu_s=dev.cpu, gc_enabled=True,
                            gc_count=(0, 0, 0), gc_collections=(0, 0, 0), gc_collected=0,
                            gc_uncollectable=0, gc_pause_ms_total=0.0, gc_pause_ms_max=0.0)
            asked = policy.decide(sample, [], now)
            kept, changes = dev.tick(busy=busy, young=3 if busy else 0, decisions=asked)
            policy.dropped([d for d in asked if d not in kept], now, dev.tuner.futile)
            full = [d for d in kept if d.action == "collect" and d.generation == 2]
            full += [c for c in changes if c.what == "collect" and c.generation == 2]
            callbacks += [now for d in kept if d.action == "callbacks"]
            for d in full:           # each gives nothing back: the heap is live
                ran.append((now, busy))
                dev.tuner.record(2, 0, 40, dev.rss, now, CEILING)
                if isinstance(d, Decision):
                    policy.record(d, 0, 0.03, now)
    assert [b for _, b in ran].count(True) == 1       # the first, which found the heap live
    assert len(ran) <= 1 + 4                          # then one per idle phase at most
    assert callbacks                                  # the escalation still reaches the application
    assert dev.tuner.state()["skipped"] >= 2


def test_a_live_heap_is_collected_again_once_rss_grows_past_it_or_room_runs_out():
    dev = Device(tuner(), rss_kb=44 * MB, below_kb=26 * MB)
    low = Decision("collect", "low-memory", 2, fields=(("step", "collect2"),))
    dev.tick(busy=False, young=0)
    dev.tuner.record(2, 0, 40, dev.rss, dev.now, CEILING)     # found live at 44M
    kept, _ = dev.tick(busy=False, young=0, decisions=[low])
    assert kept == [] and dev.tuner.futile == [low]
    dev.tick(busy=False, young=0, grow_kb=4 * MB)              # past the live step (1/20)
    kept, _ = dev.tick(busy=False, young=0, decisions=[low])
    assert kept == [low] and dev.tuner.futile == []
    dev.tuner.record(2, 0, 40, dev.rss, dev.now, CEILING)     # live at 48M too
    dev.below = 30 * MB
    kept, _ = dev.tick(busy=False, young=0, decisions=[low])
    assert kept == []                                          # 16M left, half of below is 15M
    dev.tick(busy=False, young=0, grow_kb=2 * MB)              # within the live step, 14M left
    kept, _ = dev.tick(busy=False, young=0, decisions=[low])
    assert kept == [low]                                       # memory wins


def test_a_live_verdict_holds_only_while_nothing_new_reached_the_old_generation_and_rss_stays():
    dev = Device(tuner(), rss_kb=44 * MB, below_kb=26 * MB)
    low = Decision("collect", "low-memory", 2, fields=(("step", "collect2"),))
    periodic = Decision("collect", "periodic", 2)
    dev.tick(busy=False, young=0)
    dev.tuner.record(2, 0, 40, dev.rss, dev.now, CEILING)     # found live at 44M
    kept, _ = dev.tick(busy=False, young=0, decisions=[low, periodic])
    assert kept == [] and dev.tuner.futile == [low, periodic]  # a timer's would give nothing either
    # Middle-generation collections promoted objects since: they may be garbage now.
    kept, _ = dev.tick(busy=False, young=3, decisions=[low])
    assert kept == [low]
    dev.tuner.record(2, 0, 40, dev.rss, dev.now, CEILING)
    # Memory freed without a full collection (a batch let go): the verdict is stale.
    dev.tick(busy=False, young=0, grow_kb=-8 * MB)
    assert dev.tuner.state()["live_heap_kb"] is None
    kept, _ = dev.tick(busy=False, young=0, grow_kb=6 * MB, decisions=[low])
    assert kept == [low]


def test_memory_wins_when_the_room_is_really_running_out():
    dev = Device(tuner(), rss_kb=50 * MB, below_kb=26 * MB)
    low = Decision("collect", "low-memory", 2)
    dev.tick(busy=True)
    dev.tuner.record(2, 0, 10, dev.rss, dev.now, CEILING)
    kept, _ = dev.tick(busy=True, decisions=[low])
    assert kept == []
    dev.run(1, busy=True, grow_kb=MB)          # 54M: 10M left, under half of below
    kept, _ = dev.tick(busy=True, decisions=[low])
    assert kept == [low]


def test_headroom_near_below_brings_thresholds_down():
    dev = Device(tuner(), rss_kb=20 * MB, below_kb=16 * MB)
    dev.run(8, pause_ms=(0.1, 0.2, 0.0))        # calm young pauses: threshold0 rises
    raised = dev.thresholds[0]
    assert raised > 700 and dev.thresholds[1:] == (10, HIGH_THRESHOLD2)
    dev.run(6, grow_kb=MB)                      # to 44M: headroom 20M < below + 10%
    assert dev.thresholds == (700, 10, HIGH_THRESHOLD2)
    change = [c for _, _, c in dev.log if c.what == "thresholds"][-1]
    assert "below" in change.why and change.before[0] >= raised
    dev.run(2, grow_kb=2 * MB)                  # to 52M: inside the low-memory zone
    assert dev.thresholds == (350, 10, HIGH_THRESHOLD2)


def test_young_pauses_over_budget_lower_threshold0_and_calm_raises_it():
    dev = Device(tuner(pause_budget_ms=2.0))
    dev.run(1)
    dev.tick(pause_ms=(3.5, 1.0, 0.0))
    dev.tick(pause_ms=(0.2, 0.3, 0.0))         # one long pause is noise, not a trend
    assert dev.thresholds[0] == 700
    dev.run(3, pause_ms=(3.5, 1.0, 0.0))
    lowered = dev.thresholds[0]
    assert lowered < 700
    dev.run(30, pause_ms=(0.2, 0.3, 0.0))
    assert dev.thresholds[0] > lowered and dev.thresholds[0] <= 4 * 700
    assert dev.thresholds[1] == 10             # the young pauses were the long ones: threshold1 stays


def test_young_pauses_are_kept_to_half_the_budget_down_to_half_the_interpreters_threshold():
    # A young pause delays every request queued behind it: under the 2 ms budget but
    # over half of it is still too long (docs/tuner.md, "The young generation").
    dev = Device(tuner(pause_budget_ms=2.0))
    dev.run(1)
    dev.run(3, pause_ms=(1.3, 0.45, 0.0))
    assert dev.thresholds[0] < 700 and dev.thresholds[1] == 10
    change = [c for _, _, c in dev.log if c.what == "thresholds"][-1]
    assert "over half the 2ms budget" in change.why
    dev.run(30, pause_ms=(1.3, 0.45, 0.0))     # never below half of 700: promotion costs RSS
    assert dev.thresholds[:2] == (350, 10)
    dev.run(30, pause_ms=(0.4, 0.45, 0.0))     # between a sixth and a half (a quarter): left alone
    assert dev.thresholds[:2] == (350, 10)


def promoting_every(thresholds) -> int:
    # Objects allocated between two middle collections: each promotes what is in flight.
    return thresholds[0] * (thresholds[1] + 2)


def test_long_middle_pauses_lower_threshold1_and_raise_threshold0_to_promote_no_more():
    # A middle collection takes ~threshold0 x threshold1 objects: threshold1 comes
    # down for it, and threshold0 up so that middle collections come no more often
    # than with (350, 10), the young-pause floor (docs/tuner.md, "The young generation").
    dev = Device(tuner(pause_budget_ms=2.0))
    dev.run(1)
    dev.run(0.5, pause_ms=(0.2, 1.3, 0.0))     # two ticks: not yet a trend
    assert dev.thresholds[:2] == (700, 10)
    dev.tick(pause_ms=(0.2, 1.3, 0.0))
    assert dev.thresholds[:2] == (700, 7)       # middle collections no more frequent yet
    change = [c for _, _, c in dev.log if c.what == "thresholds"][-1]
    assert "middle pauses 1.30ms over a quarter of the 2ms budget" in change.why
    assert change.before[:2] == [700, 10]
    seen = []
    for _ in range(40):
        dev.tick(pause_ms=(0.2, 1.3, 0.0))
        seen.append(dev.thresholds[:2])
        assert promoting_every(dev.thresholds) >= promoting_every((350, 10))
    assert seen[-1] == (1400, 1)                # threshold1's floor, threshold0 at 350 x 12 / 3
    assert (700, 4) in seen and (1050, 2) in seen
    dev.run(10, pause_ms=(1.3, 1.3, 0.0))       # young ones long too: no lower, RSS wins
    assert dev.thresholds[:2] == (1400, 1)


def test_middle_pauses_over_a_quarter_of_the_budget_lower_threshold1_not_threshold0():
    # The longest of a busy phase's middle pauses is ~3x the longest of a tick's
    # (docs/tuner.md, "The young generation"); threshold1 costs no RSS, threshold0 does.
    dev = Device(tuner(pause_budget_ms=2.0))
    dev.run(1)
    dev.run(12, pause_ms=(0.2, 0.7, 0.0))
    assert dev.thresholds[:2] == (1400, 1)
    dev.run(12, pause_ms=(0.2, 0.7, 0.0))       # at threshold1's floor: threshold0 stays
    assert dev.thresholds[:2] == (1400, 1)


def test_short_young_pauses_after_middle_ones_came_down_let_threshold0_rise_not_threshold1():
    dev = Device(tuner(pause_budget_ms=2.0))
    dev.run(1)
    dev.run(12, pause_ms=(0.2, 1.3, 0.0))
    assert dev.thresholds[:2] == (1400, 1)
    dev.run(30, pause_ms=(0.2, 0.3, 0.0))       # calm: threshold0 up, promoting less
    assert dev.thresholds[0] > 1400 and dev.thresholds[1] == 1
    assert dev.thresholds[0] <= 4 * 700
    dev.run(30, pause_ms=(0.4, 1.3, 0.0))       # the middle ones long again: back down
    assert dev.thresholds[:2] == (1400, 1)


def test_memory_first_puts_threshold1_back_to_the_interpreters():
    # Lower, threshold1 promotes more: near `below`, latency gives way.
    dev = Device(tuner(pause_budget_ms=2.0), rss_kb=20 * MB, below_kb=16 * MB)
    dev.run(1)
    dev.run(12, pause_ms=(0.2, 1.3, 0.0))
    assert dev.thresholds[:2] == (1400, 1)
    dev.run(6, grow_kb=MB, pause_ms=(0.2, 1.3, 0.0))      # to 44M: headroom 20M < below + 10%
    assert dev.thresholds == (700, 10, HIGH_THRESHOLD2)
    dev.run(2, grow_kb=2 * MB, pause_ms=(0.2, 1.3, 0.0))  # to 52M: inside the low-memory zone
    assert dev.thresholds == (350, 10, HIGH_THRESHOLD2)
    dev.rss = 20 * MB                                      # room again: the latency thresholds
    dev.tick(pause_ms=(0.2, 0.6, 0.0))
    assert dev.thresholds == (1400, 1, HIGH_THRESHOLD2)


def test_threshold1_is_left_alone_where_it_is_not_the_middle_generations():
    dev = Device(tuner(pause_budget_ms=2.0, flavour="incremental"), thresholds=(2000, 10, 0))
    dev.run(1)
    dev.run(12, pause_ms=(0.2, 1.3, 0.0))
    assert dev.thresholds == (1000, 10, 0)      # threshold0 down to half, the rest untouched


def test_periodic_collections_in_busy_wait_for_idle():
    dev = Device(tuner())
    periodic = Decision("collect", "periodic", 2)
    dev.run(3)
    kept, _ = dev.tick(busy=True, decisions=[periodic])
    assert kept == []
    dev.run(2, busy=False, young=0)
    idle = dev.full_collections(busy=False)
    assert idle and "deferred" in idle[0].why


def test_requested_collections_are_never_held_back():
    dev = Device(tuner(), rss_kb=50 * MB, below_kb=26 * MB)
    dev.tick()
    dev.tuner.record(2, 0, 10, dev.rss, dev.now, CEILING)
    signal = Decision("collect", "signal", 2)
    kept, _ = dev.tick(busy=True, decisions=[signal])
    assert kept == [signal]


def test_state_for_status():
    dev = Device(tuner())
    dev.run(2)
    state = dev.tuner.state()
    assert state["phase"] == "busy" and state["level"] == "relaxed"
    assert state["thresholds"][1:] == [10, HIGH_THRESHOLD2]
    assert state["pause_budget_ms"] == 2.0 and state["memory_target"] == 0.7


def test_past_the_target_a_live_heap_waits_for_idle_unless_room_runs_out():
    dev = Device(tuner(memory_target=0.7), rss_kb=48 * MB)
    dev.run(1, busy=True)
    first = dev.full_collections(busy=True)
    assert len(first) == 1                      # past 70%: collected at once
    dev.tuner.record(2, 0, 90000, dev.rss, dev.now, CEILING)   # freed objects, no RSS back
    dev.run(2, busy=True, grow_kb=MB)           # +8M, still busy
    assert len(dev.full_collections(busy=True)) == 1
    dev.run(1, busy=False, young=0)
    assert dev.full_collections(busy=False)     # at idle instead
    dev.tuner.record(2, 0, 90000, dev.rss, dev.now, CEILING)
    dev.run(1, busy=True, grow_kb=2 * MB)       # 64M ceiling, 2M left: memory wins
    assert len(dev.full_collections(busy=True)) >= 2


def after_an_idle_collection() -> Device:
    """A busy phase, then idle: the tuner's full collection, which gave memory back."""
    dev = Device(tuner())
    dev.run(3, busy=True)
    dev.run(2, busy=False, young=0)
    dev.tuner.record(2, 2048, 5000, dev.rss, dev.now, CEILING)
    return dev


def test_timers_and_idle_get_no_full_collection_when_nothing_new_reached_the_old_generation():
    dev = after_an_idle_collection()
    periodic = Decision("collect", "periodic", 2)
    idle = Decision("collect", "idle", 2, fields=(("trigger", "idle"),))
    checkpoint = Decision("collect", "idle", 2, fields=(("trigger", "app:checkpoint"),))
    low = Decision("collect", "low-memory", 2)
    # An idle application: no young collection since, so nothing was promoted.
    # (An event rule names the application's event when it fires with the idle edge.)
    kept, _ = dev.tick(busy=False, young=0, decisions=[periodic, idle, checkpoint, low])
    assert kept == [checkpoint, low]     # the application's own event and memory still collect
    assert dev.tuner.state()["skipped"] == 2
    # Objects reached the old generation again (middle-generation collections): collect.
    dev.tick(busy=False, young=3)
    kept, _ = dev.tick(busy=False, young=0, decisions=[periodic, idle])
    assert kept == [periodic, idle]


def test_an_application_that_disabled_gc_is_never_quiet():
    dev = after_an_idle_collection()
    periodic = Decision("collect", "periodic", 2)
    # No young collections at all: young objects pile up past threshold0, or only a
    # few hundred of them, each holding megabytes (an exception's traceback and frame).
    for pending, enabled in ((50000, True), (400, False)):
        dev.now += TICK
        reading = Reading(dev.now, dev.rss, CEILING, CEILING - dev.rss, 0, dev.cpu, dev.thresholds,
                          collections=(0, 0, 0), pending=pending, gc_enabled=enabled)
        kept, _ = dev.tuner.decide(reading, [periodic])
        assert kept == [periodic], (pending, enabled)


def test_a_quiet_heap_is_collected_anyway_past_quiet_max_or_when_memory_is_not_relaxed():
    # Old objects that die without any allocation (a cleared cache of cycles) show
    # in no count: the rules' collections still run now and then, and at once when
    # memory is past the target.
    dev = after_an_idle_collection()
    periodic = Decision("collect", "periodic", 2)
    assert dev.tick(busy=False, young=0, decisions=[periodic])[0] == []
    dev.now += QUIET_MAX
    assert dev.tick(busy=False, young=0, decisions=[periodic])[0] == [periodic]
    dev.tuner.record(2, 0, 5000, dev.rss, dev.now, CEILING)
    dev.rss = int(CEILING * 0.75)                          # past memory_target, not growing
    assert dev.tick(busy=False, young=0, decisions=[periodic])[0] == [periodic]


def test_a_few_objects_holding_megabytes_are_not_a_quiet_heap():
    # The collector counts objects and ignores their size: ten cycles each holding a
    # 2 MB buffer are no young collection's worth of objects, but RSS shows them.
    dev = after_an_idle_collection()
    periodic = Decision("collect", "periodic", 2)
    assert dev.tick(busy=False, young=0, decisions=[periodic])[0] == []
    kept, _ = dev.tick(busy=False, young=0, grow_kb=20 * MB, decisions=[periodic])
    assert kept == [periodic]


def test_quiet_heaps_are_only_judged_on_generational_collectors():
    for flavour in ("incremental", "free-threaded"):
        dev = Device(tuner(flavour=flavour))
        dev.run(2, busy=False, young=0)
        dev.tuner.record(2, 2048, 5000, dev.rss, dev.now, CEILING)
        periodic = Decision("collect", "periodic", 2)
        kept, _ = dev.tick(busy=False, young=0, decisions=[periodic])
        assert kept == [periodic], flavour


def test_an_application_idle_from_the_start_is_frozen_once_settled_and_then_left_alone():
    # The idle phase's full collection comes at once, before start-up has settled;
    # the freeze follows as soon as RSS is flat (after a young collection), not ten
    # windows later, and what that young collection promoted is frozen with the
    # rest: the timers' full collections find nothing new.
    dev = Device(tuner())
    dev.tick(busy=False, young=3)                # start-up's own young collections
    dev.tick(busy=False, young=0)
    assert len(dev.full_collections()) == 1     # the idle phase's, before RSS settled
    dev.tuner.record(2, 0, 10, dev.rss, dev.now, CEILING)
    while dev.tuner.state()["freeze"] != "done" and dev.now < 10:
        dev.tick(busy=False, young=0)
    done = [(t, c) for t, _, c in dev.log if c.what in ("collect", "freeze")][1:]
    assert [(c.what, c.generation) for _, c in done] == [("collect", 1), ("freeze", 2)]
    assert done[0][0] < 4 and "idle" in done[0][1].why
    # The next reading counts the young collection that ran before the freeze.
    dev.now += TICK
    dev.tuner.decide(Reading(dev.now, dev.rss, CEILING, CEILING - dev.rss, 0, dev.cpu,
                             dev.thresholds, collections=(1, 1, 0)), [])
    kept, _ = dev.tick(busy=False, young=0, decisions=[Decision("collect", "periodic", 2)])
    assert kept == []
