"""An :class:`~provision.execute.remote.RemoteExecutor` over the lab hardware simulator, no lab.

For tests and demos without root: every node is a simulator personality on this machine
(:class:`provision.lab.hwsim.local.LocalSim`). Since all "nodes" share one network stack, a
perftest server's port is shifted per node and a client's server address (the node's
planned in-band address) is pointed at loopback. Not for real sites.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Mapping, Sequence

from provision.execute.remote import Collector, CommandResult
from provision.lab.hwsim.local import LocalSim

PORT_STRIDE = 97


class SimExecutor:
    def __init__(self, sim: LocalSim, addresses: Mapping[str, str],
                 port_base: int = 0) -> None:
        self.sim = sim
        self.addresses = dict(addresses)
        self.by_address = {a: n for n, a in addresses.items()}
        self.index = {n: i for i, n in enumerate(sorted(addresses))}
        self.port_base = port_base
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self._lock = threading.Lock()

    def _port(self, node: str, port: str) -> str:
        return str(int(port) + self.port_base + PORT_STRIDE * (1 + self.index.get(node, 0)))

    def _rewrite(self, node: str, argv: Sequence[str]) -> list[str]:
        args = list(argv)
        if args[:1] == ["timeout"]:
            args = args[2:]
        if args and args[0] in ("ib_write_bw", "ib_write_lat"):
            server = next((a for a in args[1:] if a in self.by_address), None)
            owner = self.by_address[server] if server else node
            for i, a in enumerate(args):
                if a == "-p" and i + 1 < len(args):
                    args[i + 1] = self._port(owner, args[i + 1])
            if server:
                args[args.index(server)] = "127.0.0.1"
        return args

    def run(self, node: str, argv: Sequence[str], *, timeout: float) -> CommandResult:
        with self._lock:
            self.calls.append((node, tuple(argv)))
        start = time.monotonic()
        args = self._rewrite(node, argv)
        try:
            done = self.sim.run(node, args, timeout=timeout)
        except FileNotFoundError as exc:
            return CommandResult(127, "", f"{args[0]}: command not found ({exc})",
                                 time.monotonic() - start)
        except subprocess.TimeoutExpired:
            return CommandResult(124, "", f"{args[0]}: timed out after {timeout:g}s",
                                 time.monotonic() - start)
        return CommandResult(done.returncode, done.stdout, done.stderr,
                             time.monotonic() - start)

    def start(self, node: str, argv: Sequence[str], *, timeout: float) -> Collector:
        with self._lock:
            self.calls.append((node, tuple(argv)))
        begin = time.monotonic()
        sink = Collector()
        proc = self.sim.start(node, self._rewrite(node, argv))

        def pump() -> None:
            assert proc.stdout is not None and proc.stderr is not None
            err: list[str] = []
            reader = threading.Thread(target=lambda: err.append(proc.stderr.read()
                                                                if proc.stderr else ""))
            reader.start()
            for line in proc.stdout:
                sink.feed(out=line.encode())
            try:
                rc = proc.wait(timeout=max(0.1, timeout - (time.monotonic() - begin)))
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
            reader.join(timeout=5)
            sink.feed(err="".join(err).encode())
            sink.finish(CommandResult(rc, sink.out.decode(), sink.err.decode(),
                                      time.monotonic() - begin))
        threading.Thread(target=pump, daemon=True).start()
        return sink

    def close(self) -> None:
        return None


class InProcessSimExecutor(SimExecutor):
    """The same simulator, answered inside this process: fast enough for unit tests.

    Calls are serialised (the simulator reads its host from the environment). perftest
    pairs are computed from both ends' simulated facts instead of meeting over TCP: the
    server side is "listening" at once and prints the same report as the client.
    """

    def __init__(self, sim: LocalSim, addresses: Mapping[str, str]) -> None:
        super().__init__(sim, addresses)
        self._call_lock = threading.Lock()

    def _rewrite(self, node: str, argv: Sequence[str]) -> list[str]:
        return list(argv[2:] if argv[:1] == ["timeout"] else argv)

    def _perftest(self, node: str, args: list[str]) -> CommandResult:
        from provision.lab.hwsim import ib_write_bw, ib_write_lat, perftest
        from provision.lab.hwsim.state import HostState, SimExit

        test = "bw" if args[0] == "ib_write_bw" else "lat"
        table = ib_write_bw.table if test == "bw" else ib_write_lat.table
        begin = time.monotonic()
        try:
            cli = perftest.parse(test, args[1:])
            if cli is None:
                return CommandResult(0, f"Version: {perftest.VERSION}\n", "", 0.0)
            server = self.by_address.get(cli.server or "", node)
            me = perftest.check_device(HostState.load(self.sim.sim_dir, node), cli.dev)
            peer = perftest.check_device(HostState.load(self.sim.sim_dir, server), cli.dev)
        except SimExit as exc:
            return CommandResult(exc.code, "", exc.message, time.monotonic() - begin)
        lines = [*perftest.header(cli, cli.params, cli.dev),
                 *perftest.addresses(me, peer, cli.params.qps), perftest.RULE,
                 *table(cli, cli.params, me, peer), perftest.RULE]
        return CommandResult(0, "\n".join(lines) + "\n", "", time.monotonic() - begin)

    def run(self, node: str, argv: Sequence[str], *, timeout: float) -> CommandResult:
        with self._lock:
            self.calls.append((node, tuple(argv)))
        args = self._rewrite(node, argv)
        if args[0] in ("ib_write_bw", "ib_write_lat"):
            return self._perftest(node, args)
        begin = time.monotonic()
        with self._call_lock:
            code, out, err = self.sim.call(node, args)
        return CommandResult(code, out, err, time.monotonic() - begin)

    def start(self, node: str, argv: Sequence[str], *, timeout: float) -> Collector:
        with self._lock:
            self.calls.append((node, tuple(argv)))
        args = self._rewrite(node, argv)
        sink = Collector()
        result = self._perftest(node, args)
        if result.rc == 0:
            sink.feed(out=b"* Waiting for client to connect... *\n")
        sink.finish(result)
        return sink
