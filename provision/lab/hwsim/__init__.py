"""gpuctl lab hardware simulator: not real hardware.

The local lab has no GPUs and no HCAs. So that ``gpuctl burnin run`` can SSH into lab hosts
and run the real tool command lines, this package answers them with the tools' real output
formats, computed from a per-host *personality* (the node's catalog facts) and injected
*faults*. Every output says it is simulated somewhere its real parser tolerates (an XML
comment, a ``#`` line in nccl-tests' header, a perftest header line, a kernel-log line, a
``metadata`` key in dcgmi's JSON, or stderr for CSV and plain text), and every ``--version``
says so.

Layout of a simulator directory (``sim_dir``, shared by all lab hosts)::

    hosts/<host>.json    personality (write_personality)
    faults/<host>.json   injected faults (set_fault / clear_faults / list_faults)
    kmsg/<host>.log      simulated kernel messages (Xid lines), JSON lines

Commands (``install_commands`` writes wrappers for them into a lab host's /usr/local/bin):
``nvidia-smi``, ``dcgmi``, ``all_reduce_perf``, ``all_to_all_perf`` (also as nccl-tests' real
name ``alltoall_perf``), ``ib_write_bw``, ``ib_write_lat``, ``mpirun`` and ``dmesg``;
``ibstat`` on request.

Why a ``dmesg`` wrapper: burn-in's Xid check runs plain ``dmesg`` (the only kernel-log reader
every node has). The lab host's private /usr/local/bin comes first on PATH, so the simulated
``dmesg`` shadows /usr/bin/dmesg *only inside lab hosts*; it is never installed anywhere else.
It prints a short simulated boot log plus the host's ``kmsg`` lines and nothing from the real
kernel ring buffer (which is shared by every lab host and, on a GPU machine, could carry the
real machine's Xids). ``journalctl`` is not shadowed.
"""

from __future__ import annotations

from provision.lab.hwsim.faults import (
    FAULT_KINDS,
    Fault,
    clear_faults,
    list_faults,
    make_fault,
    read_faults,
    set_fault,
)
from provision.lab.hwsim.install import COMMANDS, OPTIONAL_COMMANDS, install_commands
from provision.lab.hwsim.personality import (
    LABEL,
    PRODUCTS,
    Personality,
    default_personality,
    known_hosts,
    read_personality,
    write_personality,
)

__all__ = [
    "COMMANDS",
    "FAULT_KINDS",
    "LABEL",
    "OPTIONAL_COMMANDS",
    "PRODUCTS",
    "Fault",
    "Personality",
    "clear_faults",
    "default_personality",
    "install_commands",
    "known_hosts",
    "list_faults",
    "make_fault",
    "read_faults",
    "read_personality",
    "set_fault",
    "write_personality",
]
