"""Workload: large blocks that become garbage inside reference cycles, a few at a time.

CPython's automatic collector starts on object counts (700 new container
objects for a young collection, by default), not on bytes. Each block here is
one `--block` sized bytearray held by a two-object cycle, so 8 MB a second of
garbage is only a handful of objects: the automatic collector almost never
runs and the blocks pile up, though nothing refers to them. Only a collection
frees them (the summary's `freed` counts blocks actually given back). Run it
alone:

    python tools/emulator/workloads/bigfree.py --block 4M --rate 8 --seconds 10

and with the agent:

    python -m agent run --profile device_profiles/emulator.ini -- \\
        tools/emulator/workloads/bigfree.py --block 4M --rate 8 --seconds 10

It prints a progress line a second (not with --quiet), a summary line for
people, and, last, the same as one JSON object for the emulator: the common
fields (see tools/emulator/workloads/__init__.py) and blocks, garbage_mb,
freed, live_blocks.
"""

import argparse
import gc
import json
import os
import platform
import resource
import sys
import time


def rss_kb() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def summary(name: str, started: float, stats_before: list, **fields) -> str:
    """The final JSON line every workload prints: common fields, then its own."""
    after = gc.get_stats()
    out = {"workload": name, "seconds": round(time.monotonic() - started, 3),
           "peak_rss_kb": max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, rss_kb()),
           "rss_kb": rss_kb(),
           "gc_enabled": gc.isenabled(),
           "collections": [a["collections"] - b["collections"] for a, b in zip(after, stats_before)],
           "python": platform.python_version()}
    out.update(fields)
    return json.dumps(out, sort_keys=False)


def size(text: str) -> int:
    """'4M' -> bytes (binary units, as in the profiles)."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    body = text.strip().upper().rstrip("B")
    unit = body[-1:] if body[-1:] in "KMG" else ""
    try:
        return int(float(body[:len(body) - len(unit)]) * units[unit])
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a size (examples: 512K, 4M)" % text)


class Block(object):
    """A large payload inside a cycle (block -> holder -> block); counts its own end."""

    freed = 0
    __slots__ = ("holder", "payload")

    def __init__(self, nbytes: int) -> None:
        self.payload = bytearray(nbytes)     # zero-filled, so every page is touched: real RSS
        self.holder = [self]

    def __del__(self) -> None:
        Block.freed += 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--block", type=size, default=4 << 20, help="bytes per block (default 4M)")
    parser.add_argument("--rate", type=float, default=8.0, help="MB of blocks a second (default 8)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run")
    parser.add_argument("--gc-off", action="store_true",
                        help="call gc.disable() first, as some libraries do")
    parser.add_argument("--quiet", action="store_true", help="print only the summary lines")
    args = parser.parse_args(argv)
    if args.gc_off:
        gc.disable()
    every = args.block / (args.rate * 1024 * 1024)   # seconds between blocks
    stats_before = gc.get_stats()
    start = time.monotonic()
    made = peak = 0
    next_block = next_report = start
    while time.monotonic() - start < args.seconds:
        now = time.monotonic()
        while next_block <= now:
            Block(args.block)            # unreachable at once; only a collection frees it
            made += 1
            next_block += every
        peak = max(peak, rss_kb())
        if not args.quiet and now >= next_report:
            next_report += 1.0
            print("t=%4.1fs blocks=%d freed=%d rss=%dK" % (now - start, made, Block.freed, rss_kb()),
                  flush=True)
        time.sleep(min(0.02, max(0.0, next_block - time.monotonic())))
    garbage_mb = made * args.block / 2.0 ** 20
    print("bigfree: made %d blocks (%.0f MB), %d freed, peak RSS %dK"
          % (made, garbage_mb, Block.freed, peak), flush=True)
    print(summary("bigfree", start, stats_before, blocks=made, garbage_mb=round(garbage_mb, 1),
                  freed=Block.freed, live_blocks=made - Block.freed), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
