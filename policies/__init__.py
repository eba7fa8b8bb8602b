"""Pure scaling policies: samples and the current count in, a Decision with its reason out.

Nothing here does I/O or reads a clock of its own; the evaluator passes `now` in.
"""

from policies.base import Decision, Direction, Policy, PolicyInput, ReplicaSample
from policies.registry import PolicyError, create, names

__all__ = [
    "Decision",
    "Direction",
    "Policy",
    "PolicyError",
    "PolicyInput",
    "ReplicaSample",
    "create",
    "names",
]
