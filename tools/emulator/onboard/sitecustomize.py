"""Start-up hook of every emulated device's Python (gc-emulator puts this folder first on PYTHONPATH).

It installs the flash-full fault (tools/emulator/flashfull.py) when the
emulator names a journal directory and a flag file in the environment; the
fault does nothing until the flag file exists. Loaded by path, so the
device's sys.path gains nothing but the emulated digidevice package.
"""

import os

if os.environ.get("GC_EMULATOR_FLASH_FULL"):
    try:
        import importlib.util
        _path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "flashfull.py")
        _spec = importlib.util.spec_from_file_location("flashfull", _path)
        _module = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(_module)
        _module.install_from_env()
    except Exception as _exc:   # a missing fault must never stop the device's script
        import sys
        sys.stderr.write("gc-emulator: flash-full fault not installed: %s\n" % _exc)

if os.environ.get("GC_EMULATOR_POLICY"):
    # gc-emulator compare: a peer's gc policy (tools/emulator/gcpolicy.py) in this process
    try:
        import importlib.util
        _path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gcpolicy.py")
        _spec = importlib.util.spec_from_file_location("gcpolicy", _path)
        _module = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(_module)
        _module.install_from_env()
    except Exception as _exc:
        import sys
        sys.stderr.write("gc-emulator: gc policy not installed: %s\n" % _exc)
