"""Burn-in: prove a newly racked node works before it is accepted.

The flow is probe -> parse (pure) -> judge against thresholds -> store -> report.
:mod:`provision.burnin.probes` holds the probes: for each tool a command builder (an argv
list, never a shell string) and a pure ``parse(text)`` that turns the tool's raw output into
a frozen dataclass or raises :class:`provision.errors.ParseError`.
"""
