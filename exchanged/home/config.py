"""The daemon's settings: ``config.yaml`` read and checked, and the text ``init`` writes."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from exchanged.errors import ConfigError
from exchanged.home.frontsettings import (
    AgencySettings,
    Network,
    agency_settings,
    networks,
    proxy_protocol,
)
from exchanged.home.hooksettings import HookSettings, hooks
from exchanged.home.paths import Home

LISTEN_RE = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):(?P<port>\d{1,5})")


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Listen:
        m = LISTEN_RE.fullmatch(text.strip())
        if not m or not 0 <= int(m["port"]) <= 65535:
            raise ConfigError(f"listen address {text!r} is not HOST:PORT (e.g. 0.0.0.0:2222)")
        return cls(m["host"].strip("[]"), int(m["port"]))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class Config:
    """The daemon's settings, from ``config.yaml``."""

    name: str = "exchanged"
    listen: Listen = field(default_factory=lambda: Listen("127.0.0.1", 2222))
    #: agreements' dates are dates in this zone (the agreement was signed in Jakarta)
    timezone: str = "Asia/Jakarta"
    #: batches processed at once
    workers: int = 2
    #: largest upload accepted from any agency, before the flow's own limit
    max_upload_bytes: int = 20 * 1024**3
    #: the largest plaintext a batch may decrypt to when its flow sets no max_bytes
    #: (a compression bomb stops here)
    max_plaintext_bytes: int = 64 * 1024**3
    log_format: str = "text"
    log_level: str = "info"
    #: how often the daemon signs a ledger checkpoint and delivers it to every agency
    checkpoint_interval_hours: int = 24
    #: ... and also as soon as this many entries were written since the last one, or once
    #: this many minutes have passed since it with an entry written meanwhile (0: never), so
    #: that the newest entries are not long without a signed checkpoint that holds them
    checkpoint_every_entries: int = 1000
    checkpoint_every_minutes: int = 60
    #: where Prometheus metrics are served ("" for nowhere); keep it on localhost
    metrics_listen: str = "127.0.0.1:9464"
    #: "embedded": the daemon's own SFTP server; "openssh": the system's sshd serves agencies
    #: chrooted in openssh_root, and the daemon watches their folders
    front_door: str = "embedded"
    openssh_root: str = "/srv/exchanged"
    #: the daemon's system user, added to each agency's group in OpenSSH mode
    openssh_daemon_user: str = "exchanged"
    #: each agency's inbox quota in the embedded front door: bytes and files being written,
    #: held under a temporary name, or waiting for an answer (the defaults of
    #: exchanged.sftp.limits.Limits, which this module cannot import: sftp imports it)
    sftp_quota_bytes: int = 64 * 1024**3
    sftp_quota_files: int = 1000
    #: the embedded front door's door (see docs/security.md, "Silent connections"):
    #: connections at once, of which some are kept for trusted addresses (the safelist, and
    #: addresses an agency logged in from before), so that strangers cannot fill it
    sftp_max_connections: int = 64
    sftp_reserved_connections: int = 16
    #: connections still logging in, per address and per IPv6 /64
    sftp_max_unauthenticated_per_address: int = 8
    sftp_max_unauthenticated_per_network: int = 32
    #: seconds a connection from an address that is not trusted has to send its SSH banner
    #: and finish the key exchange (a trusted one has the login's 20 s)
    sftp_handshake_seconds: int = 10
    #: networks (CIDR, e.g. 10.20.0.0/16, 2001:db8::/48) the defender never bans, trusted
    #: for the reserved connections: the exchange's own monitoring, agencies' gateways
    sftp_safelist: tuple[str, ...] = ()
    #: the waits (seconds) before a batch that must wait (its outcome cannot be sealed or
    #: delivered now) is tried again; after the last, the batch is shunted for an
    #: administrator ('exchanged batch requeue'), so that no retry goes on for ever
    retry_delays: tuple[float, ...] = (10.0, 60.0, 300.0, 900.0, 900.0)
    #: how gpg compresses the answers it seals: one of COMPRESSION's names for every agency,
    #: or a mapping of agency ids (and "default") to names. "fast" by default: gpg's own
    #: level (6) spends 3x the time of level 1 for answers about 4 % smaller
    #: (docs/performance.md), and sealing is most of an answer's time
    answer_compression: tuple[tuple[str, str], ...] = (("default", "fast"),)
    #: each agency's own front-door settings (quotas, a rolling period's quotas, the
    #: networks its logins may come from): exchanged.home.frontsettings
    agency_settings: Mapping[str, AgencySettings] = field(default_factory=dict)
    #: the PROXY protocol (v1 and v2) from the trusted proxies behind a load balancer
    proxy_protocol: bool = False
    proxy_trusted: tuple[Network, ...] = ()
    #: event hooks (exchanged.home.hooksettings) and the waits before each retry of one
    hooks: tuple[HookSettings, ...] = ()
    hook_retry_delays: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0)
    #: RFC 3161 trusted timestamps on checkpoints (off while empty): the timestamping
    #: authority's URL, and a PEM file of its certificate chain up to the root the exchange
    #: trusts (relative paths are within the home); a failed authority blocks nothing:
    #: it is tried again every timestamp_retry_minutes
    timestamp_url: str = ""
    timestamp_ca: str = ""
    timestamp_timeout_seconds: int = 10
    timestamp_retry_minutes: int = 15

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def compress_level(self, agency: str) -> int:
        """The zlib level (0: none) at which answers for ``agency`` are sealed."""
        chosen = dict(self.answer_compression)
        return COMPRESSION[chosen.get(agency, chosen.get("default", "fast"))]


