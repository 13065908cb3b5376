"""Plan -> Ubuntu autoinstall (cloud-init) seeds per node group:
``cloud-init/<group>/user-data`` and ``cloud-init/<group>/meta-data``.

The installer brings up the group's boot interface with DHCP (the Kea reservation gives the
node its planned address and hostname), installs the base packages the later Ansible phases
expect (Python for Ansible, RDMA tools on nodes with HCAs), and fetches the admin user's SSH
keys from the provisioning server; the NVIDIA stack is installed by Ansible, pinned to the
site's versions.
"""

from __future__ import annotations

from provision.plan.build import Plan
from provision.render.templating import render
from provision.render.topo import services_address

ADMIN_USER = "gpuadmin"
BASE_PACKAGES = ("openssh-server", "python3", "python3-apt", "chrony", "curl", "ipmitool")
RDMA_PACKAGES = ("rdma-core", "ibverbs-utils", "infiniband-diags")


def cloudinit_tree(plan: Plan) -> dict[str, str]:
    files: dict[str, str] = {}
    svc = services_address(plan)
    used = {n.group for n in plan.nodes}
    for g in plan.site.node_groups:
        if g.name not in used:
            continue
        ntype = plan.catalog.nodes[g.type]
        packages = list(BASE_PACKAGES) + (list(RDMA_PACKAGES) if ntype.compute_hcas else [])
        files[f"cloud-init/{g.name}/user-data"] = render(
            "cloud-init/user-data.j2", site=plan.site.site.name, group=g, ntype=ntype,
            os=plan.site.software.os, services=svc, packages=packages,
            admin_user=ADMIN_USER)
        files[f"cloud-init/{g.name}/meta-data"] = (
            f"instance-id: {plan.site.site.name}-{g.name}\n")
    return files
