"""Where a network boot got to, from what the boot services record (pure parsers).

Kea's memfile lease file (CSV with a header line) shows the DHCP step; nginx's access log in
the boot_services format (``<client> [<time>] "<request>" <status> <bytes>``) shows every
HTTP step. :func:`boot_progress` lists the steps of one node in boot order and
:func:`stopped_at` names the first one that did not happen, e.g. ``no DHCP lease for
52:54:00:b0:07:02 (lab-gpu-02)``.

An image-based deploy adds two steps between the ramdisk and first boot: the deploy ramdisk
fetches ``/images/<image>/disk.img`` and reports to ``/deploy/<host>/done`` once the disk it
wrote has the image's digest, or to ``/deploy/<host>/failed/<reason>`` (``checksum-mismatch``,
``no-disk``, ``fetch-failed``, ``write-failed``, ``seed-failed``) and stops. The ramdisk fetches
the node's seed (``/seeds/<host>/user-data`` and the others) into the written root before it
reports, so first boot needs no network to find it; phone-home ends first boot.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

DISK_IMAGE = "disk.img"
"""The raw disk image the deploy ramdisk writes, next to rootfs.tar in the image folder."""
RAMDISK = "deploy.cpio.gz"
"""The deploy ramdisk, loaded by iPXE after the image's initrd (:mod:`.ramdisk`)."""


@dataclass(frozen=True)
class Lease:
    address: str
    hwaddr: str
    hostname: str
    expire: int


@dataclass(frozen=True)
class Request:
    client: str
    method: str
    path: str
    status: int


@dataclass(frozen=True)
class Step:
    name: str
    done: bool
    detail: str  # what was seen, or why the step is missing


_LOG = re.compile(r'^(\S+) \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d{3}) ')


def parse_leases(text: str) -> list[Lease]:
    """Leases of a Kea DHCPv4 memfile (later lines of one address supersede earlier ones)."""
    rows = csv.DictReader(io.StringIO(text))
    out: dict[str, Lease] = {}
    for row in rows:
        try:
            out[row["address"]] = Lease(row["address"], (row.get("hwaddr") or "").lower(),
                                        row.get("hostname") or "", int(row.get("expire") or 0))
        except (KeyError, ValueError):
            continue  # a torn last line while Kea writes
    return list(out.values())


def parse_access_log(text: str) -> list[Request]:
    out = []
    for line in text.splitlines():
        m = _LOG.match(line)
        if m:
            out.append(Request(m.group(1), m.group(2), m.group(3), int(m.group(4))))
    return out


def boot_progress(host: str, address: str, mac: str, image: str, leases: Sequence[Lease],
                  requests: Sequence[Request], *, deploy: bool = True) -> list[Step]:
    """The node's boot steps in order: DHCP lease, boot.ipxe, its script, kernel, initrd,
    (with ``deploy``: the deploy ramdisk, the disk image, the ramdisk's report,) seed,
    phone-home."""
    steps = []
    lease = next((ls for ls in leases if mac and ls.hwaddr == mac.lower()), None) or next(
        (ls for ls in leases if ls.hostname.split(".")[0] == host), None)
    if lease is None:
        steps.append(Step("dhcp", False, f"no DHCP lease for {mac or host} ({host})"))
    elif lease.address != address:
        steps.append(Step("dhcp", False, f"{host} leased {lease.address}, planned {address}"))
    else:
        steps.append(Step("dhcp", True, f"lease {lease.address} {lease.hwaddr}"))
    mine = [r for r in requests if r.client == address]
    wanted = [("boot-script", "GET", "/ipxe/boot.ipxe"),
              ("node-script", "GET", f"/ipxe/nodes/{host}.ipxe"),
              ("kernel", "GET", f"/images/{image}/vmlinuz"),
              ("initrd", "GET", f"/images/{image}/initrd.img")]
    if deploy:
        wanted += [("ramdisk", "GET", f"/images/{image}/{RAMDISK}"),
                   ("image", "GET", f"/images/{image}/{DISK_IMAGE}")]
    wanted += [("seed", "GET", f"/seeds/{host}/user-data"),
               ("phone-home", "POST", f"/phone-home/{host}")]
    for name, method, path in wanted:
        if name == "seed" and deploy:
            steps.append(_deploy_report(host, mine))
        hits = [r for r in mine if r.method == method and r.path == path]
        ok = [r for r in hits if r.status < 300]
        if ok:
            steps.append(Step(name, True, f"{method} {path} {ok[-1].status}"))
        elif hits:
            steps.append(Step(name, False, f"{method} {path} answered {hits[-1].status}"))
        else:
            steps.append(Step(name, False, f"no {method} {path} from {address}"))
    return steps


DEPLOY_FAILURES = {"checksum-mismatch": "image checksum mismatch",
                   "no-disk": "no disk to write the image to",
                   "fetch-failed": "the image could not be fetched",
                   "write-failed": "the image could not be written to the disk",
                   "seed-failed": "the node's seed could not be fetched"}
"""What the deploy ramdisk reports (``/deploy/<host>/failed/<reason>``), in words."""


def _deploy_report(host: str, mine: Sequence[Request]) -> Step:
    prefix = f"/deploy/{host}/"
    reports = [r for r in mine if r.method == "POST" and r.path.split("?")[0].startswith(prefix)]
    if not reports:
        return Step("deployed", False, f"no deploy report from the ramdisk (POST {prefix}done)")
    last = reports[-1].path.split("?")[0][len(prefix):]
    if last == "done":
        return Step("deployed", True, f"POST {prefix}done {reports[-1].status}")
    reason = last.removeprefix("failed/")
    return Step("deployed", False, "deploy ramdisk: " + DEPLOY_FAILURES.get(
        reason, f"failed ({reason})"))


def stopped_at(steps: Sequence[Step]) -> Step | None:
    """The first step that did not happen (None: the boot went all the way)."""
    return next((s for s in steps if not s.done), None)
