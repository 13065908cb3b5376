"""A lab host's private filesystem: overlay upper dirs seeded with the host's own files.

Each host sees the machine's /etc, /var, /opt, /usr and /root through an overlay whose upper
dir lives under ``<lab_dir>/hosts/<name>/upper/``. Before the overlays are mounted the lab
seeds the upper dirs with what makes the host itself: /etc/hostname, /etc/hosts,
/etc/machine-id, root's authorized_keys and plain shell start files, the InfiniBand settings (/etc/gpuctl-lab/ib.json)
and the tool wrappers in /usr/local/bin.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from provision.errors import LabError
from provision.lab.names import machine_id
from provision.lab.state import HostRecord
from provision.sshkeys import write_private

OVERLAY_DIRS = ("/etc", "/var", "/opt", "/usr", "/root")
IB_TOOLS = (
    "ibstat", "ibnetdiscover", "iblinkinfo", "sminfo", "perfquery", "saquery", "smpquery",
    "smpdump", "ibaddr", "ibroute", "ibtracert", "ibqueryerrors", "ibportstate", "ibsysstat",
    "ibping", "ibhosts", "ibswitches", "ibnodes", "ibrouters",
)
IB_CONFIG = "etc/gpuctl-lab/ib.json"
WRAPPER = "usr/local/lib/gpuctl-lab/ibwrap"
UMAD2SIM = "/usr/lib/x86_64-linux-gnu/umad2sim/libumad2sim.so"
ROOT_SHELL_FILES = (".bashrc", ".profile", ".bash_profile", ".bash_login")
ROOT_SHELL_TEXT = "# gpuctl lab host: root's shell as on a fresh server (nothing sourced)\n"
_UNSAFE = (",", ":", " ", "\n", "=")


@dataclass(frozen=True)
class IbSettings:
    """How a host's tools reach the ibsim fabric."""

    server: str
    port: int
    preload: str = UMAD2SIM
    tools: str = "/usr/sbin"


@dataclass(frozen=True)
class HostRoot:
    """A lab host's private filesystem before the host starts, for ``up(host_setup=...)``.

    A file written to ``root / "usr/local/bin/tool"`` appears as /usr/local/bin/tool inside
    that host only. Only the overlaid directories (/etc, /var, /opt, /usr, /root) are private.
    """

    name: str
    catalog_type: str
    hca_ids: tuple[str, ...]
    root: Path
    lab_dir: Path


HostSetup = Callable[[HostRoot], None]
"""Called once per host by ``up`` after the lab's own files are in place, before its sshd
starts; e.g. to install the hardware simulator's commands."""


def overlay_targets() -> list[str]:
    """The private directories that exist here as real directories."""
    return [d for d in OVERLAY_DIRS if os.path.isdir(d) and not os.path.islink(d)]


def check_lab_dir(lab_dir: Path) -> None:
    """The lab dir holds overlay upper dirs: it may not lie inside an overlaid directory,
    nor contain characters that overlayfs mount options cannot carry."""
    text = str(lab_dir)
    if any(c in text for c in _UNSAFE):
        raise LabError(f"lab dir {text!r}: must not contain any of ',', ':', '=' or spaces")
    for target in OVERLAY_DIRS:
        if text == target or text.startswith(target + "/"):
            raise LabError(f"lab dir {text!r}: may not be under {target}, which each lab "
                           "host overlays; use e.g. the repository's .lab/ or /srv")


def hosts_file(hosts: Sequence[HostRecord]) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{ipaddress.IPv4Interface(h.address).ip}\t{h.name}" for h in hosts]
    return "\n".join(lines) + "\n"


def prepare_host(host_dir: Path, host: HostRecord, *, all_hosts: Sequence[HostRecord],
                 admin_public_key: str, ib: IbSettings, sshd_command: Sequence[str]) -> Path:
    """Create upper/work dirs, seed the host's files; return the holder config path."""
    overlays = []
    for target in overlay_targets():
        rel = target.strip("/")
        upper, work = host_dir / "upper" / rel, host_dir / "work" / rel
        upper.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        lower = os.stat(target)  # the overlay's root takes the upper dir's owner and mode
        os.chown(upper, lower.st_uid, lower.st_gid)
        os.chmod(upper, lower.st_mode & 0o7777)
        overlays.append({"target": target, "upper": str(upper), "work": str(work)})
    upper = host_dir / "upper"
    _write(upper / "etc/hostname", host.name + "\n")
    _write(upper / "etc/hosts", hosts_file(all_hosts))
    _write(upper / "etc/machine-id", machine_id(host.bmc_system_id) + "\n", mode=0o444)
    ssh_dir = upper / "root/.ssh"
    ssh_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(ssh_dir, 0o700)
    write_private(ssh_dir / "authorized_keys", admin_public_key + " gpuctl-lab-admin\n")
    # root's shell starts as on a freshly installed server, not with this machine's login
    # files: sshd's bash reads ~/.bashrc for every command, and a developer's profile (pyenv
    # init and its rehash lock, say) would run before each probe on every host.
    for name in ROOT_SHELL_FILES:
        _write(upper / "root" / name, ROOT_SHELL_TEXT)
    ib_config = {"server": ib.server, "port": ib.port, "preload": ib.preload,
                 "tools": ib.tools, "hcas": list(host.hca_ids)}
    _write(upper / IB_CONFIG, json.dumps(ib_config, indent=2, sort_keys=True) + "\n")
    _install_wrappers(upper, ib.tools)
    holder = host_dir / "holder.json"
    holder.write_text(json.dumps({"hostname": host.name, "overlays": overlays,
                                  "exec": list(sshd_command)}, indent=2) + "\n")
    return holder


def _install_wrappers(upper: Path, tools_dir: str) -> None:
    wrapper = upper / WRAPPER
    _write(wrapper, (Path(__file__).with_name("ibwrap.py")).read_text(), mode=0o755)
    bin_dir = upper / "usr/local/bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in IB_TOOLS:
        if not os.path.exists(os.path.join(tools_dir, tool)):
            continue
        link = bin_dir / tool
        link.unlink(missing_ok=True)
        link.symlink_to("/" + WRAPPER)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
