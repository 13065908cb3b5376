"""Regenerate tests/corpus/broken/*.yaml from the lab site: one mistake per file.

Each file starts with ``# expect: CODE exit N line L [file F]`` (F: the finding is in that
catalog file next to the site, not in the site file) and marks the line the finding must
point at with a ``# <- here`` comment; ``LINES`` names the line where a comment cannot go.
Files named ``*-catalog.yaml`` are catalog files the cases use, not sites.
Run: python tests/corpus/make_broken.py
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
LAB = (HERE.parents[1] / "inventory/sites/lab/site.yaml").read_text()

# A further InfiniBand fabric (and the one-node group it may attach), for the ib-* cases.
_ZONE2 = ("  infiniband:\n    zone2:\n      topology: fat-tree\n      switch: qm8700\n"
          "      speed: HDR\n      node_groups: {groups}\n      network_racks: [a01]\n")
_FF_GROUP = ("  - name: ff\n    type: pcie-a100-1hca\n    count: 1\n    hostname: \"lab-ff-{index:02d}\"\n"
             "    placement:\n      hall: h1\n      rows: [a]\n      nodes_per_rack: 1\n"
             "      u_positions: [26]\n\nfabrics:\n")

# name: (old, new, code, exit status)
CASES: dict[str, tuple[str, str, str, int]] = {
    "yaml-unclosed-bracket": ("rows: [a]", "rows: [a  # <- here", "GPU001", 2),
    "yaml-duplicate-key": ("  climate: temperate\n", "  climate: temperate\n  climate: cold  # <- here\n", "GPU003", 2),
    "unknown-top-level-key": ("halls:\n", "halsl:  # <- here\n  - {}\nhalls:\n", "GPU002", 1),
    "unknown-rack-key": ("rack: {size_u: 48, power_kw: 36, cooling: air}", "rack: {size_u: 48, power_kW: 36, power_kw: 36, cooling: air}  # <- here", "GPU002", 1),
    "wrong-type-racks": ("        racks: 1\n", "        racks: two  # <- here\n", "GPU002", 1),
    "negative-rack-power": ("power_kw: 36, cooling: air}", "power_kw: -5, cooling: air}  # <- here", "GPU002", 1),
    "missing-climate": ("  climate: temperate\n", "", "GPU002", 1),
    "bad-climate": ("  climate: temperate\n", "  climate: arctic  # <- here\n", "GPU002", 1),
    "bad-cidr-prefix": ("  inband: 10.210.0.0/20\n", "  inband: 10.210.0.0/33  # <- here\n", "GPU002", 1),
    "cidr-host-bits": ("  inband: 10.210.0.0/20\n", "  inband: 10.210.0.1/20  # <- here\n", "GPU002", 1),
    "hostname-unknown-field": ('hostname: "lab-gpu-{index:02d}"', 'hostname: "lab-{foo}-{index:02d}"  # <- here', "GPU133", 1),
    "hostname-bad-format-spec": ('hostname: "lab-gpu-{index:02d}"', 'hostname: "lab-gpu-{index:02q}"  # <- here', "GPU133", 1),
    "hostname-unclosed-brace": ('hostname: "lab-gpu-{index:02d}"', 'hostname: "lab-gpu-{index:02d"  # <- here', "GPU133", 1),
    "hostname-attribute-field": ('hostname: "lab-gpu-{index:02d}"', 'hostname: "lab-{rack.upper}-{index}"  # <- here', "GPU133", 1),
    "rack-names-unknown-field": ("        y_m: 0\n", '        y_m: 0\n        rack_names: "{rows}{index:02d}"  # <- here\n', "GPU133", 1),
    "rack-names-int-as-text": ("        y_m: 0\n", '        y_m: 0\n        rack_names: "{row}{index:>02s}"  # <- here\n', "GPU133", 1),
    "hostname-underscore": ('hostname: "lab-gpu-{index:02d}"', 'hostname: "lab_gpu_{index:02d}"  # <- here', "GPU134", 1),
    "hostname-dot": ('hostname: "lab-gpu-{index:02d}"', 'hostname: "lab.gpu-{index:02d}"  # <- here', "GPU134", 1),
    "hostname-upper-case": ('hostname: "lab-gpu-{index:02d}"', 'hostname: "Lab-GPU-{index:02d}"  # <- here', "GPU134", 1),
    "hostname-too-long": ('hostname: "lab-gpu-{index:02d}"', 'hostname: "lab-gpu-' + "x" * 60 + '-{index:02d}"  # <- here', "GPU134", 1),
    "domain-empty-label": ("  domain: lab.gpuctl.internal\n", "  domain: lab..internal  # <- here\n", "GPU134", 1),
    "rack-name-not-dns": ("        y_m: 0\n", '        y_m: 0\n        rack_names: "{row}_{index:02d}"  # <- here\n', "GPU135", 1),
    "non-finite-inf": ("power_kw: 36, cooling: air}", "power_kw: .inf, cooling: air}  # <- here", "GPU004", 1),
    "non-finite-1e400": ("    power_capacity_kw: 60\n", "    power_capacity_kw: 1e400  # <- here\n", "GPU004", 1),
    "non-finite-nan": ("  electricity_price_per_kwh: 0.12\n", "  electricity_price_per_kwh: .nan  # <- here\n", "GPU004", 1),
    "non-finite-overflow": ("  pue_target: 1.3\n", "  pue_target: 1.0e+999  # <- here\n", "GPU004", 1),
    "version-unquoted-float": ('  kubernetes: "1.33"\n', "  kubernetes: 1.30  # <- here\n", "GPU005", 1),
    "cuda-unquoted-float": ('  cuda: "13.0"\n', "  cuda: 13.0  # <- here\n", "GPU005", 1),
    "group-overlap": ("\nfabrics:\n", "  - name: svc\n    type: dgx-a100\n    count: 1\n    placement:\n      hall: h1\n      rows: [a]\n      nodes_per_rack: 1\n      u_positions: [24]  # <- here\n\nfabrics:\n", "GPU114", 1),
    "rows-same-floor": ("        rack: {size_u: 48, power_kw: 36, cooling: air}\n", "        rack: {size_u: 48, power_kw: 36, cooling: air}\n      - name: b\n        racks: 1\n        y_m: 0.5  # <- here\n        rack: {size_u: 48, power_kw: 36, cooling: air}\n", "GPU115", 1),
    "halls-same-floor": ("\nnode_groups:\n", "  - name: h2  # <- here\n    power_capacity_kw: 60\n    rows:\n      - {name: a, racks: 1, y_m: 0, rack: {size_u: 48, power_kw: 36, cooling: air}, rack_names: '{hall}{row}{index:02d}'}\n\nnode_groups:\n", "GPU115", 1),
    "oob-per-rack-zero": ("    switch: mgmt-1g-48\n", "    switch: mgmt-1g-48\n    per_rack: 0  # <- here\n", "GPU145", 1),
    "oob-missing": ("  oob:\n    switch: mgmt-1g-48\n", "", "GPU145", 1),
    "oob-racks-without-uplinks": ("        racks: 1\n", "        racks: 2\n", "GPU145", 1),
    "role-gpu-without-gpus": ("\nfabrics:\n", "  - name: stor  # <- here\n    type: storage-2u-nvme\n    count: 1\n    hostname: \"lab-stor-{index:02d}\"\n    placement:\n      hall: h1\n      rows: [a]\n      nodes_per_rack: 1\n      u_positions: [30]\n\nfabrics:\n", "GPU128", 1),
    "fabric-group-without-hcas": ("    node_groups: [gpu]\n", "    node_groups: [gpu, stor]  # <- here\n", "GPU129", 1),
    "ib-switch-as-ethernet-tor": ("    switch: sn4600c\n", "    switch: qm8700  # <- here\n", "GPU146", 1),
    "pue-implausible-for-climate": ("  pue_target: 1.3\n", "  pue_target: 1.02  # <- here\n", "GPU109", 0),
    "catalog-entry-bad-value": ("halls:\n", "catalogs: [bad-value-catalog.yaml]\nhalls:\n", "GPU002", 1),
    "catalog-entry-unknown-key": ("halls:\n", "catalogs: [unknown-key-catalog.yaml]\nhalls:\n", "GPU002", 1),
    "catalog-unknown-section": ("halls:\n", "catalogs: [unknown-section-catalog.yaml]\nhalls:\n", "GPU002", 1),
    "catalog-duplicate-sku": ("halls:\n", "catalogs: [duplicate-sku-catalog.yaml]\nhalls:\n", "GPU131", 1),
    "catalog-non-finite": ("halls:\n", "catalogs: [non-finite-catalog.yaml]\nhalls:\n", "GPU004", 1),
    "catalog-unknown-transceiver": ("halls:\n", "catalogs: [unknown-optic-catalog.yaml]\nhalls:\n", "GPU126", 1),
    "catalog-ports-not-cages": ("halls:\n", "catalogs: [ports-cages-catalog.yaml]\nhalls:\n", "GPU002", 1),
    "catalog-gpu-facts-without-gpus": ("halls:\n", "catalogs: [gpuless-gpu-model-catalog.yaml]\nhalls:\n", "GPU002", 1),
    "catalog-file-missing": ("halls:\n", "catalogs: [no-such-catalog.yaml]  # <- here\nhalls:\n", "GPU001", 2),
    "yaml-tab-indent": ("    count: 4\n", "\tcount: 4  # <- here\n", "GPU001", 2),
    "yaml-bad-tag-value": ("    power_capacity_kw: 60\n", "    power_capacity_kw: !!float sixty  # <- here\n", "GPU001", 2),
    "yaml-python-tag": ("  currency: USD\n", "  currency: !!python/name:os.system  # <- here\n", "GPU001", 2),
    "u-positions-count": ("      nodes_per_rack: 4\n", "      nodes_per_rack: 3\n", "GPU002", 1),
    "unknown-node-type": ("    type: dgx-a100\n", "    type: dgx-h900  # <- here\n", "GPU124", 1),
    "unknown-hall": ("      hall: h1\n", "      hall: h9  # <- here\n", "GPU121", 1),
    "unknown-row": ("      rows: [a]\n", "      rows: [z]  # <- here\n", "GPU121", 1),
    "unknown-switch": ("    switch: qm8700\n", "    switch: qm9999  # <- here\n", "GPU125", 1),
    "unknown-fabric-group": ("    node_groups: [gpu]\n", "    node_groups: [gpus]  # <- here\n", "GPU122", 1),
    "unknown-image": ('    hostname: "lab-gpu-{index:02d}"\n', '    hostname: "lab-gpu-{index:02d}"\n    image: tiny  # <- here\n', "GPU127", 1),
    "unknown-network-rack": ("    network_racks: [a01]\n", "    network_racks: [z01]  # <- here\n", "GPU123", 1),
    "rack-over-budget": ("power_kw: 36, cooling: air}", "power_kw: 20, cooling: air}  # <- here", "GPU101", 1),
    "hall-over-capacity": ("    power_capacity_kw: 60\n", "    power_capacity_kw: 25  # <- here\n", "GPU102", 1),
    "site-over-capacity": ("  power_capacity_mw: 0.1\n", "  power_capacity_mw: 0.02  # <- here\n", "GPU103", 1),
    "air-cannot-cool": ("power_kw: 36, cooling: air}", "power_kw: 60, cooling: air}  # <- here", "GPU104", 1),  # + hgx-h100
    "liquid-node-in-air-rack": ("    type: dgx-a100\n    count: 4\n", "    type: hgx-b200-dlc  # <- here\n    count: 2\n", "GPU105", 1),
    "node-above-rack-top": ("u_positions: [2, 8, 14, 20]", "u_positions: [2, 8, 14, 44]", "GPU111", 1),
    "overlapping-slots": ("u_positions: [2, 8, 14, 20]", "u_positions: [2, 5, 14, 20]  # <- here", "GPU113", 1),
    "su-overflow": ("    count: 4\n", "    count: 4  # <- here\n", "GPU140", 0),  # + rail-optimized
    "not-enough-racks": ("    count: 4\n", "    count: 5  # <- here\n", "GPU112", 1),
    "duplicate-row": ("        rack: {size_u: 48, power_kw: 36, cooling: air}\n", "        rack: {size_u: 48, power_kw: 36, cooling: air}\n      - name: a  # <- here\n        racks: 1\n        y_m: 3\n        rack: {size_u: 48, power_kw: 36, cooling: air}\n", "GPU131", 1),
    "fm-version-mismatch": ("  dcgm: 4.4.1\n", "  dcgm: 4.4.1\n  fabric_manager: 580.82.07  # <- here\n", "GPU161", 1),
    "cuda-newer-than-driver": ('  cuda: "13.0"\n  nccl: 2.28.3\n', '  cuda: "13.2"  # <- here\n  nccl: 2.28.9\n', "GPU162", 1),
    "eol-driver-branch": ('  driver_branch: 580\n  driver_version: 580.95.05\n  cuda: "13.0"\n  nccl: 2.28.3\n', '  driver_branch: 535  # <- here\n  driver_version: 535.183.01\n  cuda: "12.2"\n  nccl: 2.21.5\n', "GPU163", 1),
    "driver-off-branch": ("  driver_version: 580.95.05\n", "  driver_version: 575.57.08  # <- here\n", "GPU165", 1),
    "nccl-not-built-for-cuda": ("  nccl: 2.28.3\n", "  nccl: 2.25.1  # <- here\n", "GPU166", 1),
    "unknown-burnin-profile": ("  profile: a100-hdr\n", "  profile: a100-xyz  # <- here\n", "GPU167", 1),
    "nic-port-speed-mismatch": ("  inband:\n    switch: sn4600c\n", "  inband:\n    switch: sn5600  # <- here\n", "GPU142", 1),
    "hca-slower-than-fabric": ("    type: dgx-a100\n", "    type: dgx-a100  # <- here\n", "GPU142", 1),  # + NDR qm9700
    "fabric-speed-mismatch": ("    speed: HDR\n", "    speed: NDR  # <- here\n", "GPU142", 1),
    "planes-vs-hcas": ("    topology: fat-tree\n", "    topology: multi-plane\n    planes: 4  # <- here\n", "GPU143", 1),
    "pools-overlap": ("  oob: 10.210.16.0/20\n", "  oob: 10.210.0.0/24\n", "GPU152", 1),
    "pool-too-small": ("  inband: 10.210.0.0/20\n", "  inband: 10.210.0.0/29  # <- here\n", "GPU151", 1),
    "fabric-radix-too-small": ("halls:\n", "catalogs: [tiny-catalog.yaml]\nhalls:\n", "GPU141", 1),
    "missing-include": ("halls:\n", "includes: [no-such-file.yaml]\nhalls:\n", "GPU001", 2),
    "ib-group-on-two-fabrics": ("  inband:\n    switch: sn4600c\n", _ZONE2.format(groups="[gpu]  # <- here") + "  inband:\n    switch: sn4600c\n", "GPU147", 1),
    "ib-fabric-unknown-group": ("  inband:\n    switch: sn4600c\n", _ZONE2.format(groups="[gpus]  # <- here") + "  inband:\n    switch: sn4600c\n", "GPU122", 1),
    "ib-fabric-name-reserved": ("  inband:\n    switch: sn4600c\n", _ZONE2.replace("zone2:", "storage:  # <- here").format(groups="[ff]") + "  inband:\n    switch: sn4600c\n", "GPU148", 1),
    "ib-fabric-ufm": ("  inband:\n    switch: sn4600c\n", _ZONE2.replace("fat-tree", "rail-optimized  # <- here").format(groups="[ff]") + "  inband:\n    switch: sn4600c\n", "GPU149", 1),
    "ipoib-unknown-fabric": ("  ipoib: [10.210.64.0/18]\n", "  ipoib: [10.210.64.0/18]\n  ipoib_fabrics: {zone9: [10.210.128.0/20]}  # <- here\n", "GPU153", 1),
    "rack-over-one-feed": ("        rack: {size_u: 48, power_kw: 36, cooling: air}\n", "        rack: {size_u: 48, power_kw: 36, cooling: air, pdu: pdu-3ph-400v-32a}  # <- here\n", "GPU106", 1),
    "pdu-too-few-outlets": ("        rack: {size_u: 48, power_kw: 36, cooling: air}\n", "        rack: {size_u: 48, power_kw: 36, cooling: air, pdu: pdu-3ph-415v-63a-net}  # <- here\n", "GPU107", 1),
    "pdu-one-feed": ("        rack: {size_u: 48, power_kw: 36, cooling: air}\n", "        rack: {size_u: 48, power_kw: 36, cooling: air, pdus: 1}  # <- here\n", "GPU108", 1),
    "unknown-pdu": ("        rack: {size_u: 48, power_kw: 36, cooling: air}\n", "        rack: {size_u: 48, power_kw: 36, cooling: air, pdu: pdu-nope}  # <- here\n", "GPU117", 1),
    "pair-in-one-rack": ("  inband:\n    switch: sn4600c\n", "  inband:\n    switch: sn4600c\n    spine_switch: sn4600c\n    network_racks: [a01]  # <- here\n", "GPU116", 1),
    "no-rack-space-for-switches": ("power_kw: 36, cooling: air}", "power_kw: 36, cooling: air, size_u: 26}", "GPU002", 1),
}
# Where the marker comment cannot go on the reported line, give the line explicitly.
LINES = {"missing-climate": "=site:", "yaml-unclosed-bracket": "      nodes_per_rack: 4", "u-positions-count": "    placement:",
         "node-above-rack-top": "u_positions: [2, 8, 14, 44]",
         "pools-overlap": "  oob: 10.210.0.0/24",
         "fabric-radix-too-small": "  compute:",
         "missing-include": "includes:",
         "no-rack-space-for-switches": "  compute:",
         "oob-missing": "=fabrics:",
         "oob-racks-without-uplinks": "=  oob:",
}

# Catalog files the catalog-* cases use: name -> (text, line of the finding in it or 0).
_SW = ("vendor: Test, model: T, technology: infiniband, ports: {ports}, cages: 40, "
       "ports_per_cage: 1, speed_gbps: 200, ib_speed: HDR, max_power_kw: {kw}, "
       "typical_power_kw: 0.4, rack_units: 1")
CATALOGS: dict[str, tuple[str, int]] = {
    "bad-value-catalog.yaml": ("# A switch whose port count is not a number.\nswitches:\n"
                               "  - {name: test-ib, " + _SW.format(ports="lots", kw=0.8) + "}\n", 3),
    "unknown-key-catalog.yaml": ("# A node type with a misspelled key.\nnodes:\n  - name: test-node\n"
                                 "    vendor: Test\n    model: T\n    gpus: 1\n"
                                 "    gpu_model: NVIDIA A100-PCIE-40GB\n    gpu_generation: ampere\n"
                                 "    gpu_memory_gib: 40\n    nvswitch: false\n    form_factor: pcie\n"
                                 "    compute_hcas: []\n    storage_nics: 0\n"
                                 "    storage_nic_gbps: 0\n    inband_nics: 1\n"
                                 "    inband_nic_gbps: 25\n    max_power_kw: 1.0\n"
                                 "    typical_power_kw: 0.5\n    rack_units: 1\n"
                                 "    rack_unit: 2\n", 20),
    "unknown-section-catalog.yaml": ("# A section the catalog does not have.\nswitches: []\n"
                                     "routers:\n  - {name: r1}\n", 3),
    "duplicate-sku-catalog.yaml": ("# The same SKU twice in one file.\nswitches:\n"
                                   "  - {name: test-ib, " + _SW.format(ports=40, kw=0.8) + "}\n"
                                   "  - {name: test-ib, " + _SW.format(ports=40, kw=0.9) + "}\n", 4),
    "non-finite-catalog.yaml": ("# A switch drawing infinite power.\nswitches:\n"
                                "  - {name: test-ib, " + _SW.format(ports=40, kw=".inf") + "}\n", 3),
    "unknown-optic-catalog.yaml": ("# A fiber cable naming an optic the catalog does not have.\ncables:\n"
                                   "  - name: mm-hdr\n    medium: fiber-mm\n    speed_gbps: 200\n"
                                   "    technology: infiniband\n    max_length_m: 100\n"
                                   "    lengths_m: [10, 30, 100]\n    transceiver: qsfp56-200g-sr4\n", 9),
    "gpuless-gpu-model-catalog.yaml": ("# A storage server (no GPUs) that names a GPU model.\nnodes:\n"
                                       "  - name: test-storage\n    vendor: Test\n    model: T\n"
                                       "    gpu_model: NVIDIA H100 80GB HBM3\n    storage_nics: 2\n"
                                       "    storage_nic_gbps: 400\n    inband_nics: 1\n"
                                       "    inband_nic_gbps: 25\n    max_power_kw: 2.0\n"
                                       "    typical_power_kw: 1.2\n    rack_units: 2\n", 6),
    "ports-cages-catalog.yaml": ("# 40 ports on 20 single-port cages.\nswitches:\n"
                                 "  - {name: test-ib, " + _SW.format(ports=40, kw=0.8).replace("cages: 40", "cages: 20") + "}\n", 3),
}
CATALOG_OF = {"catalog-entry-bad-value": "bad-value-catalog.yaml",
              "catalog-entry-unknown-key": "unknown-key-catalog.yaml",
              "catalog-unknown-section": "unknown-section-catalog.yaml",
              "catalog-duplicate-sku": "duplicate-sku-catalog.yaml",
              "catalog-non-finite": "non-finite-catalog.yaml",
              "catalog-unknown-transceiver": "unknown-optic-catalog.yaml",
              "catalog-ports-not-cages": "ports-cages-catalog.yaml",
              "catalog-gpu-facts-without-gpus": "gpuless-gpu-model-catalog.yaml"}


PORT_MODE = {"air-cannot-cool": "25", "liquid-node-in-air-rack": "25",
             "fabric-group-without-hcas": "{stor: 25}", "role-gpu-without-gpus": "{stor: 25}",
             "ib-fabric-name-reserved": "{ff: 25}", "ib-fabric-ufm": "{ff: 25}"}


def main() -> None:
    out = HERE / "broken"
    out.mkdir(exist_ok=True)
    for name, (old, new, code, status) in CASES.items():
        assert old in LAB, name
        text = LAB.replace(old, new, 1)
        if name == "air-cannot-cool":
            text = text.replace("type: dgx-a100", "type: hgx-h100").replace(
                "u_positions: [2, 8, 14, 20]", "u_positions: [2, 10, 18, 26]")
        if name in ("ib-fabric-name-reserved", "ib-fabric-ufm"):
            text = text.replace("\nfabrics:\n", _FF_GROUP, 1)
        if name == "su-overflow":  # 4 nodes in SUs of 3: SU 2 holds one node, in rack a02
            text = text.replace("    topology: fat-tree\n", "    topology: rail-optimized\n"
                                "    su_size: 3\n    ufm_ports: 0\n").replace(
                "        racks: 1\n", "        racks: 2\n").replace(
                "power_kw: 36, cooling: air}", "power_kw: 44, cooling: air, pdus: 4}").replace(
                "    switch: mgmt-1g-48\n", "    switch: mgmt-1g-48\n    spine_switch: sn2201\n"
                "    network_racks: [a01]\n    pairs_in_one_rack: true\n")
        if name == "hca-slower-than-fabric":  # HDR HCAs on an NDR fabric
            text = text.replace("    switch: qm8700\n    speed: HDR\n",
                                "    switch: qm9700\n    speed: NDR\n")
        if name == "fabric-radix-too-small":
            text = text.replace("switch: qm8700", "switch: tiny-ib4")
        if name == "no-rack-space-for-switches":
            text = text.replace("cooling: air, size_u: 26}", "cooling: air}").replace(
                "size_u: 48, power_kw: 36", "size_u: 26, power_kw: 36")
            code, status = "GPU144", 1
        if name == "oob-racks-without-uplinks":  # two racks of two nodes each
            text = text.replace("      nodes_per_rack: 4\n      u_positions: [2, 8, 14, 20]",
                                "      nodes_per_rack: 2\n      u_positions: [2, 8]")
        if name == "rack-name-not-dns":
            text = text.replace("network_racks: [a01]", "network_racks: [a_01]")
        if name in ("rack-names-unknown-field", "rack-names-int-as-text"):
            text = text.replace("network_racks: [a01]", "network_racks: [a]")
        if name == "group-overlap":  # room in the power budget for the fifth node
            text = text.replace("power_kw: 36, cooling: air}", "power_kw: 44, cooling: air}")
        if name == "fabric-group-without-hcas":  # a storage group (no HCAs) on the IB fabric
            text = text.replace("\nfabrics:\n", "  - name: stor\n    type: storage-2u-nvme\n    role: storage\n    count: 1\n    hostname: \"lab-stor-{index:02d}\"\n    placement:\n      hall: h1\n      rows: [a]\n      nodes_per_rack: 1\n      u_positions: [30]\n\nfabrics:\n", 1)
        if name == "duplicate-row":  # the lab's OOB /20 holds a 4-rack capacity grid
            text = text.replace("\naddressing:\n", "\naddressing:\n  capacity: {racks_per_row: 4}\n")
        if name == "halls-same-floor":
            text = text.replace("  power_capacity_mw: 0.1\n", "  power_capacity_mw: 0.2\n")
        if name in PORT_MODE:  # 25G in-band NICs on 100G ToR ports run in a chosen mode
            text = text.replace("  inband:\n    switch: sn4600c\n", "  inband:\n    switch: sn4600c\n"
                                f"    node_port_gbps: {PORT_MODE[name]}\n", 1)
        lines = text.splitlines()
        if name in CATALOG_OF:
            cat = CATALOG_OF[name]
            header = f"# expect: {code} exit {status} line {CATALOGS[cat][1]} file {cat}\n"
        else:
            marker = LINES.get(name, "# <- here")
            line = next(i for i, ln in enumerate(lines, 3)
                        if (ln == marker[1:] if marker.startswith("=") else marker in ln))
            header = f"# expect: {code} exit {status} line {line}\n"
        (out / f"{name}.yaml").write_text(header + f"# case: {name}\n" + text)
    for cat, (cat_text, _) in CATALOGS.items():
        (out / cat).write_text(cat_text)
    (out / "tiny-catalog.yaml").write_text(
        "# A 4-port HDR switch: too small for the lab fabric in two tiers.\nswitches:\n"
        "  - {name: tiny-ib4, vendor: Test, model: 4-port HDR, technology: infiniband, "
        "ports: 4, cages: 4, ports_per_cage: 1, speed_gbps: 200, ib_speed: HDR, "
        "max_power_kw: 0.1, typical_power_kw: 0.05, rack_units: 1}\n")


if __name__ == "__main__":
    main()
