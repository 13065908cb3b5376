"""Boot progress from Kea's lease file and the boot services' access log (raw text)."""

from __future__ import annotations

from provision.image.observe import boot_progress, parse_access_log, parse_leases, stopped_at

LEASES = """address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context
10.214.5.18,52:54:00:b0:07:02,01:52:54:00:b0:07:02,86400,1796000000,1,0,0,lab-gpu-02,0,
10.214.5.17,,00:6c:61:62,86400,1796000000,1,0,0,lab-gpu-01,0,
10.214.5.19,52:54:00:b0:07:03,,86400,17960
"""
LOG = """10.214.5.18 [2026-12-02T07:40:01+00:00] "GET /ipxe/boot.ipxe HTTP/1.1" 200 212
10.214.5.18 [2026-12-02T07:40:02+00:00] "GET /ipxe/nodes/lab-gpu-02.ipxe HTTP/1.1" 200 400
10.214.5.18 [2026-12-02T07:40:02+00:00] "GET /images/tiny/vmlinuz HTTP/1.1" 404 153
10.214.5.17 [2026-12-02T07:40:03+00:00] "GET /ipxe/boot.ipxe HTTP/1.1" 200 212
garbage line
"""


def test_parsers_read_kea_and_nginx_text() -> None:
    leases = parse_leases(LEASES)
    assert [(ls.address, ls.hwaddr, ls.hostname) for ls in leases][:2] == [
        ("10.214.5.18", "52:54:00:b0:07:02", "lab-gpu-02"), ("10.214.5.17", "", "lab-gpu-01")]
    reqs = parse_access_log(LOG)
    assert len(reqs) == 4 and reqs[2].status == 404 and reqs[2].path == "/images/tiny/vmlinuz"


def test_stopped_at_names_the_first_missing_step() -> None:
    leases, reqs = parse_leases(LEASES), parse_access_log(LOG)
    steps = boot_progress("lab-gpu-02", "10.214.5.18", "52:54:00:B0:07:02", "tiny", leases, reqs)
    assert [s.name for s in steps if s.done] == ["dhcp", "boot-script", "node-script"]
    stop = stopped_at(steps)
    assert stop is not None and stop.detail == "GET /images/tiny/vmlinuz answered 404"
    # by hostname when the MAC is unknown; another node's requests never count
    one = boot_progress("lab-gpu-01", "10.214.5.17", "", "tiny", leases, reqs)
    assert [s.done for s in one[:3]] == [True, True, False]
    assert stopped_at(one).detail == "no GET /ipxe/nodes/lab-gpu-01.ipxe from 10.214.5.17"  # type: ignore[union-attr]
    none = boot_progress("lab-gpu-04", "10.214.5.20", "52:54:00:b0:07:04", "tiny", leases, reqs)
    assert stopped_at(none).detail == "no DHCP lease for 52:54:00:b0:07:04 (lab-gpu-04)"  # type: ignore[union-attr]
    wrong = boot_progress("lab-gpu-02", "10.214.5.30", "52:54:00:b0:07:02", "tiny", leases, reqs)
    assert stopped_at(wrong).detail == "lab-gpu-02 leased 10.214.5.18, planned 10.214.5.30"  # type: ignore[union-attr]
    full = reqs + parse_access_log(
        '10.214.5.18 [t] "GET /images/tiny/vmlinuz HTTP/1.1" 200 9\n'
        '10.214.5.18 [t] "GET /images/tiny/initrd.img HTTP/1.1" 200 9\n'
        '10.214.5.18 [t] "GET /seeds/lab-gpu-02/user-data HTTP/1.1" 200 9\n'
        '10.214.5.18 [t] "POST /phone-home/lab-gpu-02 HTTP/1.1" 204 0\n')
    assert stopped_at(boot_progress("lab-gpu-02", "10.214.5.18", "52:54:00:b0:07:02", "tiny",
                                    leases, full, deploy=False)) is None
    # an image-based deploy: the disk image and the ramdisk's report come before first boot
    steps = boot_progress("lab-gpu-02", "10.214.5.18", "52:54:00:b0:07:02", "tiny", leases, full)
    assert stopped_at(steps).detail == "no GET /images/tiny/deploy.cpio.gz from 10.214.5.18"  # type: ignore[union-attr]
    deployed = full + parse_access_log(
        '10.214.5.18 [t] "GET /images/tiny/deploy.cpio.gz HTTP/1.1" 200 9\n'
        '10.214.5.18 [t] "GET /images/tiny/disk.img HTTP/1.1" 200 9\n'
        '10.214.5.18 [t] "POST /deploy/lab-gpu-02/done?digest=sha256:ab HTTP/1.1" 204 0\n')
    assert stopped_at(boot_progress("lab-gpu-02", "10.214.5.18", "52:54:00:b0:07:02", "tiny",
                                    leases, deployed)) is None
    failed = deployed[:-1] + parse_access_log(
        '10.214.5.18 [t] "POST /deploy/lab-gpu-02/failed/no-disk HTTP/1.1" 204 0\n')
    stop = stopped_at(boot_progress("lab-gpu-02", "10.214.5.18", "52:54:00:b0:07:02", "tiny",
                                    leases, failed))
    assert stop is not None and stop.detail == "deploy ramdisk: no disk to write the image to"
