"""The live view's loop: redraw in place, follow the keys, or print now and then without a terminal.

`watch` and `make demo` both run it. `frame()` is one picture: the fleet
table (with the selected row) or one device in detail.
"""

import time
from typing import Any, List, Optional

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from . import fleet, leaks, view
from .keys import HELP, Keys
from .safetext import clean

NON_TTY_EVERY = 5.0
FRAME_ROWS = 200   # a terminal shows fewer; the summary line counts the whole fleet


class Nav(object):
    """Which device is selected in the table, and which one is open in detail."""

    def __init__(self, keys: bool, device: Optional[str] = None) -> None:
        self.keys = keys
        self.order: List[str] = []
        self.selected: Optional[str] = None
        self.open: Optional[str] = device

    def press(self, key: str) -> bool:
        """Apply one key; False when it means quit."""
        if key == "quit":
            return False
        if self.open:
            if key == "back":
                self.open = None
            return True
        if self.order:
            i = self.order.index(self.selected) if self.selected in self.order else 0
            if key == "up":
                self.selected = self.order[max(0, i - 1)]
            elif key == "down":
                self.selected = self.order[min(len(self.order) - 1, i + 1)]
            elif key == "enter":
                self.open = self.selected
        return True


def frame(session, default_interval: float, width: int = 80, nav: Optional[Nav] = None,
          device: Optional[str] = None) -> Any:
    """One picture of what `session` has recorded: the fleet, or `device` in detail."""
    session.ingestor.flush()
    now = time.time()
    store = session.store
    shown = nav.open if nav is not None else device
    hint = nav is not None and nav.keys
    if shown:
        found = store.device(shown)
        if found is not None:
            found = leaks.annotate(store, [found])[0]
        if found is None:   # Text: device ids are not markup (safetext.py)
            return Text("no device %s yet (known: %s)" % (
                clean(shown), ", ".join(clean(d["device"]) for d in store.recent_devices(20))
                or "none"))
        detail = view.device_detail(found, store.samples(shown, limit=120), store.events(shown, 30),
                                    store.alerts(shown, 20), now, default_interval)
        return Group(detail, Text(HELP, style="dim")) if hint else detail
    shown_fleet = _riskiest(session, now, default_interval)
    devices = shown_fleet.rows
    if nav is not None:
        nav.order = view.shown_order(devices, now, default_interval)
        if nav.order and nav.selected not in nav.order:
            nav.selected = nav.order[0]
    title = fleet.summary(shown_fleet, session.ingestor.stats)
    if session.embedded is not None:
        title += "\nbroker: %s" % session.broker_url
    table = view.fleet_table(devices, now, title, default_interval, width,
                             selected=nav.selected if hint else None)
    return Group(table, Text(HELP, style="dim")) if hint else table


def _riskiest(session, now: float, default_interval: float) -> "fleet.Fleet":
    """The riskiest FRAME_ROWS (fleet.py), re-read at most every 10x what reading them costs.

    A few hundred devices take milliseconds and are read every frame; 100,000
    take over a second, and the view then redraws from the last reading
    rather than spend a core re-reading the fleet every second.
    """
    started = time.monotonic()
    cached = getattr(session, "_riskiest", None)
    if cached is not None and started < cached[0]:
        return cached[1]
    shown = fleet.top(fleet.devices(session.store), now, FRAME_ROWS, default_interval)
    cost = time.monotonic() - started
    session._riskiest = (started + 10 * cost if cost > 0.1 else 0.0, shown)
    return shown


def run(session, console: Console, deadline: float, default_interval: float,
        device: Optional[str] = None, refresh: float = 1.0) -> None:
    """Show the fleet until `deadline` (time.monotonic()), q, or Ctrl-C (KeyboardInterrupt)."""
    if not console.is_terminal:   # a log or a pipe: a frame now and then, not a redraw
        while time.monotonic() < deadline:
            time.sleep(min(NON_TTY_EVERY, max(0.0, deadline - time.monotonic())))
            console.print(frame(session, default_interval, console.width, device=device))
        return
    with Keys() as keys:
        nav = Nav(keys.fd is not None, device)
        with Live(frame(session, default_interval, console.width, nav), console=console,
                  refresh_per_second=4, screen=False, transient=False) as live:
            going = True
            while going and time.monotonic() < deadline:
                pressed = keys.wait(min(refresh, max(0.0, deadline - time.monotonic())))
                going = all([nav.press(k) for k in pressed])
                live.update(frame(session, default_interval, console.width, nav))
