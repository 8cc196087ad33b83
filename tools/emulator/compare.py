"""`gc-emulator compare`: one workload under several gc policies, one after another, one table.

    gc-emulator compare --workload W [--profile P ...] [--json] [--seconds S] [--limit SIZE]
                        [--base PROFILE] [-- WORKLOAD ARGS]

Policies, in this order: CPython's default collector; the no-collection floor
(gc disabled: a latency reference only, run without the memory limit); a
gc.freeze() after start-up; Synapse's gc manager (tools/emulator/gcpolicy.py);
the agent with each `--profile`; the agent with `[gc] tune = auto` over the
base profile. Each runs as one emulated device (`gc-emulator run`), so RSS
and OOM kills are measured from outside; latency, pauses by phase and full
collections by phase come from the workload's own summary. Runs go one after
another rather than side by side so that they do not share the CPU (the
policies differ by a millisecond or two of latency).
"""

import os
import sys
import tempfile
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

FLOOR_LIMIT_KB = 1024 * 1024   # the floor collects nothing: it gets room, it is a latency reference


class Policy(NamedTuple):
    """One column of the comparison: a name, the agent's profile (or none), extra environment."""

    name: str
    profile: Optional[str]            # None: the workload without the agent
    env: Tuple[Tuple[str, str], ...] = ()
    limit_kb: Optional[int] = None    # None: the compare's limit


def policies(base: str, profiles: Sequence[str], auto_profile: str) -> List[Policy]:
    """The columns, in the order of the table."""
    out = [Policy("CPython default", None),
           Policy("no collection (floor)", None, (("GC_EMULATOR_POLICY", "floor"),), FLOOR_LIMIT_KB),
           Policy("freeze after start-up", None, (("GC_EMULATOR_POLICY", "freeze"),)),
           Policy("Synapse's manager", None, (("GC_EMULATOR_POLICY", "synapse"),))]
    out += [Policy("agent, %s" % os.path.relpath(p), p) for p in profiles]
    out.append(Policy("agent, tune = auto", auto_profile))
    return out


def auto_profile_text(base: str) -> str:
    """A profile that is `base` with the tuner on."""
    return ("; written by gc-emulator compare: %s with the tuner on\n[profile]\nextends = %s\n\n"
            "[gc]\ntune = auto\n" % (base, os.path.abspath(base)))


def row(policy: Policy, report: Dict[str, Any]) -> Dict[str, Any]:
    """The table's figures for one policy, from one device's report."""
    work = report.get("workload") or {}
    latency = work.get("latency_ms") or {}
    busy = work.get("busy_pauses") or {}
    idle = work.get("idle_pauses") or {}
    full = work.get("full_collections") or {}
    return {
        "policy": policy.name,
        "profile": policy.profile,
        "outcome": report.get("outcome"),
        "oom_kills": len(report.get("oom_kills", [])),
        "peak_rss_kb": report.get("peak_rss_kb"),
        "limit_kb": report.get("limit_kb"),
        "p50_ms": latency.get("p50"), "p99_ms": latency.get("p99"), "max_ms": latency.get("max"),
        "busy_gc_ms": busy.get("total_ms"), "idle_gc_ms": idle.get("total_ms"),
        "longest_busy_pause_ms": busy.get("max_ms"),
        "longest_busy_pause_cpu_ms": busy.get("max_cpu_ms"),
        "longest_pause_ms": max(busy.get("max_ms") or 0.0, idle.get("max_ms") or 0.0) if busy else None,
        "collections": work.get("collections"),
        "busy_full_automatic": (full.get("busy") or {}).get("automatic"),
        "busy_full_explicit": (full.get("busy") or {}).get("explicit"),
        "agent_collections": report.get("collections"),
        "events": report.get("events"),
    }


def _cell(value: Any, fmt: str = "%.2f") -> str:
    if value is None:
        return "-"
    return fmt % value if isinstance(value, float) else str(value)


def _pause(r: Dict[str, Any]) -> str:
    """The longest wall time of a busy pause, and the longest collector CPU time of one in brackets."""
    if r["longest_busy_pause_cpu_ms"] is None:
        return _cell(r["longest_busy_pause_ms"])
    return "%s (%s)" % (_cell(r["longest_busy_pause_ms"]), _cell(r["longest_busy_pause_cpu_ms"]))


def table(workload: str, rows: List[Dict[str, Any]]) -> str:
    """The comparison as one Markdown table."""
    lines = ["workload %s" % workload,
             "| policy | p50 ms | p99 ms | max ms | busy gc ms | idle gc ms "
             "| longest busy pause ms: wall (CPU) | peak RSS | OOM kills | collections g0/g1/g2 "
             "| automatic full in busy |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        gens = "/".join(str(n) for n in r["collections"]) if r["collections"] else "-"
        peak = "%.1fM" % (r["peak_rss_kb"] / 1024.0) if r["peak_rss_kb"] else "-"
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["policy"], _cell(r["p50_ms"]), _cell(r["p99_ms"]), _cell(r["max_ms"], "%.1f"),
            _cell(r["busy_gc_ms"], "%.0f"), _cell(r["idle_gc_ms"], "%.0f"),
            _pause(r), peak, r["oom_kills"], gens,
            _cell(r["busy_full_automatic"])))
    return "\n".join(lines)


