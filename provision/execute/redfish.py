"""A small Redfish client (plain ``requests``) for what bring-up needs from a BMC.

Find the host's ComputerSystem (by UUID, Id or Name), read its power state, set a one-time
boot override (PXE) and reset it through ``ComputerSystem.Reset``. Every failure becomes one
:class:`ExecutionError` naming the host and the BMC URL, never a requests traceback.

Credentials come only from the environment (``GPUCTL_BMC_USER``/``GPUCTL_BMC_PASSWORD``) or a
file of ``KEY=value`` lines that only its owner may read (mode 0600). Such a file may hold a
per-host override as ``GPUCTL_BMC_PASSWORD[lab-gpu-02]=...``. Secrets never appear in messages.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from provision.errors import ExecutionError

USER_ENV = "GPUCTL_BMC_USER"
PASSWORD_ENV = "GPUCTL_BMC_PASSWORD"
CRED_HINT = f"check {USER_ENV}/{PASSWORD_ENV}"
RESET_TYPES = ("On", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart",
               "PowerCycle", "ForceOn")


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str
    source: str  # where they came from, for messages ("env", a file path)

    def __repr__(self) -> str:  # never print the password
        return f"Credentials(user={self.user!r}, source={self.source!r})"


def read_secret_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a file only its owner can read; refuse a group/world-readable one."""
    try:
        st = path.stat()
        text = path.read_text()
    except OSError as exc:
        raise ExecutionError(f"BMC credentials file {path}: cannot read ({exc.strerror})") from exc
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise ExecutionError(f"BMC credentials file {path}: mode "
                             f"{stat.S_IMODE(st.st_mode):04o} lets others read it; chmod 600")
    out: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def credentials_for(host: str, *, env: Mapping[str, str],
                    files: Sequence[Path] = ()) -> Credentials:
    """The BMC credentials of ``host``; each value is looked up separately: a per-host entry
    (``KEY[host]``) in a file wins, then the environment, then a plain entry in a file."""
    tables = [(str(p), read_secret_file(p)) for p in files if p.exists()]

    def lookup(key: str) -> tuple[str, str] | None:
        for source, table in tables:
            if table.get(f"{key}[{host}]"):
                return table[f"{key}[{host}]"], source
        if env.get(key):
            return env[key], "env"
        for source, table in tables:
            if table.get(key):
                return table[key], source
        return None

    user, password = lookup(USER_ENV), lookup(PASSWORD_ENV)
    if user is None or password is None:
        where = ", ".join(str(p) for p in files) or "no credentials file"
        raise ExecutionError(f"bmc of {host}: no credentials; set {USER_ENV}/{PASSWORD_ENV} "
                             f"(looked in the environment and {where})")
    return Credentials(user[0], password[0], password[1])


@dataclass(frozen=True)
class BmcTarget:
    """Where a host's BMC is and which system on it is the host."""

    host: str
    url: str  # base URL, e.g. https://10.0.16.11 or http://127.0.0.1:8000
    system: str  # UUID, Id or Name of the ComputerSystem; "" = the only one
    verify_tls: bool = True


TRANSIENT = (500, 502, 503, 504)
"""Answers a BMC gives while busy (a BMC's web server restarting, its state store locked:
sushy-emulator's libvirt driver answers 500 "database is locked" under parallel requests)."""
GET_PAUSES_S = (1.0, 2.0)
"""Pauses before the second and third try of a GET answered with :data:`TRANSIENT`; only
reads are retried (a repeated reset could power-cycle a node twice)."""


