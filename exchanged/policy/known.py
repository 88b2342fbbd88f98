"""The agencies and flows an option may name, and the one sentence that refuses any other.

A command given ``--agency nosuch`` must not answer an empty list or a DENY trace
as if the name meant something: it says the name is unknown and lists the known
ones. Known are the agencies registered in the home and the parties and flows of
the agreements in ``policies/``; a command over the ledger also knows the names
its entries carry (an agency or flow of an agreement since removed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from exchanged.errors import ConfigError, PolicyError, UsageError
from exchanged.home import Home
from exchanged.policy.loader import load_policy_files, read_policy_files
from exchanged.policy.model import PolicySet

#: more names, asked for only when a name is not among the first ones (a ledger scan)
MoreNames = Callable[[str], Iterable[str]]


@dataclass(frozen=True)
class KnownNames:
    agencies: tuple[str, ...]
    flows: tuple[str, ...]

    def check(self, *, agency: str | None = None, flow: str | None = None,
              more: MoreNames | None = None, option: str = "--agency") -> None:
        """Refuse (a usage error, exit 2) a name that is not known, listing the known ones."""
        for what, name, known, opt in (("agency", agency, self.agencies, option),
                                        ("flow", flow, self.flows, "--flow")):
            if name is None or name in known:
                continue
            extra = tuple(more(what)) if more is not None else ()
            if name in extra:
                continue
            listed = ", ".join(sorted({*known, *extra})) or "none yet"
            raise UsageError(f"{opt} {name}: there is no {what} {name!r} (known: {listed})")


def known_names(home: Home, policy: PolicySet | None = None) -> KnownNames:
    """The agencies registered in ``home`` and the parties and flows of its agreements
    (``policy``, else ``home``'s policies; a folder that does not load gives none)."""
    if policy is None:
        try:
            policy = load_policy_files(read_policy_files(home.policies))
        except (PolicyError, ConfigError, OSError):
            policy = None
    agencies = {p.stem for p in home.agencies.glob("*.yaml")} if home.agencies.is_dir() else set()
    flows: set[str] = set()
    if policy is not None:
        agencies |= set(policy.parties())
        flows = {f.name for a in policy.agreements for f in a.flows}
    return KnownNames(tuple(sorted(agencies)), tuple(sorted(flows)))