KINDS = ("default", "floor", "freeze", "synapse", "profiles", "auto")


def _kind(policy: Policy) -> str:
    env = dict(policy.env).get("GC_EMULATOR_POLICY")
    if env:
        return env
    if policy.profile is None:
        return "default"
    return "auto" if policy.name.endswith("tune = auto") else "profiles"


# Figures a round's median stands for; bounds take the worst round (kills, automatic
# full collections in busy time, the longest pauses); the rest are the first round's
# (collections by generation, events).
_MEDIAN = ("peak_rss_kb", "p50_ms", "p99_ms", "max_ms", "busy_gc_ms", "idle_gc_ms")
_WORST = ("oom_kills", "busy_full_automatic", "busy_full_explicit",
          "longest_busy_pause_ms", "longest_busy_pause_cpu_ms", "longest_pause_ms")


def _median(values: List[float]) -> float:
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2.0


def merge(rounds: List[Dict[str, Any]]) -> Dict[str, Any]:
    """One row for a policy run several times: medians of the figures, the worst of the bounds.

    A single run of `server` on a virtual machine moves its p99 by 2x between runs (the
    floor's own p99 read 2.6 and 5.1 ms in two runs minutes apart): the median of rounds
    run in turn with the other policies compares like with like (docs/tuner.md).
    """
    out = dict(rounds[0])
    if len(rounds) == 1:
        return out
    for key in _MEDIAN:
        got = [r[key] for r in rounds if r.get(key) is not None]
        out[key] = _median(got) if got else None
    for key in _WORST:
        got = [r[key] for r in rounds if r.get(key) is not None]
        out[key] = max(got) if got else None
    out["outcome"] = next((r["outcome"] for r in rounds if r["outcome"] != "survived"), out["outcome"])
    out["rounds"] = len(rounds)
    out["p99_ms_rounds"] = [r["p99_ms"] for r in rounds]
    return out


def compare(workload: str, profiles: Sequence[str], base: str, seconds: float,
            limit_kb: Optional[int], workload_args: Sequence[str] = (), python: str = sys.executable,
            folder: str = "", log: Callable[[str], None] = lambda text: None,
            only: Sequence[str] = KINDS, rounds: int = 1) -> List[Dict[str, Any]]:
    """Run every policy (of the kinds in `only`) on `workload`, one after another; one row each.

    With `rounds` > 1 every policy runs that many times, the policies taking turns, and
    each row is `merge` of its rounds.
    """
    if not folder:   # nobody will read the runs' files: a folder of our own, removed after
        with tempfile.TemporaryDirectory(prefix="gc-emulator-compare-") as own:
            return compare(workload, profiles, base, seconds, limit_kb, workload_args, python, own,
                           log, only, rounds)
    from .fleet import Run, RunOptions
    from .model import model_from_profile
    os.makedirs(folder, exist_ok=True)
    auto = os.path.join(folder, "auto.ini")
    with open(auto, "w") as handle:
        handle.write(auto_profile_text(base))
    columns = [p for p in policies(base, profiles, auto) if _kind(p) in only]
    runs = {}   # type: Dict[int, List[Dict[str, Any]]]
    total = len(columns) * rounds
    for turn in range(rounds):
        for i, policy in enumerate(columns, 1):
            step = turn * len(columns) + i
            log("[%d/%d] %s: %s for %gs%s" % (step, total, workload, policy.name, seconds,
                                             ", round %d of %d" % (turn + 1, rounds) if rounds > 1 else ""))
            model = model_from_profile(policy.profile or base, policy.limit_kb or limit_kb, "none")
            if policy.limit_kb:   # the floor: a device with the RAM for it
                model = model._replace(ram_kb=max(model.ram_kb, policy.limit_kb + model.baseline_kb))
            workdir = os.path.join(folder, "%d" % i if turn == 0 else "%d-round%d" % (i, turn + 1))
            options = RunOptions(model=model, workload=workload, workload_args=tuple(workload_args),
                                 duration=seconds, no_agent=policy.profile is None, python=python,
                                 workdir=workdir, env=policy.env)
            run = Run(options)
            try:
                run.setup()
                reports = run.execute()
            finally:
                run.close()
            r = dict(row(policy, reports[0]), kind=_kind(policy))
            runs.setdefault(i, []).append(r)
            log("    %s, peak %.1fM, p99 %s ms, busy gc %s ms" % (
                r["outcome"], (r["peak_rss_kb"] or 0) / 1024.0, _cell(r["p99_ms"]),
                _cell(r["busy_gc_ms"], "%.0f")))
    return [merge(runs[i]) for i in range(1, len(columns) + 1)]
