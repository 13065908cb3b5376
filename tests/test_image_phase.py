"""The image phase followed step by step: a recorded boot (Kea lease file and nginx access log
of three nodes) replayed against a fake clock; a fake BMC records what was asked of it."""

from __future__ import annotations

import csv
import datetime
import io
from pathlib import Path

import pytest

from provision.errors import ExecutionError
from provision.execute.ssh import SshTarget
from provision.image import phase
from provision.image.watch import (
    BootStopped,
    BootWatch,
    Bounds,
    Cancelled,
    FileRecords,
    Node,
    SharedRecords,
)

RECORDED = Path(__file__).parent / "recorded" / "boot"
T0 = 1796000000  # when the image phase marked the records (the recorded boot's time 0)
DIGEST = "sha256:1f0e"


class Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps = 0

    def __call__(self) -> float:
        return self.t

    def sleep(self, d: float) -> None:
        assert d <= 1.0  # cancel is checked at least once a second
        self.sleeps += 1
        self.t += d


class Replay:
    """The recorded files as they were at the clock's time."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.leases = (RECORDED / "kea-leases4.csv").read_text().splitlines(keepends=True)
        self.log = (RECORDED / "access.log").read_text().splitlines(keepends=True)

    def read(self) -> tuple[str, str]:
        now = T0 + self.clock.t
        header, rows = self.leases[0], self.leases[1:]
        seen = [r for r in rows if _cltt(header + r) <= now]
        log = [ln for ln in self.log if _logged(ln) <= now]
        return header + "".join(seen), "".join(log)


def _cltt(text: str) -> float:
    row = next(csv.DictReader(io.StringIO(text)))
    return int(row["expire"]) - int(row["valid_lifetime"])


def _logged(line: str) -> float:
    stamp = line.split("[", 1)[1].split("]", 1)[0]
    return datetime.datetime.fromisoformat(stamp).timestamp()


NODES = {"lab-gpu-01": ("10.214.5.17", "52:54:00:b0:07:01"),
         "lab-gpu-02": ("10.214.5.18", "52:54:00:b0:07:02"),
         "lab-gpu-03": ("10.214.5.19", "52:54:00:b0:07:03")}


def _watch(host: str, clock: Clock, **kw: object) -> BootWatch:
    address, mac = NODES[host]
    return BootWatch(Node(host, address, mac, "debian-12"), Replay(clock), Bounds(),
                     clock=clock, sleep=clock.sleep, **kw)  # type: ignore[arg-type]


def test_a_full_boot_is_seen_step_by_step_and_an_earlier_boot_never_counts() -> None:
    clock = Clock()
    w = _watch("lab-gpu-01", clock)
    w.mark()  # the records already hold an earlier, complete boot of this node
    assert [s.name for s in w.progress() if s.done] == []
    steps = w.until("deployed")
    assert [s.name for s in steps if s.done] == ["dhcp", "boot-script", "node-script", "kernel",
                                               "initrd", "ramdisk", "image", "deployed"]
    assert 110 <= clock.t < 112  # the ramdisk's report at +110 s, seen within a poll
    w.until("phone-home")
    assert 230 <= clock.t < 232 and clock.sleeps > 200


def test_no_dhcp_stops_at_its_bound_naming_the_mac() -> None:
    clock = Clock()
    w = _watch("lab-gpu-03", clock)
    w.mark()
    with pytest.raises(BootStopped) as err:
        w.until("phone-home")
    assert str(err.value) == "no DHCP lease for 52:54:00:b0:07:03 (lab-gpu-03) within 120 s"
    assert err.value.step == "dhcp" and 120 < clock.t < 122


def test_the_ramdisk_reporting_a_checksum_mismatch_fails_at_once() -> None:
    clock = Clock()
    w = _watch("lab-gpu-02", clock)
    w.mark()
    with pytest.raises(BootStopped) as err:
        w.until("phone-home")
    assert str(err.value) == "lab-gpu-02: deploy ramdisk: image checksum mismatch"
    assert 109 <= clock.t < 111


def test_a_late_step_says_what_came_before_it() -> None:
    clock = Clock()
    w = BootWatch(Node("lab-gpu-01", "10.214.5.17", "52:54:00:b0:07:01", "debian-12"),
                  Replay(clock), Bounds(first_boot=30), clock=clock, sleep=clock.sleep)
    w.mark()
    w.until("deployed")
    with pytest.raises(BootStopped) as err:
        w.until("phone-home", since=clock())
    assert str(err.value) == ("lab-gpu-01: stopped after deployed: no GET "
                              "/seeds/lab-gpu-01/user-data from 10.214.5.17 within 30 s")
    clock = Clock()
    late = BootWatch(w.node, Replay(clock), Bounds(first_boot=50), clock=clock,
                     sleep=clock.sleep)
    late.mark()
    late.until("deployed")
    with pytest.raises(BootStopped) as err:
        late.until("phone-home", since=clock())
    assert str(err.value) == ("lab-gpu-01: no phone-home within 50 s (seed fetched; "
                              "cloud-init did not finish)")


def test_cancel_ends_the_wait_within_a_second() -> None:
    clock = Clock()
    w = _watch("lab-gpu-03", clock, cancelled=lambda: clock.t >= 30)
    w.mark()
    with pytest.raises(Cancelled):
        w.until("dhcp")
    assert 30 <= clock.t < 31


class FakeBmc:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls
        self.target = type("T", (), {"host": "lab-gpu-01"})()
        self.power = "On"

    def set_one_time_boot(self, target: str) -> None:
        self.calls.append(f"boot {target} Once")

    def power_cycle(self) -> str:
        self.calls.append("power cycle")
        return "ForceRestart"

    def set_boot(self, target: str, enabled: str) -> None:
        self.calls.append(f"boot {target} {enabled}")
        self.power = "Off"  # the ramdisk powered the node off after its report

    def power_state(self) -> str:
        return self.power

    def reset(self, kind: str) -> None:
        self.calls.append(f"reset {kind}")
        self.power = "On"

    def close(self) -> None:
        pass


def _node(host: str, clock: Clock, calls: list[str]) -> phase.Node:
    return phase.Node(host, SshTarget(host, NODES[host][0]), lambda: FakeBmc(calls),  # type: ignore[arg-type,return-value]
                      _watch(host, clock), phase.Planned("debian-12", DIGEST))


def test_image_node_images_boots_from_disk_and_checks_the_digest() -> None:
    clock, calls, reached = Clock(), [], []
    running: list[str | None] = [None, DIGEST]  # before imaging: blank; after: the image
    out = phase.image_node(_node("lab-gpu-01", clock, calls), clock=clock, sleep=clock.sleep,
                           digest_of=lambda t: running.pop(0),
                           wait_ssh=lambda t, **kw: reached.append(t.address) or 1)
    assert out.status == "changed", out.detail
    assert out.detail.startswith(f"image debian-12 {DIGEST}: PXE once + ForceRestart")
    assert calls == ["boot Pxe Once", "power cycle", "boot Hdd Continuous", "reset On"]
    assert reached == ["10.214.5.17"] and out.stats == {"changed": 1}


def test_a_node_running_the_planned_digest_is_not_reimaged_unless_asked() -> None:
    clock, calls = Clock(), []
    out = phase.image_node(_node("lab-gpu-01", clock, calls), clock=clock, sleep=clock.sleep,
                           digest_of=lambda t: DIGEST)
    assert out.status == "ok" and "not re-imaged (--reimage forces it)" in out.detail
    assert calls == []
    forced = phase.image_node(_node("lab-gpu-01", clock, calls), reimage=True, clock=clock,
                              sleep=clock.sleep, digest_of=lambda t: DIGEST,
                              wait_ssh=lambda t, **kw: 1)
    assert forced.status == "changed" and calls[0] == "boot Pxe Once"


def test_image_node_failures_say_where_the_boot_stopped() -> None:
    clock, calls = Clock(), []
    out = phase.image_node(_node("lab-gpu-03", clock, calls), clock=clock, sleep=clock.sleep,
                           digest_of=lambda t: None)
    assert out.status == "failed" and out.detail == (
        "image debian-12: no DHCP lease for 52:54:00:b0:07:03 (lab-gpu-03) within 120 s")
    clock = Clock()
    bad = phase.image_node(_node("lab-gpu-02", clock, []), clock=clock, sleep=clock.sleep,
                           digest_of=lambda t: None)
    assert bad.detail == "image debian-12: lab-gpu-02: deploy ramdisk: image checksum mismatch"
    clock = Clock()
    wrong = phase.image_node(_node("lab-gpu-01", clock, []), clock=clock, sleep=clock.sleep,
                             digest_of=lambda t: None if clock.t < 1 else "sha256:0ld",
                             wait_ssh=lambda t, **kw: 1)
    assert wrong.status == "failed" and wrong.detail == (
        f"lab-gpu-01: after imaging it runs sha256:0ld, planned {DIGEST}")


def test_parse_deployed() -> None:
    assert phase.parse_deployed('{"host": "a", "image_digest": "sha256:ab"}') == "sha256:ab"
    assert phase.parse_deployed('{"image_digest": ""}') is None
    assert phase.parse_deployed("not json") is None


def test_shared_records_read_once_a_second_for_every_node() -> None:
    clock = Clock()
    replay = Replay(clock)
    reads: list[float] = []

    class Counting:
        def read(self) -> tuple[str, str]:
            reads.append(clock.t)
            return replay.read()

    shared = SharedRecords(Counting(), clock=clock)
    watches = [BootWatch(Node(h, a, m, "debian-12"), shared, clock=clock, sleep=clock.sleep)
               for h, (a, m) in NODES.items()]
    for w in watches:
        w.mark()
    assert reads == [0.0]
    clock.t = 0.5
    assert [len(w.progress()) for w in watches] == [10, 10, 10] and reads == [0.0]
    clock.t = 1.0
    watches[0].progress()
    assert reads == [0.0, 1.0]


def test_dry_run_says_what_the_image_phase_would_do() -> None:
    from provision.execute.inventory import HostTarget
    from provision.execute.redfish import BmcTarget
    from provision.execute.steps import StepSettings, image_actions

    h = HostTarget("lab-gpu-01", "a01", "gpu", SshTarget("lab-gpu-01", "10.214.5.17"),
                   BmcTarget("lab-gpu-01", "https://10.213.0.11", ""))
    plain = image_actions(h, StepSettings(env={}))
    assert plain[-1].startswith("wait up to 600s for SSH on 10.214.5.17")
    imaging = phase.Imaging(Replay(Clock()), {})
    seeded = image_actions(h, StepSettings(env={}, imaging=imaging))
    assert seeded[0] == "unless 10.214.5.17 already runs the planned image digest:"
    assert "Boot = Hdd, Continuous" in " ".join(seeded)
    # a host the boot plan does not know fails at once, before its BMC is touched
    out = imaging.image_host(h, lambda: pytest.fail("BMC used"))  # type: ignore[arg-type,return-value]
    assert out.status == "failed" and "not in the boot plan (run gpuctl image seed)" in out.detail
    # the host that runs the boot services is never network-booted from itself
    head = HostTarget("lab-head-01", "a01", "head", SshTarget("lab-head-01", "10.214.0.40"),
                      BmcTarget("lab-head-01", "https://10.213.0.40", ""))
    served = phase.Imaging(Replay(Clock()), {}, services_address="10.214.0.40")
    assert served.serves(head) and not served.serves(h)
    assert image_actions(head, StepSettings(env={}, imaging=served)) == [
        "nothing: lab-head-01 runs the boot services at 10.214.0.40 (installed first, not "
        "network-booted from itself)"]
    out = served.image_host(head, lambda: pytest.fail("BMC used"))  # type: ignore[arg-type,return-value]
    assert out.status == "skipped" and "lab-head-01 runs the boot services" in out.detail


def test_preflight_passes_a_network_booted_node_that_ssh_cannot_reach_yet() -> None:
    """A blank node runs nothing before the image phase images it: preflight checks its BMC
    and notes SSH; a node that does not network-boot is unreachable."""
    from provision.execute import steps
    from provision.execute.access import HostTarget
    from provision.execute.redfish import BmcTarget

    h = HostTarget("lab-gpu-01", "a01", "gpu", SshTarget("lab-gpu-01", "127.0.0.1", port=1),
                   BmcTarget("lab-gpu-01", "http://127.0.0.1:9", "", True))
    imaging = phase.Imaging(FileRecords(Path("/nonexistent/l"), Path("/nonexistent/a")), {})
    booted = steps.StepSettings(env={}, ssh_timeout=2.0, imaging=imaging)
    out = steps.preflight_host(h, booted, lambda *_: FakeBmc([]))  # type: ignore[arg-type,return-value]
    assert out.status == "ok" and out.detail.startswith("bmc ok, power On; ssh not reachable")
    assert "network-booted, imaged by the image phase" in out.detail
    static = steps.StepSettings(env={}, ssh_timeout=2.0)
    out = steps.preflight_host(h, static, lambda *_: FakeBmc([]))  # type: ignore[arg-type,return-value]
    assert out.status == "unreachable" and "unreachable" in out.detail
    # the boot services host must answer SSH even on a network-booted site
    serving = phase.Imaging(imaging.records, {}, services_address="127.0.0.1")
    out = steps.preflight_host(h, steps.StepSettings(env={}, ssh_timeout=2.0, imaging=serving),
                               lambda *_: FakeBmc([]))  # type: ignore[arg-type,return-value]
    assert out.status == "unreachable" and "unreachable" in out.detail


def test_records_unreadable_for_a_moment_keep_the_last_read_until_the_grace_ends() -> None:
    clock, calls = Clock(), []
    texts: list[tuple[str, str] | Exception] = [
        ("lease-1", ""), ExecutionError("ssh lost"), ("lease-1", "GET /boot"),
        ExecutionError("ssh lost"), ExecutionError("ssh lost")]

    class Flaky:
        def read(self) -> tuple[str, str]:
            calls.append(clock.t)
            got = texts.pop(0)
            if isinstance(got, Exception):
                raise got
            return got

    shared = SharedRecords(Flaky(), clock=clock, grace=30.0)
    assert shared.read() == ("lease-1", "")
    clock.t = 1.0
    assert shared.read() == ("lease-1", "")  # the failed read: the last good one
    clock.t = 2.0
    assert shared.read() == ("lease-1", "GET /boot")
    clock.t = 20.0
    assert shared.read() == ("lease-1", "GET /boot")  # 18 s after the last good read
    clock.t = 32.5
    with pytest.raises(ExecutionError, match="ssh lost"):
        shared.read()  # 30.5 s without a good read
    assert calls == [0.0, 1.0, 2.0, 20.0, 32.5]
    never = SharedRecords(type("Down", (), {"read": lambda self: (_ for _ in ()).throw(
        ExecutionError("ssh refused"))})(), clock=clock)
    with pytest.raises(ExecutionError, match="ssh refused"):
        never.read()  # no good read yet: fails at once
