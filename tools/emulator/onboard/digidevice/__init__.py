"""An emulated `digidevice` package, as gc-emulator puts it on a device's sys.path.

Written from Digi's published type stubs (digidotcom/digi-python-resources,
typehints/common/digidevice): the same module names, functions, classes and
exceptions, so an application (and gc-agent) imports it exactly as on a DAL
device. Only what the emulator models is here: runt (with the device's RAM
as the emulator computes it), datapoint (recorded for the emulator to read),
cli (`show system`), appmonitor (a watchdog the emulator enforces).

Standard library only, Python 3.6+, like the device's own Python. The
emulator names this device's folder in the environment variable
GCEMU_DEVICE_DIR; without it, the package says so on first use.
"""

import os


def _device_dir() -> str:
    folder = os.environ.get("GCEMU_DEVICE_DIR", "")
    if not folder:
        raise RuntimeError("digidevice (emulated): GCEMU_DEVICE_DIR is not set; "
                           "run this under gc-emulator")
    return folder
