# Which application on which gateway: the identity an agent reports under.
#
# A gateway runs several Python applications (DAL's scheduled scripts), each with
# its own agent, often from one profile. Reporting under the device id alone, two
# agents share an MQTT client id (the broker disconnects one for the other, again
# and again), a retained status topic and a journal folder. With `[agent] app`
# set (the stock profiles say `app = ${script}`), an agent reports as
# `DEVICE@APP`: that is its `device` field, its topics (`PREFIX/DEVICE@APP/...`),
# its MQTT client id (`gcagent-DEVICE@APP`) and its journal folder; status
# messages also carry `host` (DEVICE) and `app` (APP) for grouping. Without
# `app`, nothing changes. See docs/field.md, "Several applications on one gateway".

import os
import re
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Dict, List, Mapping, Optional, Tuple  # noqa: F401 (type comments)

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
_TEMPLATE = re.compile(r"\$\{([^}]*)\}")
_script = None   # type: Optional[str]   # set by `python -m agent run -- SCRIPT` before the agent starts


def check_app(value):  # type: (str) -> str
    # The `[agent] app` value as written (templates unfilled); ValueError says what is wrong.
    value = value.strip()
    for name in _TEMPLATE.findall(value):
        if name != "script" and not (name.startswith("env:") and len(name) > 4):
            raise ValueError("unknown template ${%s} (known: ${script}, ${env:NAME})" % name)
    literal = _TEMPLATE.sub("x", value)
    if literal and (not _NAME.match(literal) or not literal.strip(".")):
        raise ValueError("%r: an application name is 1-32 letters, digits, '.', '_' or '-'"
                         " (not dots alone: it names a folder)" % value)
    return value


def set_script(argv):  # type: (List[str]) -> None
    # Name the application from the command line the launcher runs (`-m MODULE` or a path).
    global _script
    if not argv:
        _script = None
    elif argv[0] == "-m" and len(argv) > 1:
        _script = argv[1]
    elif argv[0].startswith("-m") and len(argv[0]) > 2:
        _script = argv[0][2:]
    else:
        _script = _stem(argv[0])


def script_name():  # type: () -> str
    # The application's name: what the launcher runs, else this process's main script.
    if _script:
        return _safe(_script)
    main = getattr(sys.modules.get("__main__"), "__file__", None) or (sys.argv[0] if sys.argv else "")
    stem = _stem(main)
    return _safe(stem) if stem and stem not in ("-c", "__main__") else "python"


def resolve_app(template, environ=None):  # type: (str, Optional[Mapping[str, str]]) -> str
    # Fill `${script}` and `${env:NAME}`; '' when there is no app (or it fills to nothing).
    env = os.environ if environ is None else environ

    def fill(match):  # type: (re.Match) -> str
        name = match.group(1)
        return script_name() if name == "script" else env.get(name[4:], "")

    return _safe(_TEMPLATE.sub(fill, template or "")) if template else ""


def with_app(device_id, template, environ=None):
    # type: (str, str, Optional[Mapping[str, str]]) -> Tuple[str, Dict[str, str]]
    # (the id to report under, the status fields naming host and app).
    app = resolve_app(template, environ)
    if not app:
        return device_id, {}
    return "%s@%s" % (device_id, app), {"host": device_id, "app": app}


def app_fields(source_id):  # type: (str) -> Dict[str, str]
    # `{"host", "app"}` of a `DEVICE@APP` id; {} for a bare device id (which has no '@').
    host, sep, app = source_id.rpartition("@")
    return {"host": host, "app": app} if sep and host and app else {}


def _stem(path):  # type: (str) -> str
    base = os.path.basename(os.path.normpath(path)) if path else ""
    for suffix in (".pyz", ".pyc", ".py"):
        if base.endswith(suffix):
            return base[:-len(suffix)]
    return base


def _safe(name):  # type: (str) -> str
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", name)[:32].strip("-")
    return safe if safe.strip(".") else ""   # "." or ".." would name another folder