class RedfishClient:
    """One BMC, one host. The session (transport) is passed in (STYLE lesson 6)."""

    def __init__(self, target: BmcTarget, creds: Credentials, *,
                 session: requests.Session | None = None, timeout: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.target = target
        self._sleep = sleep
        self._session = session or requests.Session()
        self._session.auth = (creds.user, creds.password)
        self._session.verify = target.verify_tls
        self._timeout = timeout
        self._system_path: str | None = None

    @property
    def who(self) -> str:
        return f"bmc of {self.target.host} ({self.target.url})"

    def close(self) -> None:
        self._session.close()

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
        url = self.target.url.rstrip("/") + path
        pauses = list(GET_PAUSES_S) if method == "GET" else []
        while True:
            resp = self._send(method, url, body)
            if resp.status_code not in TRANSIENT or not pauses:
                break
            self._sleep(pauses.pop(0))
        if resp.status_code in (401, 403):
            raise ExecutionError(f"{self.who}: {resp.status_code} {resp.reason} — "
                                 f"{CRED_HINT}")
        if resp.status_code >= 400:
            raise ExecutionError(f"{self.who}: {method} {path}: {resp.status_code} "
                                 f"{resp.reason} {_redfish_message(resp)}".rstrip())
        if not resp.content:
            return {}
        try:
            data = resp.json()
        except ValueError as exc:
            raise ExecutionError(f"{self.who}: {method} {path}: answer is not JSON") from exc
        return data if isinstance(data, dict) else {}

    def _send(self, method: str, url: str, body: dict[str, Any] | None) -> requests.Response:
        try:
            return self._session.request(method, url, json=body, timeout=self._timeout)
        except requests.exceptions.SSLError as exc:
            raise ExecutionError(f"{self.who}: TLS verification failed ({_short(exc)}); "
                                 "install the BMC's CA or set bmc_verify_tls: false for "
                                 "this site") from exc
        except requests.RequestException as exc:
            raise ExecutionError(f"{self.who}: unreachable ({_short(exc)})") from exc

    def system_path(self) -> str:
        """The ``@odata.id`` of the host's ComputerSystem (found once, then cached)."""
        if self._system_path is not None:
            return self._system_path
        members = self._request("GET", "/redfish/v1/Systems").get("Members", [])
        paths = [str(m["@odata.id"]) for m in members if "@odata.id" in m]
        want = self.target.system.lower()
        seen: list[str] = []
        for path in paths:
            body = self._request("GET", path)
            keys = {str(body.get(k, "")).lower() for k in ("UUID", "Id", "Name")}
            seen.append(str(body.get("Name") or body.get("Id")))
            if (want and want in keys) or (not want and len(paths) == 1):
                self._system_path = path
                return path
        raise ExecutionError(f"{self.who}: no system {self.target.system!r} among "
                             f"{len(paths)} ({', '.join(seen[:5])})")

    def system(self) -> dict[str, Any]:
        return self._request("GET", self.system_path())

    def power_state(self) -> str:
        return str(self.system().get("PowerState", "Unknown"))

    def set_one_time_boot(self, target: str = "Pxe") -> None:
        self._request("PATCH", self.system_path(), {"Boot": {
            "BootSourceOverrideTarget": target, "BootSourceOverrideEnabled": "Once"}})

    def set_boot(self, target: str, enabled: str = "Continuous") -> None:
        """Boot device override, e.g. ``Hdd`` + ``Continuous``: boot from disk from now on."""
        self._request("PATCH", self.system_path(), {"Boot": {
            "BootSourceOverrideTarget": target, "BootSourceOverrideEnabled": enabled}})

    def boot_override(self) -> tuple[str, str]:
        boot = self.system().get("Boot", {})
        return (str(boot.get("BootSourceOverrideTarget", "")),
                str(boot.get("BootSourceOverrideEnabled", "")))

    def reset(self, reset_type: str) -> None:
        if reset_type not in RESET_TYPES:
            raise ValueError(f"reset type {reset_type!r}: must be one of {RESET_TYPES}")
        self._request("POST", self.system_path() + "/Actions/ComputerSystem.Reset",
                      {"ResetType": reset_type})

    def power_cycle(self, *, wait: float = 30.0, sleep: Callable[[float], None] = time.sleep
                    ) -> str:
        """ForceRestart a powered host, power on one that is off; wait (bounded) until the
        BMC reports On. Returns the action taken."""
        action = "ForceRestart" if self.power_state() == "On" else "On"
        self.reset(action)
        deadline = time.monotonic() + wait
        while self.power_state() != "On":
            if time.monotonic() > deadline:
                raise ExecutionError(f"{self.who}: not On {wait:g}s after {action}")
            sleep(0.5)
        return action


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 160 else text[:157] + "..."


def _redfish_message(resp: requests.Response) -> str:
    try:
        err = resp.json().get("error", {})
        info = err.get("@Message.ExtendedInfo", [{}])
        return str(info[0].get("Message") or err.get("message") or "")[:200]
    except (ValueError, AttributeError, IndexError, TypeError):
        return ""


def env_credentials() -> dict[str, str]:
    """Only the two credential variables of the environment (nothing else is passed on)."""
    return {k: os.environ[k] for k in (USER_ENV, PASSWORD_ENV) if k in os.environ}
