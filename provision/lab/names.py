"""Names of the kernel objects a lab makes, derived from the site and host names.

Every name carries the ``gl`` prefix ("gpuctl lab") so a lab's objects are recognisable in
``ip link`` and ``ip netns`` listings. Interface names are limited to 15 characters (IFNAMSIZ).
"""

from __future__ import annotations

import hashlib

IFNAMSIZ = 15


def _digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def bridge_name(site: str) -> str:
    """The lab's Linux bridge: ``gl-<site>``, or a shortened unique form for long sites."""
    name = f"gl-{site}"
    if len(name) <= IFNAMSIZ:
        return name
    return f"gl-{site[:7].rstrip('-')}-{_digest(site)[:4]}"


def netns_name(site: str, host: str) -> str:
    """A host's network namespace (file names under /run/netns may be long)."""
    return f"gl-{site}-{host}"


def veth_name(site: str, index: int) -> str:
    """The bridge side of host ``index``'s veth pair; the namespace side is ``eth0``."""
    return f"gv{_digest(site)[:5]}-{index}"


def host_mac(site: str, host: str) -> str:
    """A stable, locally administered unicast MAC for the host's ``eth0`` (and its BMC NIC)."""
    raw = _digest(site, host)[:10]
    return "02:" + ":".join(raw[i : i + 2] for i in range(0, 10, 2))


def machine_id(bmc_system_id: str) -> str:
    """The host's /etc/machine-id: its system UUID as 32 lowercase hex digits."""
    return bmc_system_id.replace("-", "").lower()
