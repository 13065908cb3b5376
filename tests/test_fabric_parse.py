"""The ibnetdiscover / iblinkinfo parsers on raw text alone."""

from __future__ import annotations

import pytest

from provision.errors import ParseError
from provision.fabric.linkinfo import parse_iblinkinfo
from provision.fabric.observed import ObservedLink
from provision.fabric.topology import parse_ibnetdiscover, parse_topology

HW = """\
#
# Topology file: generated on Tue Mar  4 10:00:00 2025
#
vendid=0x2c9
devid=0xd2f0
sysimgguid=0xb8599f0300c2f06a
switchguid=0xb8599f0300c2f06a(b8599f0300c2f06a)
Switch\t64 "S-b8599f0300c2f06a"\t\t# "MF0;ib-su01-leaf01:MQM9700/U1" enhanced port 0 lid 3 lmc 0
[1]\t"H-a088c20300a1b2c0"[1](a088c20300a1b2c0) \t\t# "dgx-001.example mlx5_0" lid 7 4xNDR
[2][ext 2]\t"H-a088c20300a1b2d0"[1](a088c20300a1b2d0) \t# "dgx-002 mlx5_0" lid 9 2xNDR s=4 w=2
[33]\t"S-b8599f0300c2f0aa"[1]\t\t# "ib-spine01" lid 5 4xNDR s=4 w=2 v=4 e=4

vendid=0x2c9
devid=0x1021
sysimgguid=0xa088c20300a1b2c0
caguid=0xa088c20300a1b2c0
Ca\t1 "H-a088c20300a1b2c0"\t\t# "dgx-001.example mlx5_0"
[1](a088c20300a1b2c0) \t"S-b8599f0300c2f06a"[1]\t\t# lid 7 lmc 0 "MF0;ib-su01-leaf01:MQM9700/U1" lid 3 4xNDR

rtguid=0x0000000000000777
Rt\t2 "R-0000000000000777"\t\t# "router one"
"""


def test_hardware_style_records_ports_and_rates() -> None:
    topo = parse_ibnetdiscover(HW)
    leaf = topo.devices["0xb8599f0300c2f06a"]
    assert (leaf.kind, leaf.desc, leaf.nports, leaf.lid) == \
        ("switch", "MF0;ib-su01-leaf01:MQM9700/U1", 64, 3)
    ca = topo.devices["0xa088c20300a1b2c0"]
    assert (ca.kind, ca.desc, ca.guid, ca.port_guids) == \
        ("ca", "dgx-001.example mlx5_0", "0xa088c20300a1b2c0", {1: "0xa088c20300a1b2c0"})
    # peers known only from port lines become devices without a record
    spine = topo.devices["0xb8599f0300c2f0aa"]
    assert (spine.kind, spine.desc, spine.seen) == ("switch", "ib-spine01", False)
    other = topo.devices["0xa088c20300a1b2d0"]
    assert (other.kind, other.desc, other.port_guids) == \
        ("ca", "dgx-002 mlx5_0", {1: "0xa088c20300a1b2d0"})
    assert topo.devices["0x0000000000000777"].kind == "router"
    assert set(topo.links) == {
        ObservedLink("0xa088c20300a1b2c0", 1, "0xb8599f0300c2f06a", 1, "4x", "NDR"),
        ObservedLink("0xa088c20300a1b2d0", 1, "0xb8599f0300c2f06a", 2, "2x", "NDR"),
        ObservedLink("0xb8599f0300c2f06a", 33, "0xb8599f0300c2f0aa", 1, "4x", "NDR"),
    }


def test_ibsim_net_file_names_are_ids_and_guid_lines_give_guids() -> None:
    net = """\
switchguid=0x0200000000000100
Switch 8 "ib-leaf001"
[1] "h1 mlx5_0"[1] # lid 0 4xHDR
[2] "h1 mlx5_1" w=1

caguid=0x0200000000000010
Hca 1 "h1 mlx5_0"
[1] "ib-leaf001"[1] # lid 0 4xHDR

Hca 1 "h1 mlx5_1"
[1] "ib-leaf001"[2]
"""
    topo = parse_ibnetdiscover(net)
    assert topo.devices["ib-leaf001"].guid == "0x0200000000000100"
    assert topo.devices["h1 mlx5_0"].guid == "0x0200000000000010"
    assert topo.devices["h1 mlx5_1"].guid is None
    assert ObservedLink("h1 mlx5_1", 1, "ib-leaf001", 2) in topo.links