#: the names an administrator gives answer compression, and gpg's --compress-level for each
COMPRESSION = {"none": 0, "fast": 1, "default": 6, "best": 9}


CONFIG_KEYS = {
    "name": str,
    "listen": str,
    "timezone": str,
    "workers": int,
    "max_upload_bytes": int,
    "max_plaintext_bytes": int,
    "log_format": str,
    "log_level": str,
    "checkpoint_interval_hours": int,
    "checkpoint_every_entries": int,
    "checkpoint_every_minutes": int,
    "metrics_listen": str,
    "front_door": str,
    "openssh_root": str,
    "openssh_daemon_user": str,
    "sftp_quota_bytes": int,
    "sftp_quota_files": int,
    "sftp_max_connections": int,
    "sftp_reserved_connections": int,
    "sftp_max_unauthenticated_per_address": int,
    "sftp_max_unauthenticated_per_network": int,
    "sftp_handshake_seconds": int,
    "sftp_safelist": tuple,
    "retry_delays": list,
    "answer_compression": dict,
    "agency_settings": dict,
    "proxy_protocol": bool,
    "proxy_trusted": list,
    "hooks": list,
    "hook_retry_delays": list,
    "timestamp_url": str,
    "timestamp_ca": str,
    "timestamp_timeout_seconds": int,
    "timestamp_retry_minutes": int,
}

#: settings with a structure of their own, each read by its parser
PARSERS: Mapping[str, Callable[[Path, str, object], object]] = {
    "agency_settings": agency_settings,
    "proxy_protocol": proxy_protocol,
    "proxy_trusted": networks,
    "hooks": hooks,
    "answer_compression": lambda path, _key, value: _compression(path, value),
    "sftp_safelist": lambda path, key, value: () if value is None else tuple(
        str(n) for n in networks(path, key, value)),
}


