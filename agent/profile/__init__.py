# Device profiles: INI text -> validated, immutable settings.
#
# One module per concept:
#
# - `settings`: the tuples a profile is made of (`Profile`, `DeviceSettings`, ...);
# - `schema`: the sections' keys and their parsers (shared parsers: `agent.values`;
#   rule keys: each rule type in `agent.rules`);
# - `reading`: INI text and files -> located values, `extends`, files in a .pyz;
# - `build`: validation into a `Profile` (`load`, `loads`) and `describe`;
# - `deviceid`: `${hostname}` / `${serial}` / `${env:NAME}` in the device id.
#
# Callers import from here: ``from agent.profile import load, Profile``.

from ..lean import sha256_hex
from .build import RULE_PREFIX, describe, load, loads
from .deviceid import resolve_device_id
from .schema import COMMANDS, EXIT_ACTIONS, PROBES, SCHEMA
from .settings import (
    AgentSettings,
    BufferSettings,
    CommandSettings,
    DeviceSettings,
    GcSettings,
    Profile,
    ReportSettings,
)

__all__ = [
    "COMMANDS", "EXIT_ACTIONS", "PROBES", "RULE_PREFIX", "SCHEMA",
    "AgentSettings", "BufferSettings", "CommandSettings", "DeviceSettings", "GcSettings",
    "Profile", "ReportSettings",
    "describe", "load", "loads", "resolve_device_id", "sha256_hex",
]
