"""The event hooks' settings in ``config.yaml`` (``hooks`` and ``hook_retry_delays``).

```yaml
hooks:
  - name: ops
    events: [batch.rejected, ban, intake.stopped, intake.resumed, agreement.ending]
    url: "https://alerts.example.go.id/exchanged"   # POST of a JSON document
    timeout_seconds: 10
  - name: ticket
    events: [batch.answered]
    command: ["/usr/local/bin/exchanged-ticket", "--queue", "pertukaran"]
    env: {TICKET_PROJECT: "PDK"}
    timeout_seconds: 30
hook_retry_delays: [5, 30, 120, 600]
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from exchanged.errors import ConfigError

#: the events a hook may ask for (docs: README.md, 'Event hooks')
EVENTS = ("batch.answered", "batch.rejected", "ban", "intake.stopped", "intake.resumed",
          "agreement.ending")
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
ENV_RE = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")
MAX_HOOKS = 16
HOOK_KEYS = ("name", "events", "url", "command", "env", "timeout_seconds")


@dataclass(frozen=True)
class HookSettings:
    """One hook: a URL to POST to, or a command to run (never both)."""

    name: str
    events: tuple[str, ...]
    url: str = ""
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    timeout_seconds: float = 10.0


def hooks(path: Path, key: str, value: object) -> tuple[HookSettings, ...]:
    if not isinstance(value, list) or len(value) > MAX_HOOKS:
        raise ConfigError(f"{path}: {key} must be a list of at most {MAX_HOOKS} hooks")
    out = tuple(_one(path, f"{key}[{i}]", raw) for i, raw in enumerate(value))
    names = [h.name for h in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: {key}: every hook needs a name of its own")
    return out


def _one(path: Path, where: str, raw: object) -> HookSettings:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: {where} must be a mapping (name, events, url or command)")
    unknown = [k for k in raw if k not in HOOK_KEYS]
    if unknown:
        raise ConfigError(f"{path}: {where}: unknown setting {unknown[0]!r} "
                          f"(known: {', '.join(HOOK_KEYS)})")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ConfigError(f"{path}: {where}.name must be 1-32 of a-z 0-9 _ -")
    events = raw.get("events")
    if not isinstance(events, list) or not events or not all(e in EVENTS for e in events):
        raise ConfigError(f"{path}: {where}.events must list some of: {', '.join(EVENTS)}")
    values: dict[str, Any] = {"name": name, "events": tuple(dict.fromkeys(events))}
    url, command = raw.get("url"), raw.get("command")
    if (url is None) == (command is None):
        raise ConfigError(f"{path}: {where} needs either url or command (not both)")
    if url is not None:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{path}: {where}.url must be an http:// or https:// URL")
        values["url"] = url
    else:
        if (not isinstance(command, list) or not command
                or not all(isinstance(a, str) and "\0" not in a for a in command)
                or not Path(command[0]).is_absolute()):
            raise ConfigError(f"{path}: {where}.command must be a list: an absolute program "
                              "path, then its arguments (no shell)")
        values["command"] = tuple(command)
    env = raw.get("env", {})
    if not isinstance(env, dict) or not all(
            isinstance(k, str) and ENV_RE.fullmatch(k) and isinstance(v, str)
            for k, v in env.items()):
        raise ConfigError(f"{path}: {where}.env must map NAMES in capitals to text")
    values["env"] = MappingProxyType(dict(env))
    timeout = raw.get("timeout_seconds", 10)
    if (not isinstance(timeout, (int, float)) or isinstance(timeout, bool)
            or not 1 <= timeout <= 300):
        raise ConfigError(f"{path}: {where}.timeout_seconds must be 1 to 300")
    values["timeout_seconds"] = float(timeout)
    return HookSettings(**values)