def load_config(home: Home) -> Config:
    """Read and check ``config.yaml``; unknown keys and wrong types are errors."""
    home.require()
    try:
        raw = yaml.safe_load(home.config_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{home.config_file} cannot be read: {type(e).__name__}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{home.config_file} must be a mapping of settings")
    config = Config(**_typed_values(home.config_file, raw))
    problem = _problem(config)
    if problem is not None:
        raise ConfigError(f"{home.config_file}: {problem}")
    return config


def _typed_values(path: Path, raw: dict[Any, Any]) -> dict[str, Any]:
    """The settings, each a known key of the right type (listen addresses parsed)."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        kind = CONFIG_KEYS.get(str(key))
        if kind is None:
            known = ", ".join(sorted(CONFIG_KEYS))
            raise ConfigError(f"{path}: unknown setting {key!r} (known: {known})")
        parser = PARSERS.get(str(key))
        if parser is not None:
            values[str(key)] = parser(path, str(key), value)
            continue
        if kind is list:
            values[str(key)] = _seconds_list(path, str(key), value)
            continue
        if not isinstance(value, kind) or isinstance(value, bool):
            noun = "a whole number" if kind is int else "text"
            raise ConfigError(f"{path}: {key} must be {noun}")
        values[str(key)] = value
    if "listen" in values:
        values["listen"] = Listen.parse(values["listen"])
    if values.get("metrics_listen"):
        Listen.parse(values["metrics_listen"])
    return values


def _seconds_list(path: Path, key: str, value: object) -> tuple[float, ...]:
    """A list of 1 to 20 waits in seconds, each from 0.1 to a day."""
    if (not isinstance(value, list) or not 1 <= len(value) <= 20
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                       and 0.1 <= v <= 86400 for v in value)):
        raise ConfigError(f"{path}: {key} must be a list of 1 to 20 waits in seconds "
                          "(0.1 to 86400 each)")
    return tuple(float(v) for v in value)


def _compression(path: Path, value: object) -> tuple[tuple[str, str], ...]:
    """``answer_compression``: a name for every agency, or agency ids (and "default")
    mapped to names."""
    chosen = {"default": value} if isinstance(value, str) else value
    names = " | ".join(COMPRESSION)
    if (not isinstance(chosen, dict) or not chosen
            or not all(isinstance(k, str) and v in COMPRESSION for k, v in chosen.items())):
        raise ConfigError(f"{path}: answer_compression must be one of {names}, or a mapping "
                          f"of agency ids (and default) to one of them")
    return tuple(sorted((str(k), str(v)) for k, v in chosen.items()))


def _problem(config: Config) -> str | None:
    """What is wrong with the settings' values, if anything."""
    try:
        ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown timezone {config.timezone!r}"
    checks = (
        (1 <= config.workers <= 64, "workers must be between 1 and 64"),
        (config.front_door in ("embedded", "openssh"), "front_door must be embedded or openssh"),
        (config.front_door != "openssh" or Path(config.openssh_root).is_absolute(),
         "openssh_root must be an absolute path"),
        (1 <= config.checkpoint_interval_hours <= 24 * 31,
         "checkpoint_interval_hours must be 1 to 744"),
        (0 <= config.checkpoint_every_entries <= 10**9,
         "checkpoint_every_entries must be 0 (never) to 1000000000"),
        (0 <= config.checkpoint_every_minutes <= 24 * 60 * 31,
         "checkpoint_every_minutes must be 0 (never) to 44640"),
        (config.sftp_quota_bytes >= 1 and config.sftp_quota_files >= 1,
         "sftp_quota_bytes and sftp_quota_files must be at least 1"),
        (not config.timestamp_url or config.timestamp_url.startswith(("http://", "https://")),
         "timestamp_url must be an http:// or https:// URL"),
        (not config.timestamp_url or bool(config.timestamp_ca),
         "timestamp_url needs timestamp_ca (the authority's certificate chain, PEM)"),
        (1 <= config.timestamp_timeout_seconds <= 300,
         "timestamp_timeout_seconds must be 1 to 300"),
        (1 <= config.timestamp_retry_minutes <= 24 * 60,
         "timestamp_retry_minutes must be 1 to 1440"),
        (1 <= config.sftp_max_connections <= 100_000
         and 0 <= 2 * config.sftp_reserved_connections <= config.sftp_max_connections,
         "sftp_max_connections must be 1 to 100000, sftp_reserved_connections 0 to half of it"),
        (1 <= config.sftp_max_unauthenticated_per_address
         <= config.sftp_max_unauthenticated_per_network,
         "sftp_max_unauthenticated_per_address must be at least 1 and at most "
         "sftp_max_unauthenticated_per_network"),
        (1 <= config.sftp_handshake_seconds <= 120, "sftp_handshake_seconds must be 1 to 120"),
        (config.log_format in ("text", "json"), "log_format must be text or json"),
        (not config.proxy_protocol or bool(config.proxy_trusted),
         "proxy_protocol needs proxy_trusted: the addresses of the load balancers"),
        (config.log_level in ("debug", "info", "warning", "error"),
         "log_level must be debug, info, warning or error"),
    )
    return next((message for ok, message in checks if not ok), None)


def config_text(name: str, listen: Listen) -> str:
    return (
        "# exchanged settings; see README.md, 'Configuration'.\n"
        f"name: {yaml.safe_dump(name).splitlines()[0]}\n"
        f'listen: "{listen}"\n'
        "# agreements' dates are read in this zone\n"
        "timezone: Asia/Jakarta\n"
        "# batches processed at the same time\n"
        "workers: 2\n"
        "# the largest upload any agency may send, before each flow's own limit\n"
        f"max_upload_bytes: {20 * 1024**3}\n"
        "# text or json (one object per line, for journald and log shippers)\n"
        "log_format: text\n"
        "log_level: info\n"
        "# a signed ledger checkpoint for every agency's /outbox/ledger/, this often\n"
        "checkpoint_interval_hours: 24\n"
        "# and also after this many new entries, or this many minutes after the last one if\n"
        "# anything was written since (0: never)\n"
        "checkpoint_every_entries: 1000\n"
        "checkpoint_every_minutes: 60\n"
        "# Prometheus metrics (http://HOST:PORT/metrics); \"\" turns them off\n"
        'metrics_listen: "127.0.0.1:9464"\n'
    )
