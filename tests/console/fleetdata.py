"""Schema-v1 messages of a made-up device, built with the agent's own Envelope."""

import time
from typing import Any, Dict, Optional

from agent import messages


class Clock(object):
    """A clock the test moves by hand."""

    def __init__(self, start: Optional[float] = None) -> None:
        self.now = start if start is not None else time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Device(object):
    """One boot of one device: status, telemetry, events, Will, with rising seq."""

    def __init__(self, device: str, clock=time.time, model: str = "IX20",
                 ceiling_kb: int = 65536) -> None:
        self.clock = clock
        self.env = messages.Envelope(device, clock=clock)
        self.model = model
        self.ceiling_kb = ceiling_kb

    def status(self, state: str = "online") -> Dict[str, Any]:
        return self.env.make("status", state=state, agent="0.1", python="3.10.1",
                             gc_flavour="generational-700", model=self.model,
                             profile="/etc/config/gcagent/p.ini", profile_sha256="0" * 64,
                             ceiling_kb=self.ceiling_kb, uptime_s=1.0)

    def will(self) -> Dict[str, Any]:
        m = dict(self.status("offline"), seq=0, will=True)
        return m

    def sample(self, rss_kb: int, ts: Optional[float] = None) -> Dict[str, Any]:
        return {"ts": ts if ts is not None else self.clock(), "mem_free_kb": 150000,
                "mem_total_kb": 262144, "rss_kb": rss_kb, "gc_count": [10, 2, 1],
                "gc_collections": [5, 1, 0], "gc_collected": 12, "gc_uncollectable": 0,
                "gc_pause_ms_total": 0.4, "gc_pause_ms_max": 0.2}

    def telemetry(self, rss_kb: int, dropped: int = 0, samples=None) -> Dict[str, Any]:
        return self.env.make("telemetry", samples=samples or [self.sample(rss_kb)], buffered=0,
                             dropped=dropped)

    def event(self, event: str, **fields: Any) -> Dict[str, Any]:
        return self.env.make("event", event=event, **fields)

    def collect(self, before_kb: int, after_kb: int, rule: str = "low-memory") -> Dict[str, Any]:
        return self.event("collect", rule=rule, generation=2, collected=100, duration_ms=1.5,
                          rss_before_kb=before_kb, rss_after_kb=after_kb)
