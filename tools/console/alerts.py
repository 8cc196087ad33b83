"""Alerts: which conditions of a device an operator must see, as a pure function.

`active(device, now, margin)` returns the alerts a device's state calls for
right now; the ingestor compares that with what was active before, records
each change and republishes it to PREFIX/_alerts. Kinds:

- ``offline``: the device vanished (its Last Will) or went silent. A device
  stopped cleanly (status `offline` without `will`) is `stopped`: someone
  stopped it on purpose, so it raises nothing;
- ``ceiling``: headroom (ceiling minus RSS, or free memory if smaller) under
  `margin` of the ceiling;
- ``escalated``: a low-memory rule walked to its last step (`alert` event)
  and has not `recovered` since;
- ``leak``: the memory floor rises steadily (agent/leak.py on the recorded
  telemetry, tools/console/leaks.py); the detail says the rate and the time
  left before the ceiling; cleared when the floor stops rising;
- ``dropped``: the device lost messages to a full outbox this boot.
"""

from typing import Any, Dict

KINDS = ("offline", "ceiling", "escalated", "leak", "dropped")


def headroom_kb(device: Dict[str, Any]) -> Any:
    """How much more the process may grow, as the agent computes it; None when unknown."""
    ceiling, rss, free = device.get("ceiling_kb"), device.get("rss_kb"), device.get("mem_free_kb")
    if not ceiling or rss is None:
        return None
    room = ceiling - rss
    return min(room, free) if free is not None else room


def active(device: Dict[str, Any], margin: float) -> Dict[str, str]:
    """kind -> a one-line detail, for every alert `device` calls for now."""
    out = {}
    if device.get("state") == "offline" and device.get("reason") != "stopped":
        out["offline"] = device.get("reason") or "offline"
    room = headroom_kb(device)
    if room is not None and device.get("state") != "offline" \
            and room < margin * device["ceiling_kb"]:
        out["ceiling"] = "headroom %dK of a %dK ceiling (under %d%%)" % (
            room, device["ceiling_kb"], round(margin * 100))
    if device.get("escalated"):
        out["escalated"] = "low-memory rule %s reached its last step" % device["escalated"]
    if device.get("leak"):
        out["leak"] = device["leak"]
    if device.get("dropped"):
        out["dropped"] = "%d messages lost to a full outbox" % device["dropped"]
    return out
