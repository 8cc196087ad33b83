"""Peers' gc policies, injected into an emulated device's Python for `gc-emulator compare`.

The device's sitecustomize (tools/emulator/onboard/) loads this file by path
when GC_EMULATOR_POLICY names a policy, before the workload runs:

- ``floor``: gc.disable() and nothing else: no collection pauses at all, memory
  unbounded. A latency reference, not a policy anyone should ship.
- ``freeze``: gc.freeze() once start-up is over (GC_EMULATOR_FREEZE_AFTER
  seconds, default 2), the recipe Instagram and others published; the
  automatic collector otherwise as it is.
- ``synapse``: the policy Synapse (the Matrix homeserver) runs, written here
  from its description: automatic collection off; every 100 ms, collect the
  oldest generation i whose count passed its threshold, if at least 1 / 10 /
  30 s passed since generation i was last collected.

Policies run on a daemon thread of their own, as Synapse's runs on its
reactor's timer: a collection there pauses the whole process all the same.
Standard library only, Python 3.6+.
"""

import gc
import os
import sys
import threading
import time

SYNAPSE_MIN_INTERVAL = (1.0, 10.0, 30.0)   # seconds between collections of generation 0, 1, 2
SYNAPSE_CHECK = 0.1


def synapse_pick(counts, thresholds, last, now):
    """The generation Synapse's check collects at `now`, or None (pure, for tests)."""
    for i in (2, 1, 0):
        if counts[i] > thresholds[i] and now - last[i] > SYNAPSE_MIN_INTERVAL[i]:
            return i
    return None


def _synapse() -> None:
    gc.disable()
    last = [time.monotonic()] * 3

    def loop() -> None:
        while True:
            time.sleep(SYNAPSE_CHECK)
            now = time.monotonic()
            generation = synapse_pick(gc.get_count(), gc.get_threshold(), last, now)
            if generation is not None:
                gc.collect(generation)
                # collecting generation i also collects the younger ones
                for j in range(generation + 1):
                    last[j] = now

    threading.Thread(target=loop, name="gc-policy-synapse", daemon=True).start()


def _freeze(after: float) -> None:
    def later() -> None:
        time.sleep(after)
        freeze = getattr(gc, "freeze", None)
        if freeze is not None:
            freeze()

    threading.Thread(target=later, name="gc-policy-freeze", daemon=True).start()


def install(name: str) -> None:
    """Install policy `name` (floor, freeze, synapse) in this process."""
    if name == "floor":
        gc.disable()
    elif name == "freeze":
        _freeze(float(os.environ.get("GC_EMULATOR_FREEZE_AFTER", "2")))
    elif name == "synapse":
        _synapse()
    else:
        sys.stderr.write("gc-emulator: unknown gc policy %r\n" % name)


def install_from_env() -> None:
    name = os.environ.get("GC_EMULATOR_POLICY", "")
    if name:
        install(name)
