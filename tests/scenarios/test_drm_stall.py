"""`drm-stall`: Remote Manager stops answering, and the agent does not stop with it.

Over a cellular link that goes silent without closing, an upload to Remote
Manager hangs until its timeout. The agent must keep sampling and collecting
meanwhile (the application's memory does not wait for Remote Manager), and
deliver everything once Remote Manager answers again.
"""

import json

from tests.scenarios.conftest import EMULATOR_INI, Emulation, background, messages

STALL_AT, STALL_FOR = 3.0, 6.0


@background("drm-stall")
def _stall(folder):
    return Emulation(folder, "--profile", EMULATOR_INI, "--workload", "cycles", "--duration", "14",
                     "--report", "drm:?flush=1s",
                     "--fault", "drm-stall:at=%gs,for=%gs" % (STALL_AT, STALL_FOR))


def test_the_agent_samples_through_a_remote_manager_stall_and_delivers_everything_after(launched):
    run = launched["drm-stall"]
    summary = run.result()
    assert summary["exit_status"] == 0, summary["log"][-2000:]
    assert "Remote Manager stops answering" in summary["log"]
    device = summary["devices"][0]
    assert device["outcome"] == "survived"
    sent = messages(run.device_folder(device["device"]))

    # One sample a second (emulator.ini) all the way through: a stall of 6 s held on
    # the agent thread would leave a gap of about 6 s.
    stamps = sorted(s["ts"] for m in sent if m["type"] == "telemetry" for s in m["samples"])
    assert len(stamps) >= 10
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert max(gaps) < STALL_FOR / 2, gaps

    # Everything the agent wrote reached Remote Manager after the stall, once each.
    with open(run.device_folder(device["device"]) + "/datapoints.jsonl") as handle:
        points = [json.loads(line) for line in handle]
    uploaded = [(json.loads(p["data"])["boot"], json.loads(p["data"])["seq"])
                for p in points if p.get("data_type") == "JSON"]
    assert {(m["boot"], m["seq"]) for m in sent} <= set(uploaded)
    assert len(uploaded) == len(set(uploaded))
