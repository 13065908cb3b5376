"""The lab's BMCs: one sushy-tools Redfish emulator (``--fake`` driver) on loopback.

One fake system per host (UUID = the host's ``bmc_system_id``, name = host name, NIC MAC =
the host's eth0 MAC), HTTP basic auth from an htpasswd file (bcrypt, the only digest sushy
accepts). Credentials come from ``GPUCTL_BMC_USER``/``GPUCTL_BMC_PASSWORD`` or, when those are
unset, from a generated ``<lab_dir>/secrets.env`` (mode 0600); never from the site file.
A lab with VM nodes runs a second emulator with sushy's libvirt driver (``qemu:///system``,
only the lab's domains allowed, same credentials): its systems are the domains, by UUID.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import secrets
import shutil
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from provision.errors import LabError
from provision.lab.proc import alive, log_tail, spawn, wait_for
from provision.lab.state import HostRecord, LabPaths, ProcRecord
from provision.sshkeys import write_private

USER_ENV = "GPUCTL_BMC_USER"
PASSWORD_ENV = "GPUCTL_BMC_PASSWORD"
LISTEN = "127.0.0.1"
LIBVIRT_URI = "qemu:///system"


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str
    source: str  # "env" or "file"


def credentials_for_up(paths: LabPaths) -> Credentials:
    """Env credentials when both are set, else the lab's secrets file (made if missing)."""
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if user and password:
        return Credentials(user, password, "env")
    found = _read_secrets(paths.secrets)
    if found is not None:
        return Credentials(found[0], found[1], "file")
    creds = Credentials("admin", secrets.token_urlsafe(18), "file")
    write_private(paths.secrets, f"{USER_ENV}={creds.user}\n{PASSWORD_ENV}={creds.password}\n")
    return creds


def credentials_for_use(paths: LabPaths, source: str) -> Credentials:
    """The credentials a running lab was brought up with."""
    if source == "env":
        user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
        if not (user and password):
            raise LabError(f"lab BMC: the lab was brought up with {USER_ENV}/{PASSWORD_ENV} "
                           "from the environment; set them again")
        return Credentials(user, password, "env")
    found = _read_secrets(paths.secrets)
    if found is None:
        raise LabError(f"lab BMC: credentials file {paths.secrets} is missing or incomplete")
    return Credentials(found[0], found[1], "file")


def _read_secrets(path: Path) -> tuple[str, str] | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    user, password = values.get(USER_ENV, "").strip(), values.get(PASSWORD_ENV, "").strip()
    return (user, password) if user and password else None


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LISTEN, 0))
        return int(sock.getsockname()[1])


def emulator_config(*, port: int, auth_file: Path, state_dir: Path,
                    hosts: Sequence[HostRecord]) -> str:
    """The emulator's config file (Python syntax, read with Flask's ``from_pyfile``)."""
    systems = [
        {
            "uuid": h.bmc_system_id,
            "name": h.name,
            "power_state": "On",
            "nics": [{"mac": h.mac, "ip": str(ipaddress.IPv4Interface(h.address).ip)}],
        }
        for h in hosts
    ]
    return "\n".join([
        "# gpuctl lab: sushy-tools emulator, fake driver, one system per lab host",
        f"SUSHY_EMULATOR_LISTEN_IP = {LISTEN!r}",
        f"SUSHY_EMULATOR_LISTEN_PORT = {port!r}",
        f"SUSHY_EMULATOR_AUTH_FILE = {str(auth_file)!r}",
        f"SUSHY_EMULATOR_STATE_DIR = {str(state_dir)!r}",
        "SUSHY_EMULATOR_FAKE_DRIVER = True",
        f"SUSHY_EMULATOR_FAKE_SYSTEMS = {systems!r}",
        "",
    ])


def htpasswd_line(creds: Credentials) -> str:
    import bcrypt  # sushy-tools depends on it; only needed to bring a lab up

    digest = bcrypt.hashpw(creds.password.encode(), bcrypt.gensalt(rounds=6)).decode()
    return f"{creds.user}:{digest}\n"


def emulator_command(config: Path, *, driver: tuple[str, ...] = ("--fake",)) -> list[str]:
    """Run the emulator with this Python when sushy-tools is importable (no shim)."""
    if importlib.util.find_spec("sushy_tools") is not None:
        return [sys.executable, "-m", "sushy_tools.emulator.main", *driver, "--config",
                str(config)]
    exe = shutil.which("sushy-emulator")
    if exe is None:
        raise LabError("lab BMC: sushy-emulator not found; pip install 'gpuctl[lab]'")
    return [exe, *driver, "--config", str(config)]


