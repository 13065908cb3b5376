"""``SITE/macs.json``: the MAC addresses of delivered machines (a delivery manifest),
``{"<device>/<interface>": "aa:bb:cc:dd:ee:ff"}``. With it the boot services' Kea config
reserves each planned address by ``hw-address``, which is what a machine's firmware PXE or
iPXE sends; without it by client-id (type 0 + hostname)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from provision.errors import SiteLoadError
from provision.plan.build import Plan

MACS_FILE = "macs.json"
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def load_macs(site_dir: Path, plan: Plan) -> dict[str, str]:
    """The manifest's MACs (lower case), checked against the plan; {} when there is none."""
    path = site_dir / MACS_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SiteLoadError(f"cannot read MACs: {exc}", file=str(path)) from exc
    if not isinstance(data, dict):
        raise SiteLoadError('expected a JSON object {"<device>/<interface>": "<mac>"}',
                            file=str(path))
    known = {f"{a.device}/{a.interface}" for a in plan.addresses}
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for key, mac in data.items():
        if key not in known:
            raise SiteLoadError(f"{key!r}: no such device/interface in the plan "
                                "(e.g. lab-gpu-01/eno1)", file=str(path))
        if not isinstance(mac, str) or not _MAC.match(mac.lower()):
            raise SiteLoadError(f"{key!r}: {mac!r} is not a MAC address (aa:bb:cc:dd:ee:ff)",
                                file=str(path))
        mac = mac.lower()
        if mac in seen:
            raise SiteLoadError(f"{key!r}: MAC {mac} is also {seen[mac]!r}", file=str(path))
        seen[mac] = key
        out[key] = mac
    return out
