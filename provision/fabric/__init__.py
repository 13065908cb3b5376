"""``gpuctl fabric verify``: the discovered InfiniBand fabric against the plan.

* :mod:`~provision.fabric.topology` parses ``ibnetdiscover`` output (and ibsim net files),
  :mod:`~provision.fabric.linkinfo` parses ``iblinkinfo`` output: pure text -> Topology;
* :mod:`~provision.fabric.expected` turns the Plan into port-level ends and a scope;
* :mod:`~provision.fabric.identify` names observed devices (descriptions, then inference);
* :mod:`~provision.fabric.verify` compares them into findings
  (:mod:`~provision.fabric.findings`); :mod:`~provision.fabric.report` prints them.

Nothing here runs a tool or writes a file: ``provision.execute.ibdiscover`` runs
``ibnetdiscover`` and the CLI writes what it learned.
"""
