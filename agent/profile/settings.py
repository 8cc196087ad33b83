# The settings a validated profile is made of: one immutable tuple per section.
#
# Rule settings are each rule type's own (`agent.rules.<type>.Settings`);
# `agent.profile.build` makes all of these from INI text.

from ..lean import record


class DeviceSettings(record(
        "DeviceSettings",
        "id",                       # str: as written; may hold ${hostname} etc.
        model="generic",            # str
        memory_limit_kb=None,       # Optional[int]: None: auto (cgroup, rlimit, RAM)
        ram_kb=None,                # Optional[int]: the model's RAM, for people and the emulator
        python="",                  # str: the model's Python, for people and the emulator
        exit_action="none",         # str: the auto-start entry's exit action: none, restart, reboot
)):
    # [device]: who we are and how much memory we may use.

    __slots__ = ()


class AgentSettings(record(
        "AgentSettings",
        tick=1.0,                   # float: seconds between samples/decisions
        budget=0.02,                # float: share of wall time collections may take
        budget_window=60.0,         # float
        signals=True,               # bool: SIGUSR1 -> full collection
        probe="auto",               # str
        app="",                     # str: which application on the gateway (agent/identity.py)
)):
    # [agent]: the agent's own cadence and cost limits.

    __slots__ = ()


class GcSettings(record(
        "GcSettings",
        thresholds=None,            # Optional[Tuple[int, ...]]: None: keep the interpreter's
        freeze_after=None,          # Optional[float]: None: never gc.freeze()
        tune="off",                 # str: auto: agent/tuner.py owns thresholds and freeze
        pause_budget=0.002,         # float: seconds: longest pause wanted while busy
        memory_target=0.70,         # float: share of the ceiling garbage may fill
)):
    # [gc]: start-up actions on the collector, and the tuner's settings (docs/tuner.md).

    __slots__ = ()


class ReportSettings(record(
        "ReportSettings",
        urls=("stdout:",),          # Tuple[str, ...]
        interval=60.0,              # float: seconds between telemetry samples
        batch=10,                   # int: samples per telemetry message
        prefix="gcagent",           # str: MQTT topics: PREFIX/DEVICE/{status,telemetry,event,resp,cmd}
        keepalive=60.0,             # float: under the carrier's NAT idle timeout
        compress=False,             # bool: zlib payloads (MQTT)
        window=20,                  # int: QoS 1 messages in flight at once
        replay_rate=20.0,           # float: journal messages replayed per second after an outage
        ca_file="",                 # str
        cert_file="",               # str
        key_file="",                # str
        username="",                # str
        password_file="",           # str
        password_env="",            # str
)):
    # [report]: where messages go, how telemetry is batched, and the MQTT session.

    __slots__ = ()


class BufferSettings(record(
        "BufferSettings",
        ram_bytes=256 * 1024,       # int
        flash="",                   # str: journal directory; "" keeps everything in RAM
        flash_max_bytes=2 * 1024 * 1024,  # int
        spill_after=60.0,           # float: link down this long: RAM backlog goes to flash
        sync_every=5.0,             # float: fsync at most this often (flash wear)
)):
    # [buffer]: the outbox bounds, and the journal on flash for long outages.

    __slots__ = ()


class CommandSettings(record(
        "CommandSettings",
        key_file="",                # str
        window=300.0,               # float: accepted clock difference of a command's ts
        allow=("collect", "status", "set", "snapshot", "reload"),  # Tuple[str, ...]
        settable=(),                # Tuple[str, ...]: RULE.KEY pairs `set` may change, e.g. low-memory.below
)):
    # [commands]: signed remote commands (off without a key file).

    __slots__ = ()


class Profile(record(
        "Profile",
        "path",                     # str
        "sha256",                   # str
        "text",                     # str
        "device",                   # DeviceSettings
        "agent",                    # AgentSettings
        "gc",                       # GcSettings
        "rules",                    # Tuple[Any, ...]: each rule type's Settings (agent.rules)
        "report",                   # ReportSettings
        "buffer",                   # BufferSettings
        commands=CommandSettings(), # CommandSettings
)):
    # A whole validated profile. `text` is the flattened INI (extends resolved).

    __slots__ = ()

