"""Plan + a node's first-boot material -> its cloud-init NoCloud seed (pure).

Each node gets its own seed (``meta-data``, ``user-data``, ``network-config``), served by the
provisioning host at ``http://<services>/seeds/<host>/`` (kernel argument
``ds=nocloud;s=http://<services>/seeds/<host>/``): its hostname and FQDN, its planned in-band
(and storage) addresses, the admin keys for root and the admin user, the SSH host key gpuctl
generated for it (so the first SSH connection is verified against known_hosts, never trusted
on first use), and a phone-home to the provisioning host when first boot is done. A seed holds
a private key: it is a secret, written 0600 outside ``generated/``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import yaml

from provision.plan.build import Plan
from provision.render.topo import services_address

ADMIN_USER = "gpuadmin"


@dataclass(frozen=True)
class HostKey:
    private: str  # OpenSSH PEM text
    public: str  # "ssh-ed25519 AAAA..." (no comment)


def seed_url(services: str, host: str) -> str:
    return f"http://{services}/seeds/{host}/"


def phone_home_url(services: str, host: str) -> str:
    return f"http://{services}/phone-home/{host}"


class _SeedDumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks (keys stay readable); no anchors/aliases."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_SeedDumper.add_representer(str, _str)


def _dump(data: object) -> str:
    return yaml.dump(data, Dumper=_SeedDumper, sort_keys=False, default_flow_style=False,
                     width=1000)


def network_config(plan: Plan, host: str,
                   macs: Mapping[str, str] | None = None) -> dict[str, object]:
    """netplan v2 of the node's planned in-band and storage addresses; an interface whose MAC
    the delivery manifest knows (``macs``: "<host>/<interface>" -> MAC) is matched by it and
    given its planned name, whatever the kernel called it."""
    svc = services_address(plan)
    ethernets: dict[str, object] = {}
    for a in plan.addresses_of(host):
        mac = (macs or {}).get(f"{host}/{a.interface}")
        named: dict[str, object] = ({"match": {"macaddress": mac}, "set-name": a.interface}
                                    if mac else {})
        if a.pool == "inband":
            eth: dict[str, object] = {**named, "addresses": [f"{a.address}/{a.prefix}"],
                                      "nameservers": {"addresses": [svc],
                                                      "search": [plan.site.site.domain]}}
            if a.gateway:
                # gateway4, not routes: cloud-init renders a route for ifupdown images
                # (Debian) as "post-up route add", and net-tools' route is not in a minimal
                # image (a routed rack's node came up without its default route); gateway4
                # becomes ifupdown's own "gateway" (and netplan still reads it)
                eth["gateway4"] = a.gateway
            ethernets[a.interface] = eth
        elif a.pool == "storage":
            ethernets[a.interface] = {**named, "addresses": [f"{a.address}/{a.prefix}"],
                                      "mtu": 9000}
    return {"version": 2, "ethernets": ethernets}


def node_seed(plan: Plan, host: str, key: HostKey, admin_keys: Sequence[str],
              image_digest: str = "", macs: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{"meta-data", "user-data", "network-config"}`` of one node."""
    svc = services_address(plan)
    fqdn = f"{host}.{plan.site.site.domain}"
    keys = list(admin_keys)
    meta = {"instance-id": f"{plan.site.site.name}-{host}", "local-hostname": host}
    user: dict[str, object] = {
        "hostname": host, "fqdn": fqdn, "prefer_fqdn_over_hostname": False,
        "manage_etc_hosts": True,
        # built into glibc: nothing to generate (cloud-init's default, en_US.UTF-8, is not
        # in a minimal image and fails the locale module)
        "locale": "C.UTF-8",
        "disable_root": False,
        "ssh_pwauth": False,
        "ssh_deletekeys": True,
        "ssh_keys": {"ed25519_private": key.private, "ed25519_public": key.public},
        "users": [{"name": "root", "lock_passwd": True, "ssh_authorized_keys": keys},
                  {"name": ADMIN_USER, "groups": ["sudo"], "shell": "/bin/bash",
                   "lock_passwd": True, "sudo": "ALL=(ALL) NOPASSWD:ALL",
                   "ssh_authorized_keys": keys}],
        "write_files": [{"path": "/etc/gpuctl/image.json", "permissions": "0644",
                         "content": json.dumps({"host": host, "site": plan.site.site.name,
                                                "image_digest": image_digest},
                                               sort_keys=True) + "\n"}],
        "phone_home": {"url": phone_home_url(svc, host),
                       "post": ["pub_key_ed25519", "instance_id", "hostname", "fqdn"],
                       "tries": 10},
    }
    return {"meta-data": _dump(meta), "user-data": "#cloud-config\n" + _dump(user),
            "network-config": _dump(network_config(plan, host, macs))}
