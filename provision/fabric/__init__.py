"""``gpuctl fabric verify``: the discovered InfiniBand fabric against the plan.

* :mod:`~provision.fabric.observed` is the observed fabric (devices and cables), which
  :mod:`~provision.fabric.topology` parses from ``ibnetdiscover`` output (and ibsim net
  files) and :mod:`~provision.fabric.linkinfo` from ``iblinkinfo`` output: pure text -> Topology;
* :mod:`~provision.fabric.expected` turns the Plan into port-level ends and a scope;
* :mod:`~provision.fabric.identify` names observed devices (descriptions, then inference);
* :mod:`~provision.fabric.verify` compares them into findings
  (:mod:`~provision.fabric.findings`); :mod:`~provision.fabric.report` prints them.

Nothing here runs a tool or writes a file: ``provision.execute.ibdiscover`` runs
``ibnetdiscover`` and the CLI writes what it learned.
"""

from provision.fabric.expected import Expected, PlannedLink, Scope, expected_fabric, parse_scope
from provision.fabric.findings import KINDS, Finding, LinkView, VerifyResult
from provision.fabric.observed import Device, ObservedLink, Topology
from provision.fabric.topology import parse_topology
from provision.fabric.verify import learned_guids, verify

__all__ = [
    "KINDS", "Device", "Expected", "Finding", "LinkView", "ObservedLink", "PlannedLink", "Scope",
    "Topology", "VerifyResult", "expected_fabric", "learned_guids", "parse_scope",
    "parse_topology", "verify",
]
