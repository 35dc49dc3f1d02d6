"""Conflict policies and direction rules, configured in YAML (`policies/default.yaml` is the default)."""

from policies.errors import PolicyFileError
from policies.loader import load_policy, parse_policy
from policies.policy_set import PolicySet

__all__ = ["PolicyFileError", "PolicySet", "load_policy", "parse_policy"]
