"""Each lab host's OpenSSH server, started inside the host by the holder (holder.py).

The sshd listens on the host's address, port 22, with its own ed25519 host key, and lets in
root with the lab's admin key only. Readiness is checked from the root namespace through the
bridge: the port answers with an SSH banner.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path

from provision.errors import LabError
from provision.lab.proc import alive, log_tail, spawn, wait_for
from provision.lab.state import HostRecord, ProcRecord

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
HOLDER = Path(__file__).with_name("holder.py")


def sshd_config_text(*, address: str, host_key: Path) -> str:
    return "\n".join([
        "# gpuctl lab host sshd: admin key for root only, no passwords",
        f"ListenAddress {address}:22",
        f"HostKey {host_key}",
        "PidFile none",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "AuthorizedKeysFile .ssh/authorized_keys",
        "StrictModes yes",
        "UseDNS no",
        "X11Forwarding no",
        "PrintMotd no",
        "AcceptEnv LANG LC_*",
        "MaxStartups 100:30:200",
        "MaxSessions 64",
        f"Subsystem sftp {SFTP_SERVER}",
        "",
    ])


def sshd_command(config: Path) -> list[str]:
    return [SSHD, "-D", "-e", "-f", str(config)]


def holder_command(ns: str, holder_config: Path) -> list[str]:
    return ["ip", "netns", "exec", ns, "unshare", "-m", "-u", "--propagation", "private",
            sys.executable, "-I", "-S", str(HOLDER), str(holder_config)]


def ensure_privsep_dir() -> None:
    """sshd refuses to start without its privilege-separation directory."""
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)


def start_host(host: HostRecord, holder_config: Path, log: Path) -> ProcRecord:
    return spawn(holder_command(host.netns, holder_config), label=f"lab host {host.name}: sshd",
                 log=log)


def banner(address: str, *, timeout: float = 1.0) -> str | None:
    """The SSH identification line at ``address:22``, or None when it does not answer."""
    try:
        with socket.create_connection((address, 22), timeout=timeout) as sock:
            sock.settimeout(timeout)
            data = sock.recv(256)
    except OSError:
        return None
    line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    return line if line.startswith("SSH-") else None


def wait_ready(host: HostRecord, log: Path, *, timeout: float = 10.0) -> None:
    """Wait until the host's sshd answers on port 22 (bounded); fail early if it died."""
    if host.sshd is None:
        raise LabError(f"lab host {host.name}: sshd was not started")
    addr = str(ipaddress.IPv4Interface(host.address).ip)
    proc = host.sshd

    def died() -> str | None:
        if alive(proc):
            return None
        return f"lab host {host.name}: sshd exited: {log_tail(log)}"

    wait_for(lambda: banner(addr), timeout=timeout, interval=0.05, fail=died,
             what=f"lab host {host.name}: sshd did not answer on {addr}:22")