def vm_emulator_config(*, port: int, auth_file: Path, uuids: Sequence[str]) -> str:
    """The libvirt-driver emulator's config: only the lab's own domains are served."""
    return "\n".join([
        "# gpuctl lab: sushy-tools emulator, libvirt driver, one system per lab VM",
        f"SUSHY_EMULATOR_LISTEN_IP = {LISTEN!r}",
        f"SUSHY_EMULATOR_LISTEN_PORT = {port!r}",
        f"SUSHY_EMULATOR_AUTH_FILE = {str(auth_file)!r}",
        f"SUSHY_EMULATOR_LIBVIRT_URI = {LIBVIRT_URI!r}",
        f"SUSHY_EMULATOR_ALLOWED_INSTANCES = {sorted(uuids)!r}",
        "",
    ])


def require_libvirt_driver() -> None:
    """Fail early when the libvirt Python binding (PyPI libvirt-python) is missing."""
    if importlib.util.find_spec("libvirt") is None:
        raise LabError("lab BMC for VM nodes: the libvirt Python binding is missing; "
                       "pip install 'gpuctl[lab]' (libvirt-python; needs libvirt-dev, "
                       "pkg-config, gcc)")


def start_vm(paths: LabPaths, *, port: int, creds: Credentials,
             uuids: Sequence[str]) -> ProcRecord:
    """The second emulator: sushy's libvirt driver, serving the lab's domains by UUID."""
    bmc_dir = paths.vm_bmc_dir
    bmc_dir.mkdir(parents=True, exist_ok=True)
    auth = bmc_dir / "htpasswd"
    write_private(auth, htpasswd_line(creds))
    config = bmc_dir / "emulator.conf"
    write_private(config, vm_emulator_config(port=port, auth_file=auth, uuids=uuids))
    tmp = bmc_dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return spawn(emulator_command(config, driver=("--libvirt-uri", LIBVIRT_URI)),
                 label="lab VM BMC emulator", log=bmc_dir / "emulator.log",
                 env={**os.environ, "TMPDIR": str(tmp)})


def require_emulator() -> None:
    """Fail early (before anything is made) when sushy-tools is missing."""
    emulator_command(Path(os.devnull))


def start(paths: LabPaths, *, port: int, creds: Credentials,
          hosts: Sequence[HostRecord]) -> ProcRecord:
    bmc_dir = paths.bmc_dir
    (bmc_dir / "state").mkdir(parents=True, exist_ok=True)
    auth = bmc_dir / "htpasswd"
    write_private(auth, htpasswd_line(creds))
    config = bmc_dir / "emulator.conf"
    write_private(config, emulator_config(port=port, auth_file=auth,
                                          state_dir=bmc_dir / "state", hosts=hosts))
    tmp = bmc_dir / "tmp"  # sushy-tools keeps its state DBs in $TMPDIR/sushy-emulator/:
    tmp.mkdir(parents=True, exist_ok=True)  # under the lab dir, so lab down removes them
    return spawn(emulator_command(config), label="lab BMC emulator",
                 log=bmc_dir / "emulator.log", env={**os.environ, "TMPDIR": str(tmp)})


def list_systems(url: str, creds: Credentials, *, timeout: float = 3.0) -> dict[str, str]:
    """``{system name: PowerState}`` from the emulator (raises requests errors)."""
    auth = (creds.user, creds.password)
    with requests.Session() as session:
        resp = session.get(f"{url}/redfish/v1/Systems", auth=auth, timeout=timeout)
        resp.raise_for_status()
        found: dict[str, str] = {}
        for member in resp.json().get("Members", []):
            sys_resp = session.get(url + member["@odata.id"], auth=auth, timeout=timeout)
            sys_resp.raise_for_status()
            body = sys_resp.json()
            found[str(body.get("Name"))] = str(body.get("PowerState"))
        return found


def wait_ready(url: str, creds: Credentials, proc: ProcRecord, log: Path, *,
               expected: int, timeout: float = 20.0) -> None:
    def listing() -> int | None:
        try:
            with requests.get(f"{url}/redfish/v1/Systems", auth=(creds.user, creds.password),
                              timeout=1.0) as resp:
                if resp.status_code != 200:
                    return None
                count = int(resp.json().get("Members@odata.count", -1))
        except (requests.RequestException, ValueError):
            return None
        return count if count == expected else None

    def died() -> str | None:
        return None if alive(proc) else f"lab BMC emulator exited: {log_tail(log)}"

    wait_for(listing, timeout=timeout, interval=0.1, fail=died,
             what=f"lab BMC emulator did not list {expected} systems at {url}")