@pytest.mark.parametrize(("text", "reason"), [
    ("", "no Switch or Ca records"),
    ("just words\n", "line 1: unexpected text 'just words'"),
    ('[1] "S-01"[1]\n', "line 1: port line before any Switch/Ca record"),
    ('Switch 4 "S-01" # "a"\n[5] "S-02"[1]\n', "line 2: port 5 out of range for 'a' (4 ports)"),
    ('Ca 1 "H-01" # "a"\n[1] "S-02"[1]\n[1] "S-02"[2]\n', "line 3: port 1 of 'a' is listed twice"),
    ('Switch 4 "S-01" # "a"\nSwitch 4 "S-01" # "b"\n', "line 2: node 'S-01' is listed twice"),
    ('Ca 1 "S-01" # "a"\n', "line 1: Ca record has a switch id 'S-01'"),
    ("caguid=zz\n", "line 1: caguid='zz' is not a GUID"),
    ('Switch 4 "S-01" # "a"\n[1] "S-01"[1]\n', "line 2: 'a' port 1 is cabled to itself"),
    ('Switch 4 "S-01" # "a"\n[1] "S-02\n', "line 2: malformed port line"),
])
def test_garbage_raises_one_line_parse_error(text: str, reason: str) -> None:
    with pytest.raises(ParseError) as err:
        parse_ibnetdiscover(text)
    assert reason in str(err.value)
    assert "\n" not in str(err.value)


def test_merge_keeps_one_copy_of_each_link() -> None:
    topo = parse_ibnetdiscover(HW)
    both = topo.merge(parse_ibnetdiscover(HW))
    assert both.links == topo.links and both.devices.keys() == topo.devices.keys()


LINKINFO = """\
Switch: 0x0000000000200001 ib-spine01:
           1    1[  ] ==( 4X        53.125 Gbps Active/  LinkUp)==>       2    5[  ] "ib-leaf001" ( )
           1    3[  ] ==(                Down/ Polling)==>             [  ] "" ( )
Switch: 0x0000000000200000 ib-leaf001:
           2    1[  ] ==( 4X        53.125 Gbps Active/  LinkUp)==>       3    1[  ] "h1 mlx5_0" ( )
           2    2[  ] ==( 1X      25.78125 Gbps Active/  LinkUp)==>       0    1[  ] "h2 mlx5_0" (Could be 4X)
           2    5[  ] ==( 4X        53.125 Gbps Active/  LinkUp)==>       1    1[  ] "ib-spine01" ( )
CA: h1 mlx5_0:
      0x0000000000100001      3    1[  ] ==( 4X        53.125 Gbps Active/  LinkUp)==>       2    1[  ] "ib-leaf001" ( )
"""


def test_iblinkinfo_links_and_rates() -> None:
    topo = parse_topology(LINKINFO)
    assert topo.source == "iblinkinfo"
    h1 = topo.devices["port:0x0000000000100001"]
    assert (h1.kind, h1.desc, h1.guid) == ("ca", "h1 mlx5_0", None)
    h2 = topo.devices["desc:h2 mlx5_0"]
    assert not h2.seen
    got = {(lk.a, lk.a_port, lk.b, lk.b_port, lk.rate) for lk in topo.links}
    assert got == {
        ("0x0000000000200000", 5, "0x0000000000200001", 1, "4xHDR"),
        ("0x0000000000200000", 1, "port:0x0000000000100001", 1, "4xHDR"),
        ("0x0000000000200000", 2, "desc:h2 mlx5_0", 1, "1xEDR"),
    }


def test_iblinkinfo_ambiguous_peer_is_an_error() -> None:
    up = "==( 4X        53.125 Gbps Active/  LinkUp)==>"
    text = "".join(f"Switch: 0x{n:016x} dup:\n           0    1[  ] {up}       0    1[  ] "
                   '"dup" ( )\n' for n in (1, 2, 3))
    with pytest.raises(ParseError, match="'dup' is ambiguous"):
        parse_iblinkinfo(text)
