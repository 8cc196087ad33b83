"""`make demo`: the console watching a fleet of three emulated devices.

`python -m tools.demo` starts the console with its embedded MQTT broker on
127.0.0.1 (nothing to install, no root), then three emulated devices of
different models and workloads (`gc-emulator run`: the real agent around a
workload, the model's memory limit enforced from outside, the emulated
`digidevice`), each reporting to that broker, and
shows the live fleet view until Ctrl-C (in a terminal) or for --duration
(default: until Ctrl-C in a terminal, 30 s otherwise, e.g. `make demo </dev/null | cat`).
Ctrl-C stops the devices first (they say "offline"), then the console.

`python -m tools.demo --compare` is the earlier demo: one application run
twice under a 64M ceiling, without and with gc-agent; RSS is read from
outside the process (/proc/PID/statm) and drawn as a bar against the ceiling.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter

from tools.demofleet import FLEET, demo_profile  # the fleet, shared with the bench

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROFILE = os.path.join(REPO, "device_profiles", "emulator.ini")
WORKLOAD = os.path.join(REPO, "tools", "emulator", "workloads", "cycles.py")
CEILING_KB = 64 * 1024
WIDTH = 40


def _rss_kb(pid: int) -> int:
    try:
        with open("/proc/%d/statm" % pid) as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, IndexError, ValueError):
        return 0


def _bar(kb: int) -> str:
    filled = min(WIDTH, int(WIDTH * kb / CEILING_KB))
    over = kb > CEILING_KB
    return "[" + "#" * filled + " " * (WIDTH - filled) + "]" + (" OVER THE CEILING" if over else "")


def _run(title: str, argv, seconds: float) -> int:
    print("\n== %s" % title)
    print("   $ %s" % " ".join(os.path.relpath(a, REPO) if a.startswith(REPO) else a for a in argv))
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    peak = 0
    started = time.monotonic()
    while proc.poll() is None:
        kb = _rss_kb(proc.pid)
        if kb < 4096:   # the interpreter is still starting: nothing to show yet
            time.sleep(0.1)
            continue
        peak = max(peak, kb)
        print("   t=%4.1fs rss %6.1fM %s" % (time.monotonic() - started, kb / 1024.0, _bar(kb)),
              flush=True)
        time.sleep(0.5)
    print("   peak %.1fM against a %dM ceiling: %s"
          % (peak / 1024.0, CEILING_KB // 1024,
             "would be killed by the device's memory limit" if peak > CEILING_KB else "stays under"))
    return peak


def compare(args) -> int:
    """Without and with the agent, side by side (the --compare demo)."""
    workload = [WORKLOAD, "--rate", str(args.rate), "--seconds", str(args.seconds), "--gc-off",
                "--quiet"]
    print("gc-agent demo: an application that makes %.0f MB/s of reference cycles with gc "
          "disabled, under a %dM ceiling (device_profiles/emulator.ini)." % (args.rate,
                                                                              CEILING_KB // 1024))
    without = _run("without the agent", [sys.executable, *workload], args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "messages.jsonl")
        with_agent = _run("with gc-agent", [sys.executable, "-m", "agent", "run", "--profile",
                                            PROFILE, "--report", "file://" + out, "--", *workload],
                          args.seconds)
        with open(out) as handle:
            messages = [json.loads(line) for line in handle]
    events = [m for m in messages if m["type"] == "event"]
    collects = [m for m in events if m["event"] == "collect"]
    by_rule = Counter(m["rule"] for m in collects)
    reclaimed = sum(max(0, m["rss_before_kb"] - m["rss_after_kb"]) for m in collects)
    pauses = sorted(m["duration_ms"] for m in collects)
    print("\n== what the agent reported (%d messages: %s)" % (
        len(messages), ", ".join("%d %s" % (n, t) for t, n in
                                 sorted(Counter(m["type"] for m in messages).items()))))
    print("   collections by rule: %s" % (", ".join("%s %d" % kv for kv in sorted(by_rule.items()))
                                          or "none"))
    if pauses:
        print("   reclaimed %.1fM of RSS; pauses median %.1f ms, longest %.1f ms"
              % (reclaimed / 1024.0, pauses[len(pauses) // 2], pauses[-1]))
    print("   other events: %s" % ", ".join(sorted({m["event"] for m in events} - {"collect"})))
    print("\n   peak RSS without the agent %.1fM, with it %.1fM (%.0f%% lower)\n"
          % (without / 1024.0, with_agent / 1024.0, 100.0 * (1 - with_agent / float(without or 1))))
    print("Next: python -m agent run --help, device_profiles/*.ini, and docs/README.md.")
    return 0 if with_agent < CEILING_KB else 1


# -- the fleet demo ----------------------------------------------------------------------------

NON_TTY_SECONDS = 30.0
DEMO_INTERVAL = 5.0   # the demo devices report every 1-3 s: silent after 15 s is offline


def start_fleet(broker_url: str, folder: str, seconds: float) -> list:
    """The three devices, each a `gc-emulator run` of one device reporting to the broker."""
    procs = []
    env = dict(os.environ, PYTHONPATH=REPO)
    for device, model, ceiling, workload, workload_args, batch in FLEET:
        profile = demo_profile(folder, device, model, ceiling, batch)
        argv = [sys.executable, "-m", "tools.emulator", "run", "--profile", profile,
                "--workload", workload, "--duration", "%ds" % seconds, "--report", broker_url,
                "--exit-action", "restart", "--reboot-delay", "1", "--quiet",
                "--workdir", os.path.join(folder, device)]
        if workload_args:
            argv += ["--", *workload_args]
        # A session of their own: Ctrl-C in the terminal reaches only the console, which then
        # stops each device with SIGTERM, in order (and their stderr goes to a file, not the view).
        with open(os.path.join(folder, device + ".log"), "wb") as log:
            procs.append(subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                          stderr=log, stdin=subprocess.DEVNULL,
                                          start_new_session=True))
    return procs


def stop_fleet(procs: list) -> None:
    """SIGTERM (the agent sends its final telemetry and "offline"), then wait."""
    import signal
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stop_like_ctrl_c() -> None:
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt

    for name in ("SIGHUP", "SIGTERM"):
        signal.signal(getattr(signal, name), stop)


def fleet(args) -> int:
    """The console with its embedded broker, and three devices reporting to it."""
    from rich.console import Console

    from tools.console import live
    from tools.console.session import Session
    from tools.mosquitto import free_port

    console = Console()
    interactive = console.is_terminal
    duration = args.duration if args.duration else (None if interactive else NON_TTY_SECONDS)
    with tempfile.TemporaryDirectory(prefix="gc-demo-") as tmp:
        session = Session(args.db or os.path.join(tmp, "console.db"),
                          embedded_port=free_port(), default_interval=DEMO_INTERVAL).start()
        console.print("gc-agent demo: the console (embedded broker at %s) watching three devices"
                      % session.broker_url, highlight=False)
        web = None
        if args.web is not None:
            from tools.console.session import _port_free
            from tools.console.web.serve import Background
            port = args.web if args.web and _port_free(args.web) else free_port()
            web = Background(session, port, DEMO_INTERVAL).start()
            console.print("the web console: [bold]%s[/] (fleet page, device pages, /metrics)"
                          % web.url, highlight=False)
        console.print("the same view of your fleet: gc-console watch (this demo %s)" % (
            "stops on q or Ctrl-C" if duration is None else "stops after %.0fs" % duration),
            highlight=False)
        # The devices run in sessions of their own (start_fleet): a closed terminal (SIGHUP)
        # or a kill (SIGTERM) must stop them as Ctrl-C does, not leave them running for a day.
        _stop_like_ctrl_c()
        procs = start_fleet(session.broker_url, tmp, (duration or 24 * 3600) + 30)

        deadline = time.monotonic() + duration if duration else float("inf")
        try:
            live.run(session, console, deadline, DEMO_INTERVAL)
        except KeyboardInterrupt:
            pass
        finally:
            stop_fleet(procs)
            time.sleep(1.0)   # the devices' "offline" status arrives
            try:
                console.print(live.frame(session, DEMO_INTERVAL, console.width))
            except OSError:   # the terminal is gone (SIGHUP): nobody to show it to
                pass
            if web is not None:
                web.stop()
            session.stop()
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, help="seconds to run (default: until Ctrl-C "
                        "in a terminal, %.0f otherwise)" % NON_TTY_SECONDS)
    parser.add_argument("--db", help="keep the console's database here (default: a temporary one)")
    parser.add_argument("--web", type=int, default=8080, metavar="PORT",
                        help="serve the web console on 127.0.0.1:PORT too (default 8080; 0 for "
                             "a free port)")
    parser.add_argument("--no-web", dest="web", action="store_const", const=None,
                        help="the terminal view only")
    parser.add_argument("--compare", action="store_true",
                        help="the earlier demo: one application without and with the agent")
    parser.add_argument("--seconds", type=float, default=8.0, help="--compare: length of each run")
    parser.add_argument("--rate", type=float, default=25.0,
                        help="--compare: MB of cyclic garbage a second")
    args = parser.parse_args(argv)
    return compare(args) if args.compare else fleet(args)


if __name__ == "__main__":
    sys.exit(main())
