"""`make demo`'s three devices and their profiles, apart from the demo's console view, so
the bench (which never imports the console: setup.cfg) runs the same fleet."""

import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROFILE = os.path.join(REPO, "device_profiles", "emulator.ini")

# Three devices: (name, model, memory ceiling, workload, its arguments, report batch). Different
# models, ceilings and workloads, so the table has something to sort by risk. The emulator
# names each device after its model (ix20-01, tx64-01, ex15-01).
FLEET = (
    ("demo-ix20", "IX20", "64M", "cycles", ["--rate", "20", "--gc-off"], 2),
    ("demo-tx64", "TX64", "128M", "bigfree", [], 3),
    ("demo-ex15", "EX15", "96M", "server", [], 2),
)


def demo_profile(folder: str, device: str, model: str, ceiling: str, batch: int) -> str:
    """A device profile extending the emulator's (fast ticks, low-memory rules that act in seconds)."""
    path = os.path.join(folder, device + ".ini")
    with open(path, "w") as handle:
        handle.write("[profile]\nextends = %s\ndescription = make demo: %s\n\n"
                     "[device]\nid = %s\nmodel = %s\nmemory_limit = %s\n\n"
                     "[report]\nurls = stdout:\ninterval = 1s\nbatch = %d\nkeepalive = 5s\n"
                     % (PROFILE, model, device, model, ceiling, batch))
    return path
