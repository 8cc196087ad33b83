"""An application that uses digidevice as on a DAL device, then hangs.

It prints what `cli.execute("show system")` and `runt.get("system.ram.available")`
say, registers with the application monitor (500 ms, RESTART with its own command
line as the restart command), refreshes for
about a second, then stops refreshing as a hung application would.
"""

import os
import time

from digidevice import appmonitor, cli, runt

runt.start()
print("ram available: %s" % runt.get("system.ram.available"))
print(cli.execute("show system"), end="")
handle = appmonitor.register_app(500, appmonitor.AppMonitorAction.RESTART,
                                 os.environ["GCEMU_SCRIPT_COMMAND"])   # start this script again
for _ in range(10):
    handle.refresh()
    time.sleep(0.1)
print("hanging now", flush=True)
time.sleep(60)
