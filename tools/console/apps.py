"""Applications under their device: `DEVICE@APP` ids grouped for the tables.

Each application on a gateway reports under its own id, `DEVICE@APP`
(docs/field.md, "Several applications on one gateway"). The console keeps
one entry per application, and shows each device once with its applications
beneath it (docs/console.md). Pure functions: rows in, rows out.
"""

import re
from typing import Any, Dict, Iterable, List, Optional, Tuple

# The agent's rule for an application name (docs/field.md): 1-32 of these.
APP_NAME = re.compile(r"[A-Za-z0-9._-]{1,32}\Z")


def split_id(device: str) -> Tuple[Optional[str], Optional[str]]:
    """(host, app) of a `DEVICE@APP` id; (None, None) for a plain id."""
    host, at, app = device.rpartition("@")
    if at and host and APP_NAME.match(app):
        return host, app
    return None, None


def grouped(rows: Iterable[Dict[str, Any]]) -> List[Tuple[str, Optional[Dict[str, Any]]]]:
    """(label, row) in `rows`' order, each device's applications right after it.

    A device comes where its first row comes; its label is its id, its row
    the plain id's row if there is one (None otherwise); each application
    follows as `  @APP`, in `rows`' order. Plain ids stand alone.
    """
    rows = list(rows)
    apps: Dict[str, List[Dict[str, Any]]] = {}
    plain: Dict[str, Dict[str, Any]] = {}
    for r in rows:
        host, _ = split_id(r["device"])
        if host is not None:
            apps.setdefault(host, []).append(r)
        else:
            plain[r["device"]] = r
    out: List[Tuple[str, Optional[Dict[str, Any]]]] = []
    done = set()
    for r in rows:
        host, _ = split_id(r["device"])
        key = host if host is not None else r["device"]
        if key in done:
            continue
        done.add(key)
        if key in apps:
            out.append((key, plain.get(key)))
            out.extend(("  @" + str(split_id(a["device"])[1]), a) for a in apps[key])
        else:
            out.append((key, r))
    return out
