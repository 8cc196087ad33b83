"""How good the leak verdict is (agent/leak.py): labelled synthetic fleets and real emulator runs.

Synthetic (tools/bench/leakfleet.py): every device's series is fed, sample by
sample, to a `LeakWatch` exactly as the agent and the console feed it (a new
boot resets it). Per device, the verdict is the first `leak_suspected` (if
any). Measured:

- precision and recall of "this device leaks" over the labelled fleet;
- the relative error of `ceiling_eta_s` at the alert against the truth (when
  the leak's floor reaches the ceiling), median over the leaking devices found;
- lead: the share of the leak's time-to-ceiling still ahead when the alert
  came, (ceiling_at - alert) / (ceiling_at - leak_start), median and the share
  of alerts with at least half ahead (for leaks that reach the ceiling within
  the observed 30 days).

Emulator: `gc-emulator run` of the `leak` workload (until the emulated limit
kills it) and of the healthy `bigfree`, `gcoff`, `server` and `cycles` (the
workloads of `make demo` among them), and `make demo`'s three devices on its
own profiles for 150 s, side by side; counted are the agent's
own `leak_suspected` events and the console's verdict on the same recorded
telemetry (tools/console/leaks.py). For `leak`, the eta and lead against the
kill time the emulator measured from outside.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
from typing import Any, Dict, List, Optional, Tuple

from agent.leak import LeakWatch
from tools.bench.broker import REPO
from tools.bench.leakfleet import fleet, series, true_floor

EMULATOR_INI = os.path.join(REPO, "device_profiles", "emulator.ini")
DEMO_SECONDS = 150   # make demo's healthy server once raised a leak alert after about 90 s
# name, workload, duration (s), workload args, leaking
EMULATOR_RUNS = (
    ("leak", "leak", 70, [], True),
    ("bigfree", "bigfree", 30, [], False),
    ("gcoff", "gcoff", 30, [], False),
    ("server", "server", 30, [], False),
    ("cycles", "cycles", 30, ["--rate", "20", "--gc-off", "--quiet"], False),   # as in make demo
)


def first_alert(device) -> Tuple[Optional[Tuple[float, Dict[str, Any]]], LeakWatch]:
    watch, boot, alert = LeakWatch(), None, None
    for t, b, kb, collected in series(device):
        if b != boot:
            watch.reset()
            boot = b
        change = watch.feed(t, kb, device.ceiling_kb, collected)
        if change and change[0] == "leak_suspected" and alert is None:
            alert = (t, change[1])
    return alert, watch


def synthetic(quick: bool) -> Dict[str, Any]:
    devices = fleet(leaking=40 if quick else 100, healthy_each=8 if quick else 20)
    tp = fp = fn = 0
    errors: List[float] = []
    leads: List[float] = []
    false_kinds: Dict[str, int] = {}
    for device in devices:
        alert, _ = first_alert(device)
        if not device.leak:
            if alert is not None:
                fp += 1
                false_kinds[device.kind] = false_kinds.get(device.kind, 0) + 1
            continue
        if alert is None:
            fn += 1
            continue
        tp += 1
        t, fields = alert
        if device.ceiling_at is not None:
            left = device.ceiling_at - t
            leads.append(left / (device.ceiling_at - device.leak_start))
        else:   # reaches the ceiling after the observed month: from its floor at the alert
            left = (device.ceiling_kb - true_floor(device, t)) / device.rate_kb_per_hour * 3600.0
        if fields.get("ceiling_eta_s") is not None and left > 0:
            errors.append(abs(fields["ceiling_eta_s"] - left) / left)
    return {"devices": len(devices), "leaking": sum(d.leak for d in devices), "tp": tp, "fp": fp,
            "fn": fn, "false_kinds": false_kinds,
            "precision": tp / float(tp + fp) if tp + fp else 0.0,
            "recall": tp / float(tp + fn) if tp + fn else 0.0,
            "eta_error_median": statistics.median(errors) if errors else None,
            "lead_median": statistics.median(leads) if leads else None,
            "lead_half_share": sum(x >= 0.5 for x in leads) / float(len(leads)) if leads else None,
            "leads": len(leads)}


def _demo_runs(folder: str, quick: bool):
    """make demo's three devices, on its own profiles, for longer than its false leak
    alert once took to come (about 90 s): (name, workload, duration, args, profile)."""
    from tools.demofleet import FLEET, demo_profile
    seconds = 40 if quick else DEMO_SECONDS
    return [("demo-" + workload, workload, seconds, args,
             demo_profile(folder, device, model, ceiling, batch))
            for device, model, ceiling, workload, args, batch in FLEET]


def _emulate(folder: str, name: str, workload: str, duration: int, args: List[str],
             profile: str = EMULATOR_INI):
    out = open(os.path.join(folder, name + ".json"), "w")  # noqa: SIM115 (the child writes it)
    argv = [sys.executable, "-m", "tools.emulator", "run", "--json", "--quiet", "--workdir",
            os.path.join(folder, name), "--profile", profile, "--workload", workload,
            "--duration", str(duration)]
    if args:
        argv += ["--"] + args
    return subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.PIPE), out


def emulator(quick: bool) -> Dict[str, Any]:
    from agent.leakrecords import judge_stored
    from tools.emulator.summary import read_messages
    results = {}
    with tempfile.TemporaryDirectory(prefix="leakeval-") as folder:
        runs = [(name, leaking) + _emulate(folder, name, workload, duration, args)
                for name, workload, duration, args, leaking in EMULATOR_RUNS]
        runs += [(name, False) + _emulate(folder, name, workload, duration, args, profile)
                 for name, workload, duration, args, profile in _demo_runs(folder, quick)]
        for name, leaking, proc, out in runs:
            _, err = proc.communicate(timeout=300)
            out.close()
            if proc.returncode not in (0, 1):
                raise RuntimeError("gc-emulator %s failed: %s" % (name, err.decode()[-800:]))
            with open(os.path.join(folder, name + ".json")) as handle:
                device = json.load(handle)["devices"][0]
            sent = read_messages(os.path.join(folder, name, device["device"]))
            events = [m for m in sent if m["type"] == "event" and m["event"] == "leak_suspected"]
            status = next((m for m in sent if m["type"] == "status"), {})
            boot = status.get("boot")
            watch = judge_stored(sent, {"boot": boot, "ceiling_kb": status.get("ceiling_kb")})
            first_ts = min(m["ts"] for m in sent)
            if not any(m["type"] == "telemetry" for m in sent):
                raise RuntimeError("gc-emulator %s: no telemetry recorded, nothing to judge" % name)
            got = {"leaking": leaking, "agent_leak_events": len(events),
                   "console_leak": watch.verdict.leak or watch.reported is not None,
                   "outcome": device["outcome"]}
            if events:
                got["rate_kb_per_hour"] = events[0].get("rate_kb_per_hour")
            kills = device.get("oom_kills") or []
            if events and kills:
                alert_s = events[0]["ts"] - first_ts
                # the emulator's clock starts at power-on, the messages' at the agent's start
                left = kills[0]["at_s"] - alert_s
                got["eta_error"] = abs(events[0]["ceiling_eta_s"] - left) / left if left > 0 else None
                got["lead"] = left / kills[0]["at_s"]
            results[name] = got
    return results


def measure(quick: bool) -> List[dict]:
    syn = synthetic(quick)
    emu = emulator(quick)
    healthy_false = sum(r["agent_leak_events"] + int(r["console_leak"])
                        for name, r in emu.items() if not r["leaking"] and not name.startswith("demo-"))
    demo_false = sum(r["agent_leak_events"] + int(r["console_leak"])
                     for name, r in emu.items() if name.startswith("demo-"))
    demo_seconds = 40 if quick else DEMO_SECONDS
    leak = emu["leak"]
    command = "python -m tools.bench --only leak"
    rows = [
        {"row": "leak verdict: precision, synthetic fleet", "value": "%.3f (%d of %d alerts right; "
         "%d devices, %d leaking; false: %s)" % (syn["precision"], syn["tp"], syn["tp"] + syn["fp"],
                                                 syn["devices"], syn["leaking"],
                                                 json.dumps(syn["false_kinds"]) or "none"),
         "ratio": syn["precision"], "goal": ">= 0.95", "met": syn["precision"] >= 0.95},
        {"row": "leak verdict: recall, synthetic fleet", "value": "%.3f (%d of %d leaks found)"
         % (syn["recall"], syn["tp"], syn["leaking"]),
         "ratio": syn["recall"], "goal": ">= 0.9", "met": syn["recall"] >= 0.9},
        {"row": "leak verdict: ceiling_eta_s median relative error at the alert",
         "value": "%.1f%%" % (100 * syn["eta_error_median"]), "ratio": syn["eta_error_median"],
         "goal": "<= 25%", "met": syn["eta_error_median"] <= 0.25},
        {"row": "leak verdict: time-to-ceiling still ahead at the alert",
         "value": "median %.0f%%; %.0f%% of %d alerts with half or more ahead"
         % (100 * syn["lead_median"], 100 * syn["lead_half_share"], syn["leads"]),
         "ratio": syn["lead_median"], "goal": ">= 50%", "met": syn["lead_median"] >= 0.5},
        {"row": "leak verdict: healthy emulator runs (bigfree, gcoff, server, cycles)",
         "value": "%d leak verdicts (agent events + console)" % healthy_false,
         "ratio": float(healthy_false), "goal": "0", "met": healthy_false == 0},
        {"row": "leak verdict: make demo's fleet (cycles, bigfree, server on its profiles, %d s)"
         % demo_seconds,
         "value": "%d leak verdicts (agent events + console)" % demo_false,
         "ratio": float(demo_false), "goal": "0", "met": demo_false == 0},
        {"row": "leak verdict: emulator leak run (1 MB/s)",
         "value": "agent %s, console %s; rate %s KB/h; eta error %s; %s of time-to-ceiling ahead"
         % ("leak_suspected" if leak["agent_leak_events"] else "nothing",
            "leak" if leak["console_leak"] else "nothing", leak.get("rate_kb_per_hour"),
            "%.0f%%" % (100 * leak["eta_error"]) if leak.get("eta_error") is not None else "-",
            "%.0f%%" % (100 * leak["lead"]) if leak.get("lead") is not None else "-"),
         "ratio": leak.get("lead") or 0.0, "goal": "leak found, half or more ahead",
         "met": bool(leak["agent_leak_events"] and leak["console_leak"]
                     and (leak.get("lead") or 0) >= 0.5)},
    ]
    for row in rows:
        row["command"] = command
    return rows


if __name__ == "__main__":
    print(json.dumps({"synthetic": synthetic("--quick" in sys.argv),
                      "emulator": emulator("--quick" in sys.argv)}, indent=2))
