"""Labelled synthetic fleets for the leak verdict (agent/leak.py): what leaks and what only looks like it.

Each device is a memory series sampled every `period` seconds (the DAL
profiles report every 5 minutes), made of:

- a floor: flat, or a leak (50 KB/h to 6 MB/h, possibly starting after hours
  of healthy running), or a healthy look-alike: a cache that warms up then
  stays flat (exponential approach), a daily load cycle, a one-time step,
  restarts (a new boot every 6-48 h, each warming up again);
- sawtooth garbage on top (grows between collections, gone after one), so
  samples land anywhere between the floor and the next collection's peak;
- noise (Gaussian, 50-500 KB) and outages (hours without samples).

Truth for a leak: the leak's start, its rate, and when its floor reaches the
ceiling (the process is then killed: the series ends there; with the agent
collecting, the floor, not the garbage peak, is what kills). Deterministic for
a seed.
"""

import math
import random
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

DAY = 86400.0
HOUR = 3600.0
CEILINGS_KB = (64 * 1024, 96 * 1024, 128 * 1024)
HEALTHY_KINDS = ("flat", "warmup", "daily", "step", "restarts")


class Device(NamedTuple):
    """One labelled device: `leak` True for the leaking ones (with their truth)."""

    name: str
    kind: str                       # leak, or one of HEALTHY_KINDS
    leak: bool
    ceiling_kb: int
    period: float
    duration: float
    seed: int
    rate_kb_per_hour: float = 0.0
    leak_start: float = 0.0
    ceiling_at: Optional[float] = None   # when the leak's floor reaches the ceiling (series ends)
    params: Tuple[Tuple[str, float], ...] = ()


def fleet(seed: int = 16, leaking: int = 60, healthy_each: int = 12, period: float = 300.0,
          duration: float = 30 * DAY) -> List[Device]:
    """`leaking` leaks (rates log-uniform over 50 KB/h..6 MB/h) and `healthy_each` of every look-alike."""
    rng = random.Random(seed)
    out = []
    for i in range(leaking):
        ceiling = rng.choice(CEILINGS_KB)
        base = ceiling * rng.uniform(0.25, 0.45)
        rate = math.exp(rng.uniform(math.log(50.0), math.log(6 * 1024.0)))
        start = rng.choice((0.0, rng.uniform(2 * HOUR, 2 * DAY)))
        warm = ceiling * rng.uniform(0.0, 0.1)
        ceiling_at = start + (ceiling - base - warm) * HOUR / rate
        params = (("base", base), ("warm", warm), ("tau", rng.uniform(0.3, 3) * HOUR),
                  ("noise", rng.uniform(50, 500)), ("garbage", ceiling * rng.uniform(0.02, 0.15)),
                  ("gc_every", rng.uniform(0.1, 1) * HOUR))
        out.append(Device("leak-%03d" % i, "leak", True, ceiling, period,
                          min(duration, ceiling_at), rng.randrange(1 << 30), rate, start,
                          ceiling_at if ceiling_at <= duration else None, params))
    n = 0
    for kind in HEALTHY_KINDS:
        for _ in range(healthy_each):
            ceiling = rng.choice(CEILINGS_KB)
            base = ceiling * rng.uniform(0.25, 0.45)
            params = [("base", base), ("noise", rng.uniform(50, 500)),
                      ("garbage", ceiling * rng.uniform(0.02, 0.15)),
                      ("gc_every", rng.uniform(0.1, 1) * HOUR)]
            if kind in ("warmup", "restarts"):
                params += [("warm", ceiling * rng.uniform(0.05, 0.2)),
                           ("tau", rng.uniform(0.3, 6) * HOUR)]
            if kind == "restarts":
                params.append(("boot_every", rng.uniform(6, 48) * HOUR))
            if kind == "daily":
                params += [("amplitude", ceiling * rng.uniform(0.05, 0.2)),
                           ("phase", rng.uniform(0, DAY))]
            if kind == "step":
                params += [("step", ceiling * rng.uniform(0.05, 0.3)),
                           ("step_at", rng.uniform(0.1, 0.9) * duration)]
            out.append(Device("%s-%03d" % (kind, n), kind, False, ceiling, period, duration,
                              rng.randrange(1 << 30), params=tuple(params)))
            n += 1
    return out


def true_floor(device: Device, t: float) -> float:
    """The floor the device's process would show right after a full collection at `t`."""
    p: Dict[str, float] = dict(device.params)
    base = p["base"]
    age = t
    if device.kind == "restarts":
        age = t % p["boot_every"]
    floor = base
    if "warm" in p:
        floor += p["warm"] * (1 - math.exp(-age / p["tau"]))
    if device.kind == "leak" and t > device.leak_start:
        floor += device.rate_kb_per_hour * (t - device.leak_start) / HOUR
    if device.kind == "daily":
        floor += p["amplitude"] * 0.5 * (1 - math.cos(2 * math.pi * (t + p["phase"]) / DAY))
    if device.kind == "step" and t >= p["step_at"]:
        floor += p["step"]
    return floor


def series(device: Device) -> Iterator[Tuple[float, str, int, bool]]:
    """(t, boot, rss_kb, collected) samples, with garbage, noise and outages; restarts change
    `boot`; `collected`: a full collection ran since the previous sample."""
    rng = random.Random(device.seed)
    p = dict(device.params)
    gc_every, garbage = p["gc_every"], p["garbage"]
    outages = []
    for _ in range(rng.randrange(0, 4)):
        at = rng.uniform(0, device.duration)
        outages.append((at, at + rng.uniform(2, 12) * HOUR))
    phase = rng.uniform(0, gc_every)
    t = 0.0
    while t < device.duration:
        if not any(a <= t < b for a, b in outages):
            boot = "b%d" % int(t // p["boot_every"]) if "boot_every" in p else "b0"
            since_gc = (t + phase) % gc_every
            kb = true_floor(device, t) + garbage * since_gc / gc_every + rng.gauss(0, p["noise"])
            yield t, boot, int(max(1024, min(kb, device.ceiling_kb))), since_gc < device.period
        t += device.period * rng.uniform(0.98, 1.02)
