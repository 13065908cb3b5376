"""Run a rack's burn-in: node checks, pairwise InfiniBand, NCCL, isolation, soak.

The :class:`Runner` decides what runs and in which order (the checks of the level from the
check table, :mod:`provision.burnin.checks`, and the pure scheduling and isolation modules),
runs it through a :class:`~provision.execute.remote.RemoteExecutor`, writes
every unit's raw output to the store the moment it finishes (so ``--resume`` skips it), and
judges everything from those outputs at the end.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from provision.burnin import checks as ck
from provision.burnin import evaluate as ev
from provision.burnin import judge as j
from provision.burnin.isolate import Group, Isolation, isolate
from provision.burnin.schedule import round_robin, run_bounded
from provision.burnin.store import BurninStore, UnitOutput
from provision.burnin.targets import NodeTarget, mpirun_argv, nccl_argv
from provision.burnin.thresholds import Thresholds
from provision.errors import GpuctlError
from provision.execute.remote import CommandResult, RemoteExecutor, Running

PAIR_TIMEOUT_S = 120.0
"""A perftest server gives up after this long (it waits for its client forever otherwise)."""
Progress = Callable[[str], None]


@dataclass(frozen=True)
class RunConfig:
    site: str
    rack: str
    level: str
    targets: tuple[NodeTarget, ...]
    thresholds: Thresholds
    workers: int = 16
    timeout_s: float = 900.0
    nccl_min_bytes: str = "256M"
    nccl_max_bytes: str = "8G"
    soak_s: float = 0.0
    soak_min_passes: int = 2
    cross_partner: NodeTarget | None = None
    client_retries: int = 8


@dataclass(frozen=True)
class Collective:
    """One multi-node NCCL run and how it ended."""

    label: str
    members: tuple[str, ...]
    ok: bool
    busbw: float | None
    why: str


@dataclass
class Outcome:
    verdicts: list[j.Verdict] = field(default_factory=list)
    pairs: list[j.Verdict] = field(default_factory=list)
    collectives: list[Collective] = field(default_factory=list)
    isolations: dict[str, Isolation] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)
    versions: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Runner:
    def __init__(self, cfg: RunConfig, executor: RemoteExecutor, store: BurninStore, run_id: int,
                 progress: Progress | None = None) -> None:
        self.cfg = cfg
        self.ex = executor
        self.store = store
        self.run_id = run_id
        self.say: Progress = progress or (lambda _msg: None)
        self.done = store.outputs(run_id)
        self.by_name = {t.name: t for t in cfg.targets}
        if cfg.cross_partner is not None:
            self.by_name[cfg.cross_partner.name] = cfg.cross_partner

    # -- units ---------------------------------------------------------------------------
    def _run(self, node: str, argv: Sequence[str]) -> CommandResult:
        """Run a probe; an unreachable node is a failed probe (exit 255), not a dead run."""
        try:
            return self.ex.run(node, argv, timeout=self.cfg.timeout_s)
        except GpuctlError as exc:
            return CommandResult(255, "", str(exc), 0.0)

    def _record(self, unit: str, node: str, test: str, kind: str, argv: Sequence[str],
                res: CommandResult, rail: str = "", peer: str = "") -> UnitOutput:
        out = UnitOutput(unit, node, test, kind, tuple(argv), res.rc, res.stdout, res.stderr,
                         round(res.took_s, 3), rail, peer)
        self.store.record_output(self.run_id, out)
        self.done[unit] = out
        return out

    def node_phase(self, prefix: str = "") -> None:
        c = self.cfg
        tasks: dict[str, Callable[[], UnitOutput]] = {}
        for target in c.targets:
            args = ck.ProbeArgs(target.gpus, c.nccl_min_bytes, c.nccl_max_bytes)
            for check in ck.node_checks(c.level):
                test, kind = check.name, check.kind
                unit = f"{prefix}node/{target.name}/{test}"
                if unit in self.done:
                    continue
                argv = check.argv(args)

                def task(t: NodeTarget = target, test: str = test, kind: str = kind,
                         argv: list[str] = argv) -> UnitOutput:
                    res = self._run(t.name, argv)
                    return UnitOutput("", t.name, test, kind, tuple(argv), res.rc, res.stdout,
                                      res.stderr, res.took_s)
                tasks[unit] = task
        self.say(f"node checks: {len(tasks)} probes on {len(self.cfg.targets)} nodes")
        for unit, o in run_bounded(tasks, self.cfg.workers):
            self._record(unit, o.node, o.test, o.kind, o.argv,
                         CommandResult(o.rc, o.stdout, o.stderr, o.took_s))

    # -- pairwise InfiniBand ---------------------------------------------------------------
    def _pair(self, a: NodeTarget, b: NodeTarget, rail: str, port: int, check: ck.PairCheck
              ) -> tuple[list[str], CommandResult]:
        """Server on ``a``, client on ``b`` (retried until the server listens)."""
        build = check.command
        limit = min(self.cfg.timeout_s, PAIR_TIMEOUT_S)
        server = ["timeout", str(int(limit)), *build(rail, None, port=port)]
        client = build(rail, a.address, port=port)
        try:
            srv: Running = self.ex.start(a.name, server, timeout=limit + 5)
        except GpuctlError as exc:
            return client, CommandResult(255, "", f"[server {a.name}] {exc}", 0.0)
        srv.wait_for("Waiting for client", timeout=min(60.0, self.cfg.timeout_s))
        res = self._run(b.name, client)
        for attempt in range(self.cfg.client_retries):
            if res.rc == 0 or "connect" not in (res.stderr + res.stdout) \
                    or not srv.wait_for("Waiting for client", timeout=0.0):
                break
            time.sleep(0.25 * (attempt + 1))
            res = self._run(b.name, client)
        srv_res = srv.result()
        if res.rc != 0 and srv_res.rc != 0 and srv_res.stderr.strip():
            res = CommandResult(res.rc, res.stdout, f"{res.stderr}\n[server {a.name}] "
                                f"{srv_res.stderr.strip()}", res.took_s)
        return client, res

    @staticmethod
    def _not_run(why: str) -> Callable[[], tuple[list[str], CommandResult]]:
        return lambda: ([], CommandResult(1, "", f"not run: {why} (ibstat)", 0.0))

    def _pair_task(self, a: NodeTarget, b: NodeTarget, rail: str, port: int,
                   check: ck.PairCheck) -> Callable[[], tuple[list[str], CommandResult]]:
        return lambda: self._pair(a, b, rail, port, check)

    def pair_phase(self, prefix: str = "",
                   down: Mapping[tuple[str, str], str] | None = None) -> None:
        """All pairs of every rail in round-robin rounds (a round's pairs run at once).

        A pair with an end whose port ibstat showed down is not run (its server would wait
        for a client that never comes); it is recorded as failed with that reason."""
        down = down or {}
        rails = sorted({h for t in self.cfg.targets for h in t.hcas})
        schedule = {rail: round_robin([t.name for t in self.cfg.targets if rail in t.hcas])
                    for rail in rails}
        depth = max((len(r) for r in schedule.values()), default=0)
        self.say(f"pairwise ib_write_bw: {len(rails)} rails x {depth} rounds")
        for number in range(depth):
            tasks: dict[str, Callable[[], tuple[list[str], CommandResult]]] = {}
            meta: dict[str, tuple[str, str, str, str]] = {}
            for index, rail in enumerate(rails):
                rounds = schedule[rail]
                if number >= len(rounds):
                    continue
                for a, b in rounds[number]:
                    for check in ck.pair_checks(self.cfg.level, number == 0):
                        test = check.name
                        unit = f"{prefix}pair/{rail}/{a}/{b}/{test}"
                        if unit in self.done:
                            continue
                        port = check.port + index
                        ta, tb = self.by_name[a], self.by_name[b]
                        meta[unit] = (b, a, rail, test)
                        dead = [f"{rail} of {n} is {down[(n, rail)]}" for n in (a, b)
                                if (n, rail) in down]
                        if dead:
                            tasks[unit] = self._not_run("; ".join(dead))
                        else:
                            tasks[unit] = self._pair_task(ta, tb, rail, port, check)
            for unit, (argv, res) in run_bounded(tasks, max(1, self.cfg.workers // 2)):
                client, server, rail, test = meta[unit]
                self._record(unit, client, test, ck.PAIR_CHECK[test].kind, argv, res, rail,
                             server)

    # -- collectives -------------------------------------------------------------------
    def collective(self, prefix: str, label: str, members: Sequence[str], test: str,
                   outcome: Outcome, known_good: Sequence[str] = ()) -> Collective:
        coll = self._collect_one(prefix, label, members, test)
        outcome.collectives.append(coll)
        self.say(f"{label}: {len(members)} nodes, {'pass' if coll.ok else 'FAIL'} ({coll.why})")
        if coll.ok or test != "all_reduce_perf":
            return coll

        def tester(groups: Sequence[Group]) -> list[bool]:
            labels = {f"iso-{label}-{len(g)}-{_digest(g)}": g for g in groups}
            found = {k: self._collect_one(prefix, k, g, test) for k, g in labels.items()} \
                if len(groups) == 1 else self._collect_many(prefix, labels, test)
            for k in labels:
                outcome.collectives.append(found[k])
            return [found[k].ok for k in labels]
        result = isolate(list(members), tester, known_good=known_good)
        outcome.isolations[label] = result
        self.say(f"{label}: isolated {', '.join(result.bad) or 'nothing'} in {result.rounds} "
                 f"rounds ({result.tests} tests)")
        return coll

    def _collect_one(self, prefix: str, label: str, members: Sequence[str],
                     test: str) -> Collective:
        return self._collect_many(prefix, {label: tuple(members)}, test)[label]

    def _collect_many(self, prefix: str, groups: dict[str, Group], test: str
                      ) -> dict[str, Collective]:
        jobs = {k: self._launch(prefix, k, g, test) for k, g in groups.items()}
        out: dict[str, Collective] = {}
        for key, (coll, unit_out) in run_bounded(jobs, self.cfg.workers):
            if unit_out is not None:
                self.store.record_output(self.run_id, unit_out)
                self.done[unit_out.unit] = unit_out
            out[key] = coll
        return out

    def _launch(self, prefix: str, label: str, members: Sequence[str], test: str
                ) -> Callable[[], tuple[Collective, UnitOutput | None]]:
        unit = f"{prefix}coll/{label}"

        def go() -> tuple[Collective, UnitOutput | None]:
            out, fresh = self.done.get(unit), None
            if out is None:
                launcher = self.by_name[members[0]]
                argv = mpirun_argv(members, launcher.gpus, nccl_argv(
                    test, 1, self.cfg.nccl_min_bytes, self.cfg.nccl_max_bytes))
                res = self._run(launcher.name, argv)
                out = fresh = UnitOutput(unit, launcher.name, "nccl-multi", "nccl", tuple(argv),
                                         res.rc, res.stdout, res.stderr, round(res.took_s, 3),
                                         peer=",".join(members))
            ok, busbw, why = ev.collective_busbw(out, self.cfg.thresholds)
            return Collective(label, tuple(members), ok, busbw, why), fresh
        return go


def _digest(group: Group) -> str:
    return hashlib.sha256(",".join(sorted(group)).encode()).hexdigest()[:10]
