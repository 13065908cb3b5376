"""How every planned host is reached, as data: the access file (``access.yaml``).

A site without an access file is reached at the plan's addresses: SSH as root to the in-band
address with host keys checked against the user's known_hosts, the BMC at
``https://<oob address>``. An access file overrides any of that per host and adds what a
place to run needs site-wide (every key optional; relative paths are relative to the file)::

    description: lab at /work/.lab/lab: hosts are network namespaces of this machine
    exclusive: true            # every planned host must be listed under hosts
    ssh: {user: root, port: 22, key: admin_ed25519, known_hosts: known_hosts}
    hosts:
      lab-gpu-01:
        ssh: {address: 10.99.0.11}           # and user/port/key/known_hosts per host
        bmc: {url: "http://127.0.0.1:8000", system: 1b1f...}
    credential_files: [secrets.env]          # BMC credentials (mode 0600)
    admin_keys: [admin_ed25519.pub]          # public keys for the admin user
    ansible_vars: {netplan_apply: false}     # override the phase playbooks' variables
    timeouts: {boot_s: 30, boot_interval_s: 1, ssh_s: 10, dhcp_s: 120}
    infiniband_env: {SIM_HOST: "{node} {hca}"}   # for ibnetdiscover; {node}/{hca}: the CA
    network_boot: false        # image: PXE + power cycle + wait for SSH, no boot followed
    boot_services:             # the provisioning host the image phase deploys them to
      ssh: {address: 10.99.0.2}
      vars: {boot_services_service_manager: none}
    image_note: nothing was reinstalled      # appended to each image result

``gpuctl lab up`` writes one for its lab; which file to use is the CLI's choice
(``--access``). :func:`load` reads one, :func:`resolve` turns plan + access into
:class:`Targets`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from provision.errors import ExecutionError, UsageError
from provision.execute.redfish import BmcTarget
from provision.execute.ssh import SshTarget
from provision.models.base import StrictModel
from provision.plan.build import Plan

FILE_NAME = "access.yaml"


class SshSpec(StrictModel):
    address: str | None = Field(None, description="Address to SSH to [default: the plan's "
                                "in-band address]; only per host.")
    user: str | None = Field(None, description="Login user [default: root].")
    port: int | None = Field(None, ge=1, le=65535)
    key: str | None = Field(None, description="Private key file [default: the user's "
                            "agent and keys].")
    known_hosts: str | None = Field(None, description="Host keys to verify against "
                                    "[default: ~/.ssh/known_hosts].")


class BmcSpec(StrictModel):
    url: str | None = Field(None, description="Redfish base URL [default: "
                            "https://<the plan's BMC address>].")
    system: str = Field("", description="ComputerSystem UUID, Id or Name [default: the "
                        "BMC's only system].")


class HostSpec(StrictModel):
    ssh: SshSpec = SshSpec()
    bmc: BmcSpec = BmcSpec()


class TimeoutSpec(StrictModel):
    boot_s: float | None = Field(None, gt=0, description="How long a host may take to "
                                 "come back on SSH after the image phase's power cycle.")
    boot_interval_s: float | None = Field(None, gt=0)
    ssh_s: float | None = Field(None, gt=0, description="One SSH or BMC call.")
    dhcp_s: float | None = Field(None, gt=0, description="image: how long a network-booted "
                                 "node may take from its power cycle to its DHCP lease "
                                 "[default: 120].")


class BootServicesSpec(StrictModel):
    """The provisioning host the image phase deploys the boot services to (and reads their
    records from): a head node on a real site, a lab host in the lab."""

    ssh: SshSpec = Field(default_factory=SshSpec, description="How to SSH to it [default: "
                         "root at the plan's services address, the file's ssh settings].")
    vars: dict[str, Any] = Field(default_factory=dict, description="Variables of "
                                 "playbooks/boot_services.yml over gpuctl image seed's "
                                 "(e.g. boot_services_service_manager: none).")


class AccessFile(StrictModel):
    """The schema of ``access.yaml`` (a typo in a key is an error)."""

    description: str = ""
    exclusive: bool = Field(False, description="Every planned host must be listed under "
                            "hosts (a lab: a host it does not have cannot be reached).")
    ssh: SshSpec = SshSpec()
    hosts: dict[str, HostSpec] = Field(default_factory=dict)
    credential_files: list[str] = Field(default_factory=list)
    admin_keys: list[str] = Field(default_factory=list, description="Public key files.")
    ansible_vars: dict[str, Any] = Field(default_factory=dict)
    timeouts: TimeoutSpec = TimeoutSpec()
    infiniband_env: dict[str, str] = Field(default_factory=dict)
    network_boot: bool = Field(True, description="The image phase follows each node's "
                               "network boot through the site's boot services; false where "
                               "hosts do not network-boot (a namespace lab): PXE + power "
                               "cycle, then wait for SSH.")
    image_note: str = ""
    boot_services: BootServicesSpec = Field(default_factory=BootServicesSpec)


@dataclass(frozen=True)
class Access:
    """An access file, read (paths absolute); ``Access()`` is a site without one."""

    source: Path | None = None
    spec: AccessFile = field(default_factory=AccessFile)

    @property
    def description(self) -> str:
        return self.spec.description

    def path(self, text: str | None) -> Path | None:
        if text is None:
            return None
        p = Path(text).expanduser()
        return p if p.is_absolute() or self.source is None else self.source.parent / p

    @property
    def credential_files(self) -> tuple[Path, ...]:
        return tuple(p for t in self.spec.credential_files if (p := self.path(t)) is not None)

    def admin_public_keys(self) -> tuple[str, ...]:
        out = []
        for text in self.spec.admin_keys:
            p = self.path(text)
            try:
                out.append(Path(str(p)).read_text().strip())
            except OSError as exc:
                raise UsageError(f"{self.source}: admin_keys: cannot read {p} "
                                 f"({exc.strerror or exc})") from exc
        return tuple(out)

    @property
    def ansible_vars(self) -> Mapping[str, Any]:
        return self.spec.ansible_vars

    @property
    def timeouts(self) -> TimeoutSpec:
        return self.spec.timeouts

    @property
    def image_note(self) -> str:
        return self.spec.image_note

    @property
    def network_boot(self) -> bool:
        return self.spec.network_boot

    def boot_services_target(self, services_address: str) -> SshTarget:
        """How to SSH to the provisioning host (``boot_services.ssh``, then the file's
        defaults, then root at the plan's services address)."""
        own, site = self.spec.boot_services.ssh, self.spec.ssh
        return SshTarget("boot services", own.address or services_address,
                         user=own.user or site.user or "root",
                         port=own.port or site.port or 22,
                         key_file=self.path(own.key or site.key),
                         known_hosts=self.path(own.known_hosts or site.known_hosts))

    def infiniband_env(self, node: str, hca: str) -> dict[str, str]:
        """The environment an InfiniBand tool needs to attach as ``node``'s ``hca``."""
        return {k: v.replace("{node}", node).replace("{hca}", hca)
                for k, v in self.spec.infiniband_env.items()}

    def with_ssh(self, *, user: str | None = None, key: Path | None = None,
                 known_hosts: Path | None = None) -> Access:
        """This access with the command line's SSH settings over every host's."""
        if user is None and key is None and known_hosts is None:
            return self
        over = {k: v for k, v in (("user", user), ("key", key and str(key.absolute())),
                                  ("known_hosts", known_hosts and str(known_hosts.absolute())))
                if v is not None}
        hosts = {name: h.model_copy(update={"ssh": h.ssh.model_copy(update=over)})
                 for name, h in self.spec.hosts.items()}
        return Access(self.source, self.spec.model_copy(update={
            "ssh": self.spec.ssh.model_copy(update=over), "hosts": hosts}))

    def ssh_target(self, host: str, plan_address: str | None) -> SshTarget:
        """How to SSH to ``host``: its own entry, then the file's defaults, then the plan."""
        own = self.spec.hosts.get(host, HostSpec()).ssh
        site = self.spec.ssh
        address = own.address or plan_address
        if address is None:
            raise ExecutionError(f"host {host}: the plan has no in-band address for it"
                                 + (f" and {self.source} gives none" if self.source else ""))
        return SshTarget(host, address, user=own.user or site.user or "root",
                         port=own.port or site.port or 22,
                         key_file=self.path(own.key or site.key),
                         known_hosts=self.path(own.known_hosts or site.known_hosts))


def load(path: Path) -> Access:
    """Read and check an access file; UsageError naming the file and field when it is bad."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UsageError(f"access file {path}: cannot read ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"access file {path}: not valid YAML ({exc})") from exc
    try:
        spec = AccessFile.model_validate(data or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise UsageError(f"access file {path}: {where}: {err['msg']}") from exc
    return Access(path.resolve(), spec)


def dump(spec: AccessFile) -> str:
    """The text of an access file (keys in schema order; defaults left out)."""
    data = spec.model_dump(mode="json", exclude_defaults=True)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def keyed_hosts(path: Path) -> frozenset[str]:
    """The host names and addresses a known_hosts file has a key for (none when missing)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return frozenset()
    except OSError as exc:
        raise UsageError(f"known_hosts {path}: cannot read ({exc.strerror or exc})") from exc
    return frozenset(name for line in text.splitlines()
                     if line.strip() and not line.lstrip().startswith("#")
                     for name in line.split()[0].split(","))


@dataclass(frozen=True)
class HostTarget:
    name: str
    rack: str
    group: str
    ssh: SshTarget
    bmc: BmcTarget


@dataclass(frozen=True)
class Targets:
    site: str
    hosts: tuple[HostTarget, ...]
    access: Access = field(default_factory=Access)
    credential_files: tuple[Path, ...] = ()
    admin_keys: tuple[str, ...] = ()

    def by_name(self) -> dict[str, HostTarget]:
        return {h.name: h for h in self.hosts}


def resolve(plan: Plan, access: Access | None = None, *, verify_tls: bool = True,
            credential_files: Sequence[Path] = (), admin_keys: Sequence[str] = (),
            known_hosts: Path | None = None) -> Targets:
    """Every planned host with how to reach it: ``access`` per host, else the plan's
    addresses with host keys checked against ``known_hosts`` (``gpuctl image seed`` writes
    the keys it pre-generated there) or the user's own when it is None. Where the access
    file network-boots its nodes, a node with a key in ``known_hosts`` is checked against
    it rather than the file's site-wide ``ssh.known_hosts`` (not its own entry's)."""
    acc = access or Access()
    listed = acc.spec.hosts
    names = {n.name for n in plan.nodes}
    unknown = sorted(set(listed) - names)
    if unknown:
        raise UsageError(f"{acc.source}: hosts: {unknown[0]!r} is not a host of site "
                         f"{plan.site.site.name}")
    # a node gpuctl pre-generated a host key for is verified against that key once it
    # network-boots its image, over the access file's site-wide known_hosts (a lab's lists
    # its namespace hosts only); a host's own known_hosts in the file still wins
    seeded = keyed_hosts(known_hosts) if known_hosts is not None and acc.network_boot \
        else frozenset()
    hosts: list[HostTarget] = []
    for node in plan.nodes:
        if acc.spec.exclusive and node.name not in listed:
            raise ExecutionError(f"host {node.name}: not in {acc.source} "
                                 f"(hosts there: {', '.join(sorted(listed)) or 'none'})")
        addrs = {a.pool: a.address for a in plan.addresses_of(node.name)}
        ssh = acc.ssh_target(node.name, addrs.get("inband"))
        own = listed.get(node.name, HostSpec()).ssh.known_hosts
        if known_hosts is not None and (ssh.known_hosts is None
                                        or (own is None and node.name in seeded)):
            ssh = SshTarget(ssh.host, ssh.address, ssh.user, ssh.port, ssh.key_file,
                            known_hosts)
        bmc = listed.get(node.name, HostSpec()).bmc
        url = bmc.url or (f"https://{addrs['oob']}" if "oob" in addrs else None)
        if url is None:
            raise ExecutionError(f"host {node.name}: the plan has no BMC address for it"
                                 + (f" and {acc.source} gives none" if acc.source else ""))
        hosts.append(HostTarget(node.name, node.rack, node.group, ssh,
                                BmcTarget(node.name, url, bmc.system, verify_tls)))
    return Targets(plan.site.site.name, tuple(hosts), acc,
                   tuple(credential_files) + acc.credential_files,
                   tuple(admin_keys) + acc.admin_public_keys())
