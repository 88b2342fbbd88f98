"""The front door's settings in ``config.yaml`` that go beyond one number: each agency's own
quotas and networks, and the PROXY protocol behind a load balancer.

```yaml
agency_settings:
  kemensos:
    quota_bytes: 10737418240     # stored at once in its inbox (instead of sftp_quota_bytes)
    quota_files: 200             # ... (instead of sftp_quota_files)
    period_hours: 24             # a rolling window for the two below
    period_bytes: 53687091200    # received within the window
    period_files: 500
    allow_from: ["10.20.0.0/16", "2001:db8:20::/48"]
proxy_protocol: false
proxy_trusted: ["10.0.0.5/32"]
```

Read here (floor 1) so that the SFTP server (floor 5) and the daemon share one checked value.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchanged.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: an agency id as ``agency add`` takes it
AGENCY_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
#: most networks one list may hold (each login is checked against all of them)
MAX_NETWORKS = 256
AGENCY_KEYS = ("quota_bytes", "quota_files", "period_hours", "period_bytes", "period_files",
               "allow_from")


@dataclass(frozen=True)
class AgencySettings:
    """One agency's front-door settings; ``None`` means the exchange-wide default."""

    quota_bytes: int | None = None
    quota_files: int | None = None
    #: the rolling window the period quotas count in
    period_hours: int = 24
    period_bytes: int | None = None
    period_files: int | None = None
    #: where its logins may come from; empty: anywhere
    allow_from: tuple[Network, ...] = ()

    def allows(self, address: str) -> bool:
        """May a login of this agency come from ``address``?"""
        if not self.allow_from:
            return True
        ip = parse_address(address)
        return ip is not None and any(ip in net for net in self.allow_from
                                      if net.version == ip.version)


def parse_address(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as a peer gives it (an IPv4-mapped IPv6 address is its IPv4 address)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def in_networks(address: str, networks: tuple[Network, ...]) -> bool:
    ip = parse_address(address)
    return ip is not None and any(ip in n for n in networks if n.version == ip.version)


def networks(path: Path, key: str, value: object) -> tuple[Network, ...]:
    """A list of CIDR networks (a bare address is its /32 or /128)."""
    if not isinstance(value, list) or len(value) > MAX_NETWORKS \
            or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: {key} must be a list of at most {MAX_NETWORKS} networks "
                          "(CIDR, e.g. 10.20.0.0/16)")
    out = []
    for text in value:
        try:
            out.append(ipaddress.ip_network(text.strip(), strict=True))
        except ValueError:
            raise ConfigError(f"{path}: {key}: {text!r} is not a network in CIDR notation "
                              "(host bits must be zero, e.g. 10.20.0.0/16)") from None
    return tuple(out)


def agency_settings(path: Path, key: str, value: object) -> dict[str, AgencySettings]:
    """``agency_settings``: a mapping of agency id to its settings."""
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {key} must be a mapping of agency id to settings")
    out: dict[str, AgencySettings] = {}
    for agency, raw in value.items():
        if not isinstance(agency, str) or not AGENCY_RE.fullmatch(agency):
            raise ConfigError(f"{path}: {key}: {agency!r} is not an agency id")
        where = f"{key}.{agency}"
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: {where} must be a mapping of settings")
        out[agency] = _one_agency(path, where, raw)
    return out


def _one_agency(path: Path, where: str, raw: dict[Any, Any]) -> AgencySettings:
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in AGENCY_KEYS:
            raise ConfigError(f"{path}: {where}: unknown setting {name!r} "
                              f"(known: {', '.join(AGENCY_KEYS)})")
        if name == "allow_from":
            values[name] = networks(path, f"{where}.allow_from", value)
            continue
        top = 24 * 366 if name == "period_hours" else 2**62
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= top:
            raise ConfigError(f"{path}: {where}.{name} must be a whole number from 1 to {top}")
        values[name] = value
    return AgencySettings(**values)


def proxy_protocol(path: Path, key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: {key} must be true or false")
    return value
