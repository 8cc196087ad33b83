"""An application registered with the monitor (REBOOT) that crashes: the monitor reboots the device."""

import sys
import time

from digidevice import appmonitor

handle = appmonitor.register_app(1000, appmonitor.AppMonitorAction.REBOOT)   # acts 1 s after the last refresh
handle.refresh()
time.sleep(0.3)
sys.exit("crashed")
