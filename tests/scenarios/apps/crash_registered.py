"""An application registered with the monitor (REBOOT) that crashes: the monitor reboots the device."""

import sys
import time

from digidevice import appmonitor

handle = appmonitor.register_app(5000, appmonitor.AppMonitorAction.REBOOT)
handle.refresh()
time.sleep(0.3)
sys.exit("crashed")
