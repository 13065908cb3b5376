"""Pure judges: (parsed probe result, thresholds, fleet stats) -> verdicts with reasons.

Every judge returns a list of :class:`Verdict`; a probe that measured nothing judgeable yields
a ``fail`` (never a silent pass). Relative judging: :func:`outliers` compares each value
with the fleet median of the same measurement and fails those below
``outlier_fraction`` x median even when they clear the absolute floor.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from provision.burnin.probes.dcgmi_diag import DcgmDiag
from provision.burnin.probes.gpu import NvidiaSmiReport
from provision.burnin.probes.infiniband import IbReport
from provision.burnin.probes.nccl import NcclResult, large_message_busbw
from provision.burnin.probes.nvlink import NvLinkStatus
from provision.burnin.probes.perftest import WriteBw, WriteLat
from provision.burnin.probes.xid import KernelLogReport
from provision.burnin.thresholds import Thresholds

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"


@dataclass(frozen=True)
class Verdict:
    """One judged measurement. ``rail`` names an HCA (``mlx5_2``) when the check is per port;
    ``peer`` the other end of a pairwise test; ``fix`` says what to do about a failure."""

    node: str
    test: str
    status: str
    reason: str
    rail: str | None = None
    metric: str | None = None
    value: float | None = None
    threshold: float | None = None
    peer: str | None = None
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.status == FAIL


def _v(node: str, test: str, ok: bool, reason: str, fix: str = "", *, rail: str | None = None,
       metric: str | None = None, value: float | None = None, threshold: float | None = None,
       peer: str | None = None) -> Verdict:
    return Verdict(node, test, PASS if ok else FAIL, reason, rail, metric, value, threshold,
                   peer, "" if ok else fix)


def judge_gpus(node: str, report: NvidiaSmiReport, th: Thresholds) -> list[Verdict]:
    """GPU count and model, ECC, row remapping and PCIe link of every GPU."""
    out: list[Verdict] = []
    seen = len(report.gpus)
    ok = seen >= th.gpu_count and not report.partial and not report.errors
    why = f"{seen} of {th.gpu_count} GPUs visible"
    if report.errors:
        why += f"; nvidia-smi: {report.errors[0]}"
    out.append(_v(node, "gpu-count", ok, why, "reseat or replace the missing GPU(s); check "
                  "the kernel log for Xid 79 and the baseboard/riser", metric="gpus",
                  value=float(seen), threshold=float(th.gpu_count)))
    for gpu in report.gpus:
        where = f"GPU {gpu.index} ({gpu.pci_bus_id or '?'})"
        if th.gpu_model not in (gpu.name or ""):
            out.append(_v(node, "gpu-model", False, f"{where} is {gpu.name!r}, expected a "
                          f"{th.gpu_model}", "install the GPU model the catalog names"))
        unc = sum(c or 0 for c in (gpu.ecc_volatile.uncorrected, gpu.ecc_aggregate.uncorrected))
        if unc > th.ecc_uncorrectable_max:
            out.append(_v(node, "ecc", False, f"{where}: {unc} uncorrectable ECC errors",
                          "reset the GPU; RMA it if errors return", metric="ecc_uncorrected",
                          value=float(unc), threshold=float(th.ecc_uncorrectable_max)))
        rows = gpu.remapped_rows
        if (rows.uncorrectable or 0) > th.remapped_rows_uncorrectable_max:
            out.append(_v(node, "row-remap", False, f"{where}: {rows.uncorrectable} rows "
                          "remapped for uncorrectable errors", "RMA the GPU",
                          metric="remapped_rows_unc", value=float(rows.uncorrectable or 0),
                          threshold=float(th.remapped_rows_uncorrectable_max)))
        if th.row_remap_failure_fatal and (rows.failure or rows.pending):
            state = "failed" if rows.failure else "pending"
            out.append(_v(node, "row-remap", False, f"{where}: row remap {state}",
                          "reset the GPU to apply the remap; RMA it if the remap failed"))
        if th.pcie_downgrade_fatal and gpu.pcie.downgraded:
            p = gpu.pcie
            out.append(_v(node, "pcie", False, f"{where}: PCIe link Gen{p.gen_current} "
                          f"x{p.width_current}, capable of Gen{p.gen_max} x{p.width_max}",
                          "reseat the GPU/riser; check the PCIe switch and BIOS settings"))
    if len(out) == 1 and ok:
        out.append(Verdict(node, "gpu-health", PASS, f"{seen} GPUs: ECC, row remap and PCIe "
                           "clean"))
    return out


def judge_nvlink(node: str, status: NvLinkStatus, th: Thresholds) -> list[Verdict]:
    bad = [f"GPU {g.index}: {g.active_links}/{th.nvlinks_per_gpu} links active"
           for g in status.gpus if g.active_links < th.nvlinks_per_gpu]
    if bad:
        return [_v(node, "nvlink", False, "; ".join(bad), "reseat the GPU on the baseboard; "
                   "check the NVSwitch/fabric manager")]
    return [Verdict(node, "nvlink", PASS, f"{len(status.gpus)} GPUs x "
                    f"{th.nvlinks_per_gpu} NVLinks active")]


def judge_xid(node: str, log: KernelLogReport, th: Thresholds) -> list[Verdict]:
    """Fatal Xids fail the node, and so does a GPU the driver lost without any Xid line."""
    fatal = [x for x in log.xids if x.xid in th.xid_fatal]
    out = []
    for fault in sorted({g.fault for g in log.gpus_lost}):
        lost = [g for g in log.gpus_lost if g.fault == fault]
        where = ", ".join(sorted({g.pci or "?" for g in lost}))
        what = "fell off the bus" if fault == "fallen-off-bus" else "failed to initialise"
        out.append(_v(node, "xid", False, f"GPU at PCI {where} {what} (NVRM: "
                      f"{lost[0].message[:80]!r}), {len(lost)}x",
                      f"drain the node; reseat or RMA the GPU at {where}",
                      metric=f"gpu_{fault}", value=float(len(lost)), threshold=0.0))
    for code in sorted({x.xid for x in fatal}):
        events = [x for x in fatal if x.xid == code]
        pcis = ", ".join(sorted({x.pci for x in events}))
        meaning = events[0].meaning or "unknown"
        out.append(_v(node, "xid", False, f"Xid {code} ({meaning}) on PCI {pcis}, "
                      f"{len(events)}x", f"drain the node; reset or RMA the GPU at {pcis}",
                      metric=f"xid_{code}", value=float(len(events)), threshold=0.0))
    if not out:
        seen = sorted({x.xid for x in log.xids})
        note = f" (non-fatal Xids seen: {', '.join(map(str, seen))})" if seen else ""
        return [Verdict(node, "xid", PASS, f"no fatal Xid in the kernel log{note}")]
    return out


def judge_ib_ports(node: str, report: IbReport, th: Thresholds,
                   hcas: Sequence[str], cabling: dict[str, str] | None = None) -> list[Verdict]:
    """Every planned compute HCA present with an Active, LinkUp port at the line rate."""
    cas = {ca.name: ca for ca in report.cas}
    out: list[Verdict] = []
    for hca in hcas:
        where = (cabling or {}).get(hca, "")
        cable = f" (cable to {where})" if where else ""
        ca = cas.get(hca)
        if ca is None or not ca.ports:
            out.append(_v(node, "ib-port", False, f"{hca} missing", "reseat the HCA; check "
                          "the driver (mst status)", rail=hca))
            continue
        port = ca.ports[0]
        if port.state != "Active" or port.physical_state not in (None, "LinkUp"):
            out.append(_v(node, "ib-port", False, f"{hca} port {port.port} is {port.state}/"
                          f"{port.physical_state}{cable}", f"check the cable and transceiver"
                          f"{cable}; check the switch port", rail=hca))
        elif port.rate_gbps is None or port.rate_gbps < th.ib_rate_gbps:
            out.append(_v(node, "ib-port", False, f"{hca} links at {port.rate_gbps:g} Gb/s, "
                          f"expected {th.ib_rate_gbps:g}{cable}", f"replace the cable or "
                          f"transceiver{cable}", rail=hca, metric="rate_gbps",
                          value=port.rate_gbps, threshold=th.ib_rate_gbps))
        else:
            out.append(Verdict(node, "ib-port", PASS, f"{hca} Active at {port.rate_gbps:g} "
                               "Gb/s", rail=hca, metric="rate_gbps", value=port.rate_gbps,
                               threshold=th.ib_rate_gbps))
    if len(hcas) < th.hca_count:
        out.append(_v(node, "ib-port", False, f"{len(hcas)} compute HCAs planned, profile "
                      f"expects {th.hca_count}", "fix the catalog or the profile"))
    return out  # HCAs not planned for compute (storage, in-band) are not judged here


def judge_dcgm(node: str, diag: DcgmDiag, th: Thresholds, level: int) -> list[Verdict]:
    if not th.dcgm_must_pass or diag.passed:
        return [Verdict(node, f"dcgm-r{level}", PASS,
                        f"dcgmi diag -r {level}: {len(diag.tests)} tests passed")]
    if diag.runtime_error:
        return [_v(node, f"dcgm-r{level}", False, f"dcgmi diag -r {level}: "
                   f"{diag.runtime_error}", "check the DCGM host engine and driver")]
    out = []
    for test in diag.tests:
        if test.status in ("Pass", "Skip"):
            continue
        gpus = sorted({g for r in test.results if r.status not in ("Pass", "Skip")
                       for g in r.gpus})
        text = next((w for r in test.results for w in r.warnings), "")
        on = f" on GPU {', '.join(map(str, gpus))}" if gpus else ""
        out.append(_v(node, f"dcgm-r{level}", False, f"dcgmi {test.name} {test.status}{on}"
                      + (f": {text}" if text else ""), "rerun the test; RMA the GPU if it "
                      "fails again"))
    return out


def judge_nccl(node: str, result: NcclResult, th: Thresholds, *, test: str,
               floor: float) -> list[Verdict]:
    """Large-message busbw against ``floor``; data corruption (``#wrong``) fails too."""
    busbw = large_message_busbw(result, th.nccl_large_bytes)
    name = result.test or "nccl"
    if result.wrong_rows or result.out_of_bounds_ok is False:
        count = (f", {result.wrong_elements} wrong elements" if result.wrong_elements else "")
        return [_v(node, test, False, f"{name}: FAILED data check, {result.wrong_rows} rows "
                   f"with wrong data{count}",
                   "a GPU or link corrupts data: run dcgmi diag -r 3 and check NVLink",
                   metric="wrong_elements", value=float(result.wrong_elements), threshold=0.0)]
    if busbw is None:
        return [_v(node, test, False, f"{name}: no message size >= "
                   f"{th.nccl_large_bytes} bytes measured", "run with -e 8G")]
    ok = busbw >= floor
    return [_v(node, test, ok, f"{name} busbw {busbw:.1f} GB/s "
               f"{'>=' if ok else '<'} {floor:g} floor", "check NVLink/NVSwitch, GPU clocks "
               "and power; the slowest member drags a collective", metric="busbw_gbps",
               value=busbw, threshold=floor)]


def judge_write_bw(node: str, peer: str, rail: str, result: WriteBw,
                   th: Thresholds) -> list[Verdict]:
    best = max(row.bw_average_gbps for row in result.rows)
    floor = th.ib_write_bw_floor_gbps
    ok = best >= floor
    return [_v(node, "ib-write-bw", ok, f"{rail} to {peer}: {best:.1f} Gb/s "
               f"{'>=' if ok else '<'} {floor:g} ({th.ib_write_bw_fraction:.0%} of "
               f"{th.ib_rate_gbps:g})", f"check {rail}'s cable, transceiver and switch port",
               rail=rail, peer=peer, metric="bw_gbps", value=best, threshold=floor)]


def judge_write_lat(node: str, peer: str, rail: str, result: WriteLat,
                    th: Thresholds) -> list[Verdict]:
    typical = [r.t_typical_us if r.t_typical_us is not None else r.t_avg_us for r in result.rows]
    known = [t for t in typical if t is not None]
    if not known:
        return [_v(node, "ib-write-lat", False, f"{rail} to {peer}: no latency reported",
                   "rerun ib_write_lat", rail=rail, peer=peer)]
    lat = min(known)
    ok = lat <= th.ib_write_lat_max_us
    return [_v(node, "ib-write-lat", ok, f"{rail} to {peer}: {lat:.2f} us "
               f"{'<=' if ok else '>'} {th.ib_write_lat_max_us:g}", f"check {rail}'s switch "
               "path (congestion, wrong SL/VL, adaptive routing)", rail=rail, peer=peer,
               metric="lat_us", value=lat, threshold=th.ib_write_lat_max_us)]


def probe_error(node: str, test: str, why: str, rail: str | None = None,
                peer: str | None = None) -> Verdict:
    """A probe that did not produce judgeable output (non-zero exit, unparseable)."""
    return Verdict(node, test, FAIL, why, rail=rail, peer=peer,
                   fix="look at the raw output in the store; rerun the probe")


@dataclass(frozen=True)
class FleetStats:
    """Medians of each (test, metric, rail) across the nodes of this run."""

    medians: dict[tuple[str, str, str], float]

    @classmethod
    def of(cls, verdicts: Iterable[Verdict]) -> FleetStats:
        groups: dict[tuple[str, str, str], list[float]] = {}
        for v in verdicts:
            if v.metric is not None and v.value is not None and v.metric in RELATIVE:
                groups.setdefault((v.test, v.metric, v.rail or ""), []).append(v.value)
        return cls({k: statistics.median(vs) for k, vs in sorted(groups.items()) if len(vs) >= 3})


RELATIVE = ("busbw_gbps", "bw_gbps")
"""Metrics judged against the fleet median too (higher is better)."""


def outliers(verdicts: Sequence[Verdict], stats: FleetStats, th: Thresholds) -> list[Verdict]:
    """Turn passing measurements below ``outlier_fraction`` x the fleet median into failures."""
    out: list[Verdict] = []
    for v in verdicts:
        key = (v.test, v.metric or "", v.rail or "")
        median = stats.medians.get(key)
        if v.status != PASS or v.value is None or median is None:
            out.append(v)
            continue
        limit = th.outlier_fraction * median
        if v.value < limit:
            out.append(replace(v, status=FAIL, threshold=round(limit, 3),
                               reason=f"{v.reason}, but {v.value:.1f} < "
                               f"{th.outlier_fraction:g} x fleet median {median:.1f}",
                               fix="outlier against its peers: " + (v.fix or "investigate")))
        else:
            out.append(v)
    return out
