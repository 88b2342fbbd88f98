"""Loading policy files: YAML in, a checked :class:`PolicySet` out, or an error with file and line.

Three kinds of file live in a policies folder:

- ``<agreement>.yaml`` (``format: exchanged/agreement-v1``): an agreement as signed
  (:mod:`exchanged.policy.agreements`, its flows :mod:`exchanged.policy.flows`);
- ``<agreement>.addendum-NNN.yaml`` (``format: exchanged/addendum-v1``): a written
  change to it (extend, terminate, suspend flows, amend flows); the agreement's
  own file is never edited (:mod:`exchanged.policy.addenda`);
- ``tests/*.yaml`` (``format: exchanged/policy-tests-v1``): policy test cases
  (see :mod:`exchanged.policy.cases`); not part of the policy set.

Each file is read safely (:mod:`exchanged.policy.yamlsafe`) and checked like
against a schema (:mod:`exchanged.policy.schema`). The policy set's SHA-256
covers every file's name and bytes, so that a decision can be replayed against
the exact policy of its day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from exchanged.errors import PolicyError
from exchanged.home.files import files_sha256
from exchanged.policy.addenda import (
    ADDENDUM_FORMAT,
    AddendumSource,
    addendum_text,
    apply_addenda,
    next_addendum_number,
    parse_addendum,
)
from exchanged.policy.agreements import AGREEMENT_FORMAT, parse_agreement
from exchanged.policy.model import Agreement, PolicySet
from exchanged.policy.schema import Source
from exchanged.policy.yamlsafe import parse_source

# what callers have always imported from here
__all__ = [
    "ADDENDUM_FORMAT",
    "AGREEMENT_FORMAT",
    "AddendumSource",
    "addendum_text",
    "load_policies",
    "load_policy_files",
    "next_addendum_number",
    "policy_set_sha256",
    "read_policy_files",
]


def read_policy_files(directory: Path) -> dict[str, bytes]:
    """The bytes of every ``*.yaml`` file in ``directory`` (not its subfolders)."""
    if not directory.is_dir():
        raise PolicyError(f"the policies folder {directory} is missing")
    files = sorted(p for p in directory.iterdir() if p.suffix == ".yaml" and p.is_file())
    contents: dict[str, bytes] = {}
    for path in files:
        try:
            contents[path.name] = path.read_bytes()
        except OSError as e:
            raise PolicyError(f"cannot be read ({e.strerror})", path.name) from None
    if not contents:
        raise PolicyError(f"the policies folder {directory} holds no policy (*.yaml)")
    return contents


def load_policies(directory: Path) -> PolicySet:
    """Load every ``*.yaml`` file in ``directory`` (not its subfolders)."""
    return load_policy_files(read_policy_files(directory))


def policy_set_sha256(files: Mapping[str, bytes]) -> str:
    """The policy set's SHA-256: the one the ledger's archive keeps it under."""
    return files_sha256(files)


def load_policy_files(files: Mapping[str, bytes],
                      extra_addenda: Mapping[str, list[AddendumSource]] | None = None
                      ) -> PolicySet:
    """Load a policy set from file names and their bytes (a folder, or an archived set)."""
    agreements: dict[str, tuple[Agreement, Source]] = {}
    addenda: dict[str, list[AddendumSource]] = {}
    for name in sorted(files):
        src = parse_source(name, files[name])
        if not isinstance(src.data, dict) or "format" not in src.data:
            raise src.error((), f"must be a mapping with format: {AGREEMENT_FORMAT} or "
                            f"{ADDENDUM_FORMAT}")
        if src.data.get("format") == ADDENDUM_FORMAT:
            add = parse_addendum(src)
            addenda.setdefault(add.agreement, []).append(AddendumSource(src, add))
        else:
            agreement = parse_agreement(src)
            if agreement.id in agreements:
                raise src.error(("agreement", "id"), f"agreement {agreement.id} is defined twice")
            agreements[agreement.id] = (agreement, src)
    for agreement_id, items in (extra_addenda or {}).items():
        addenda.setdefault(agreement_id, []).extend(items)
    result: dict[str, Agreement] = {}
    for agreement_id, (agreement, src) in agreements.items():
        result[agreement_id] = apply_addenda(agreement, src, addenda.pop(agreement_id, []))
    for agreement_id, items in addenda.items():
        raise items[0].source.error(("addendum", "agreement"),
                                    f"names unknown agreement {agreement_id}")
    _check_unique(result.values())
    return PolicySet(
        agreements=tuple(result[k] for k in sorted(result)),
        sha256=policy_set_sha256(files),
        files=tuple(sorted(files)),
    )


def _check_unique(agreements: Iterable[Agreement]) -> None:
    """A flow is found by its name alone (its folder in the agencies' drops) and a dataset
    has one loader: neither may be defined by two agreements."""
    flow_owner: dict[str, str] = {}
    dataset_owner: dict[str, str] = {}
    for a in agreements:
        for f in a.flows:
            if f.name in flow_owner:
                raise PolicyError(f"flow {f.name} is defined by both {flow_owner[f.name]} and "
                                  f"{a.id}; flow names must be unique", a.file)
            flow_owner[f.name] = a.id
            if f.dataset:
                if f.dataset in dataset_owner:
                    raise PolicyError(f"dataset {f.dataset} is loaded under both "
                                      f"{dataset_owner[f.dataset]} and {a.id}", a.file)
                dataset_owner[f.dataset] = a.id
