# The tuner at the edges: readings from the probe, its changes applied to the collector.
#
# agent/tuner.py decides; this module is the only place `[gc] tune = auto` touches
# gc: it builds each tick's `Reading` (per-generation pauses from the probe's
# gc.callbacks hook, the interpreter's thresholds) and carries out `thresholds`
# and `freeze` changes. Collections go through the agent's Actor like every other
# collection, so they are measured and reported the same way.

import gc

from .probes import gc_flavour
from .rules import headroom_kb, table
from .tuner import Reading, Tuner

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Dict, List, Optional, Sequence, Tuple  # noqa: F401 (type comments)

    from .probes import Probe, Sample  # noqa: F401 (type comments)
    from .profile import Profile  # noqa: F401 (type comments)
    from .rules import Decision  # noqa: F401 (type comments)
    from .tuner import Change  # noqa: F401 (type comments)


def can_freeze():  # type: () -> bool
    # gc.freeze() exists from Python 3.7 on.
    return hasattr(gc, "freeze")


class TunerDriver(object):
    # One Tuner, fed from the probe; `step()` each tick, `record()` after each collection.

    def __init__(self, profile, probe, start):  # type: (Profile, Probe, float) -> None
        self.probe = probe
        self.tuner = Tuner(start, pause_budget_ms=profile.gc.pause_budget * 1000.0,
                           memory_target=profile.gc.memory_target, flavour=gc_flavour(),
                           can_freeze=can_freeze(), tick=profile.agent.tick)
        self.take_rules(profile)
        self.probe.pauses.take_generations()   # start counting from now

    def take_rules(self, profile):  # type: (Profile) -> None
        # What the tuner reads of the rules; again whenever `set` or `reload` changes them.
        #
        # Rules by what they do (agent.rules.table is the only switch on a rule's type):
        # a `below` makes a low-memory rule, an `every` a periodic one.
        enabled = [r for r in profile.rules if r.enabled]
        self._belows = [table.value(r, "below") for r in enabled
                        if table.value(r, "below") is not None]
        self.tuner.min_reclaim_kb = min([table.value(r, "min_reclaim") for r in enabled
                                         if table.value(r, "min_reclaim") is not None] or [256])
        self.tuner.rule_types = {r.name: "low_memory" if table.value(r, "below") is not None
                                 else "periodic" if table.value(r, "every") is not None
                                 else "other" for r in profile.rules}

    def step(self, sample, triggers, decisions, now):
        # type: (Sample, Sequence[str], Sequence[Decision], float) -> Tuple[List[Decision], List[Change]]
        # The rule decisions to keep and the tuner's changes for this tick.
        ceiling = sample.ceiling_kb or sample.mem_total_kb
        below = max([b.resolve(ceiling) for b in self._belows] or [0])
        pauses, counts, _ = self.probe.pauses.take_generations()
        reading = Reading(now, sample.rss_kb, ceiling, headroom_kb(sample), below, sample.cpu_s,
                          tuple(gc.get_threshold()), pauses, counts, "app:idle" in triggers,
                          sample.gc_pause_ms_total, sample.gc_count[0] if sample.gc_count else 0,
                          sample.gc_enabled)
        return self.tuner.decide(reading, decisions)

    def apply(self, change):  # type: (Change) -> Optional[Dict[str, Any]]
        # Carry out a thresholds or freeze change; the fields of its `tune` event.
        if change.what == "thresholds":
            before = list(gc.get_threshold())
            gc.set_threshold(*change.after)
            return {"what": "thresholds", "before": before, "after": list(gc.get_threshold()),
                    "why": change.why}
        if change.what == "freeze" and can_freeze():
            before = gc.get_freeze_count()   # novm: 3.7+, checked by can_freeze
            gc.freeze()                      # novm: 3.7+, checked by can_freeze
            return {"what": "freeze", "before": before,
                    "after": gc.get_freeze_count(), "why": change.why}   # novm: 3.7+
        return None

    def record(self, generation, reclaimed_kb, collected, rss_after_kb, now):
        # type: (int, int, int, int, float) -> None
        self.tuner.record(generation, reclaimed_kb, collected, rss_after_kb, now,
                          self.probe.ceiling.kb)

    def futile(self):  # type: () -> List[Decision]
        # The rule collections this tick's step judged futile (a live heap).
        return self.tuner.futile

    def state(self):  # type: () -> Dict[str, Any]
        return self.tuner.state()
