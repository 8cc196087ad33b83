"""`make bench`: prints the performance table and writes bench/results.json.

Each row is a ratio of two things measured side by side in the same run,
because these machines are noisy; each row names the command that
reproduces it.
"""

import argparse
import gc
import json
import os
import platform
import sys
import time
import timeit

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROFILE = os.path.join(REPO, "device_profiles", "emulator.ini")


def _best_us(fn, number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def sample_cost(quick: bool):
    """Our Sample against the raw reads (the floor) and against a psutil collector."""
    from agent.probes import Probe
    statm = os.open("/proc/self/statm", os.O_RDONLY)
    meminfo = os.open("/proc/meminfo", os.O_RDONLY)

    def floor():
        os.pread(statm, 128, 0)
        os.pread(meminfo, 4096, 0)
        gc.get_count()
        gc.get_stats()

    probe = Probe()
    import psutil
    process = psutil.Process()

    def with_psutil():
        process.memory_info()
        psutil.virtual_memory()
        gc.get_stats()

    number, repeat = (500, 3) if quick else (5000, 7)
    ours = _best_us(probe.sample, number, repeat)
    raw = _best_us(floor, number, repeat)
    other = _best_us(with_psutil, number, repeat)
    probe.close()
    return [
        {"row": "sample cost: agent / raw reads", "value": "%.1f us / %.1f us" % (ours, raw),
         "ratio": ours / raw, "goal": "<= 2x", "met": ours / raw <= 2.0},
        {"row": "sample cost: psutil path / agent", "value": "%.1f us / %.1f us" % (other, ours),
         "ratio": other / ours, "goal": ">= 5x", "met": other / ours >= 5.0},
    ]


def wire_bytes(quick: bool):
    """A day of 1-minute telemetry over MQTT: batched and compressed against plain."""
    from tools.bench.wire import measure
    got = measure(quick)
    plain_sample, plain_day = got["plain"]
    batched_sample, batched_day = got["batched"]
    return [
        {"row": "wire: bytes per sample, batched+zlib", "value": "%.0f B (plain JSON: %.0f B)"
         % (batched_sample, plain_sample), "ratio": batched_sample / plain_sample,
         "goal": "<= 40 B", "met": batched_sample <= 40},
        {"row": "wire: a day of 1-minute telemetry", "value": "%.1f KB (plain: %.1f KB); %.2f MB a month"
         % (batched_day / 1024, plain_day / 1024, batched_day * 30 / 2 ** 20),
         "ratio": batched_day / plain_day, "goal": "<= 3 MB a month", "met": batched_day * 30 <= 3 * 2 ** 20},
    ]


def replay_rate(quick: bool):
    """Messages a second replayed from the flash journal, against the profile's default cap."""
    from tools.bench.replay import measure
    rate = measure(quick)
    return [{"row": "replay: journal messages a second to the broker", "value": "%.0f msg/s (cap lifted; "
             "default replay_rate 20/s)" % rate, "ratio": rate / 20.0, "goal": "none (measured)",
             "met": True}]


def effect(quick: bool):
    from tools.bench.effect import measure
    return measure(quick)


def tuner(quick: bool):
    """gc-emulator compare per workload: tune = auto against the default and peers' policies."""
    from tools.bench.tuner import measure
    return measure(quick, COMPARE_SECONDS[0])


COMPARE_SECONDS = [None]   # --compare-seconds


def ingest(quick: bool):
    """gc-console ingest against mosquitto_sub on the same stream."""
    from tools.bench.ingest import measure
    console, plain = measure(quick)
    return [{"row": "console: ingest rate against mosquitto_sub", "value": "%.0f msg/s vs %.0f msg/s"
             % (console, plain), "ratio": console / plain, "goal": ">= 0.5x", "met": console >= 0.5 * plain}]


def fleet(quick: bool):
    """gc-console devices on 100,000 device ids (issue 14)."""
    from tools.bench.fleet import measure
    return measure(quick)


def leak(quick: bool):
    """The leak verdict on labelled synthetic fleets and emulator runs (tools/bench/leakeval.py)."""
    from tools.bench.leakeval import measure
    return measure(quick)


def footprint(quick: bool):
    from tools.bench.cost import footprint
    return footprint(quick)


def cpu(quick: bool):
    from tools.bench.cost import cpu
    return cpu(quick)


def flood(quick: bool):
    from tools.bench.flood import measure
    return measure(quick)


def web(quick: bool):
    """The web console: the fleet page with 1,000 devices, a device page over 30 days, serve's RSS."""
    from tools.bench.web import device_page, fleet_page
    fleet = fleet_page(200 if quick else 1000, 5 if quick else 10)
    device = device_page(7 if quick else 30)
    return [
        {"row": "web: fleet page update, %d devices reporting" % fleet["devices"],
         "value": "median %.2f s, worst %.2f s (%d probes)" % (fleet["latency_median_s"],
                                                              fleet["latency_max_s"], 5 if quick else 10),
         "ratio": fleet["latency_max_s"] / 2.0, "goal": "<= 2 s", "met": fleet["latency_max_s"] <= 2.0},
        {"row": "web: device page, %d one-minute samples (%d days)" % (device["samples"],
                                                                      7 if quick else 30),
         "value": "drawn in %.2f s (worst %.2f s); %d points a series, %d KB" % (
             device["render_s"], device["render_max_s"], device["points"], device["bytes"] // 1024),
         "ratio": device["render_max_s"] / 2.0, "goal": "< 2 s, <= 2000 points",
         "met": device["render_max_s"] < 2.0 and device["points"] <= 2000},
        {"row": "web: serve's RSS with %d devices" % fleet["devices"],
         "value": "%.1f MB (peak %.1f MB)" % (fleet["rss_kb"] / 1024.0, fleet["hwm_kb"] / 1024.0),
         "ratio": fleet["rss_kb"] / 1024.0 / 100.0, "goal": "none (measured)", "met": True},
    ]


ROWS = (("sample", sample_cost, "python -m tools.bench --only sample"),
        ("footprint", footprint, "python -m tools.bench --only footprint"),
        ("cpu", cpu, "python -m tools.bench --only cpu"),
        ("effect", effect, "python -m tools.bench --only effect"),
        ("tuner", tuner, "python -m tools.bench --only tuner"),
        ("wire", wire_bytes, "python -m tools.bench --only wire"),
        ("ingest", ingest, "python -m tools.bench --only ingest"),
        ("replay", replay_rate, "python -m tools.bench --only replay"),
        ("leak", leak, "python -m tools.bench --only leak"),
        ("flood", flood, "python -m tools.bench --only flood"),
        ("web", web, "python -m tools.bench --only web"),
        ("fleet", fleet, "python -m tools.bench --only fleet"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (CI smoke)")
    parser.add_argument("--only", choices=[name for name, _, _ in ROWS], action="append")
    parser.add_argument("--json", default=os.path.join(REPO, "bench", "results.json"))
    parser.add_argument("--compare-seconds", type=float, metavar="S",
                        help="seconds each policy runs in the tuner's compares (default 8; 6 with --quick; "
                             "server, in 3 rounds, and the live-heap case run three times as long, relay "
                             "twice)")
    args = parser.parse_args(argv)
    COMPARE_SECONDS[0] = args.compare_seconds
    machine = "%s, %d cores, Python %s, %s" % (platform.machine(), os.cpu_count() or 0,
                                                platform.python_version(), time.strftime("%Y-%m-%d"))
    print("gc-agent bench (%s)%s" % (machine, " --quick" if args.quick else ""))
    results = []
    for name, fn, command in ROWS:
        if args.only and name not in args.only:
            continue
        print("  measuring %s ..." % name, file=sys.stderr, flush=True)
        for row in fn(args.quick):
            row.setdefault("command", command)
            results.append(row)
    print("\n| measure | value | ratio | goal | met | reproduce |")
    print("|---|---|---|---|---|---|")
    for row in results:
        print("| %s | %s | %.2fx | %s | %s | `%s` |" % (row["row"], row["value"], row["ratio"],
                                                       row["goal"], "yes" if row["met"] else "NO",
                                                       row["command"]))
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as handle:
        json.dump({"machine": machine, "rows": results}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
