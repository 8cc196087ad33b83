"""The settings a validated profile is made of: one immutable tuple per section.

Rule settings are each rule type's own (`agent.rules.<type>.Settings`);
`agent.profile.build` makes all of these from INI text.
"""

from typing import Any, NamedTuple, Optional, Tuple


class DeviceSettings(NamedTuple):
    """[device]: who we are and how much memory we may use."""

    id: str                          # as written; may hold ${hostname} etc.
    model: str = "generic"
    memory_limit_kb: Optional[int] = None   # None: auto (cgroup, rlimit, RAM)
    ram_kb: Optional[int] = None     # the model's RAM, for people and the emulator
    python: str = ""                 # the model's Python, for people and the emulator
    exit_action: str = "none"        # the auto-start entry's exit action: none, restart, reboot


class AgentSettings(NamedTuple):
    """[agent]: the agent's own cadence and cost limits."""

    tick: float = 1.0                # seconds between samples/decisions
    budget: float = 0.02             # share of wall time collections may take
    budget_window: float = 60.0
    signals: bool = True             # SIGUSR1 -> full collection
    probe: str = "auto"


class GcSettings(NamedTuple):
    """[gc]: start-up actions on the collector."""

    thresholds: Optional[Tuple[int, ...]] = None   # None: keep the interpreter's
    freeze_after: Optional[float] = None           # None: never gc.freeze()
    tune: str = "off"                              # auto: agent/tuner.py owns thresholds and freeze
    pause_budget: float = 0.002                    # seconds: longest pause wanted while busy
    memory_target: float = 0.70                    # share of the ceiling garbage may fill


class ReportSettings(NamedTuple):
    """[report]: where messages go, how telemetry is batched, and the MQTT session."""

    urls: Tuple[str, ...] = ("stdout:",)
    interval: float = 60.0           # seconds between telemetry samples
    batch: int = 10                  # samples per telemetry message
    prefix: str = "gcagent"          # MQTT topics: PREFIX/DEVICE/{status,telemetry,event,resp,cmd}
    keepalive: float = 60.0          # under the carrier's NAT idle timeout
    compress: bool = False           # zlib payloads (MQTT)
    window: int = 20                 # QoS 1 messages in flight at once
    replay_rate: float = 20.0        # journal messages replayed per second after an outage
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    username: str = ""
    password_file: str = ""
    password_env: str = ""


class BufferSettings(NamedTuple):
    """[buffer]: the outbox bounds, and the journal on flash for long outages."""

    ram_bytes: int = 256 * 1024
    flash: str = ""                  # journal directory; "" keeps everything in RAM
    flash_max_bytes: int = 2 * 1024 * 1024
    spill_after: float = 60.0        # link down this long: RAM backlog goes to flash
    sync_every: float = 5.0          # fsync at most this often (flash wear)


class CommandSettings(NamedTuple):
    """[commands]: signed remote commands (off without a key file)."""

    key_file: str = ""
    window: float = 300.0            # accepted clock difference of a command's ts
    allow: Tuple[str, ...] = ("collect", "status", "set", "snapshot", "reload")
    settable: Tuple[str, ...] = ()   # RULE.KEY pairs `set` may change, e.g. low-memory.below


class Profile(NamedTuple):
    """A whole validated profile. `text` is the flattened INI (extends resolved)."""

    path: str
    sha256: str
    text: str
    device: DeviceSettings
    agent: AgentSettings
    gc: GcSettings
    rules: Tuple[Any, ...]           # each rule type's Settings (agent.rules)
    report: ReportSettings
    buffer: BufferSettings
    commands: CommandSettings = CommandSettings()
