"""Agreements as policy: YAML files in, explained allow/deny decisions out.

Pure: no I/O besides loading the policy files.
"""

from exchanged.policy.engine import Decision, Request, RuleResult, decide, rules_for
from exchanged.policy.loader import load_policies
from exchanged.policy.model import Agreement, Column, Flow, Party, PolicySet

__all__ = [
    "Agreement",
    "Column",
    "Decision",
    "Flow",
    "Party",
    "PolicySet",
    "Request",
    "RuleResult",
    "decide",
    "load_policies",
    "rules_for",
]
