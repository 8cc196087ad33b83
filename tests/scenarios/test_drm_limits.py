"""`drm:` in the emulator with large batches and an outage: zero uploads over Remote
Manager's limits (250 points, 2 MB, 60 a minute), none refused, nothing lost.

The profile samples 20 times a second and sends telemetry in batches of 130
samples: 261 data points a message, more than one upload may carry. Remote
Manager is unreachable for 6 s in the middle, so messages queue up and go up
together after it.
"""

import json
import os

from tests.scenarios.conftest import EMULATOR_INI, Emulation, background, messages


@background("drm-limits")
def _limits(folder):
    os.makedirs(folder, exist_ok=True)
    profile = os.path.join(folder, "big-batches.ini")
    with open(profile, "w") as handle:
        handle.write("[profile]\nextends = %s\n[agent]\ntick = 50ms\n"
                     "[report]\ninterval = 50ms\nbatch = 130\n" % EMULATOR_INI)
    return Emulation(os.path.join(folder, "run"), "--profile", profile, "--workload", "cycles",
                     "--duration", "16", "--report", "drm:?flush=1s",
                     "--fault", "broker-outage:at=5s,for=6s")


def _jsonl(path):
    try:
        with open(path) as handle:
            return [json.loads(line) for line in handle]
    except FileNotFoundError:
        return []


def test_large_batches_through_an_outage_stay_within_remote_managers_limits(launched):
    run = launched["drm-limits"]
    summary = run.result()
    device = summary["devices"][0]
    assert device["outcome"] == "survived", summary["log"][-2000:]
    folder = run.device_folder(device["device"])
    uploads = _jsonl(os.path.join(folder, "drm_uploads.jsonl"))
    assert uploads, "nothing uploaded"
    assert max(u["points"] for u in uploads) <= 250 and max(u["bytes"] for u in uploads) <= 2 << 20
    starts = [u["at"] for u in uploads]
    assert max(sum(1 for t in starts if s <= t < s + 60) for s in starts) <= 60
    assert _jsonl(os.path.join(folder, "drm_refused.jsonl")) == []

    sent = messages(folder)
    telemetry = [m for m in sent if m["type"] == "telemetry"]
    assert any(len(m["samples"]) == 130 for m in telemetry)   # 261 points: over one upload
    points = _jsonl(os.path.join(folder, "datapoints.jsonl"))
    uploaded = [(json.loads(p["data"])["boot"], json.loads(p["data"])["seq"])
                for p in points if p.get("data_type") == "JSON"]
    assert {(m["boot"], m["seq"]) for m in sent} <= set(uploaded)   # nothing lost
    assert len(uploaded) == len(set(uploaded))                      # nothing twice
    assert any(m.get("event") == "link_down" for m in sent)         # the outage happened
    assert device["buffered"] == 0   # the summary's buf column: what never arrived
