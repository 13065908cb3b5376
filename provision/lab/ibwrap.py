#!/usr/bin/python3
"""InfiniBand tool wrapper installed on every lab host (``/usr/local/bin/<tool>``).

A lab host has no HCA; its HCAs are nodes of the ibsim fabric. This wrapper runs the real
tool from ``/usr/sbin`` with the umad2sim preload and the ibsim server address, attached as
one of the host's HCAs (``SIM_HOST``), so a plain ``ibstat`` or ``ibnetdiscover`` over SSH
works. ``ibstat`` without a CA argument shows every HCA of the host, and CA names are shown
as the device part of the HCA id (``"lab-gpu-01 mlx5_3"`` -> ``mlx5_3``) instead of ibsim's
``ibsim0``. ``-C <ca>`` selects the HCA for the other tools; otherwise ``SIM_HOST`` from the
environment when it is one of the host's HCAs (then ``ibstat`` shows just that one), else
the host's first HCA.

Standard library only: this file runs under the host's ``/usr/bin/python3``. Its settings come
from ``/etc/gpuctl-lab/ib.json``, written by ``gpuctl lab up``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

CONFIG = "/etc/gpuctl-lab/ib.json"
SIM_CA = "ibsim0"


def device_name(hca_id: str) -> str:
    """``"lab-gpu-01 mlx5_3"`` -> ``"mlx5_3"``; an id without a space is used whole."""
    return hca_id.rsplit(" ", 1)[-1]


def find_hca(hcas: list[str], name: str) -> str | None:
    for hca in hcas:
        if name in (hca, device_name(hca)):
            return hca
    return None


def tool_env(config: dict[str, object], hca: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["LD_PRELOAD"] = str(config["preload"])
    env["IBSIM_SERVER_NAME"] = str(config["server"])
    env["IBSIM_SERVER_PORT"] = str(config["port"])
    if hca is not None:
        env["SIM_HOST"] = hca
    return env


def split_ca_option(args: list[str]) -> tuple[str | None, list[str]]:
    """Take ``-C X`` / ``-CX`` / ``--Ca X`` / ``--Ca=X`` out of ``args``."""
    ca: str | None = None
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-C", "--Ca") and i + 1 < len(args):
            ca = args[i + 1]
            i += 2
            continue
        if arg.startswith("--Ca="):
            ca = arg.split("=", 1)[1]
        elif arg.startswith("-C") and len(arg) > 2:
            ca = arg[2:]
        else:
            rest.append(arg)
        i += 1
    return ca, rest


def env_hca(hcas: list[str]) -> str | None:
    """The host HCA named by ``SIM_HOST`` in the environment, if any."""
    wanted = os.environ.get("SIM_HOST")
    return find_hca(hcas, wanted) if wanted else None


def run_ibstat(config: dict[str, object], hcas: list[str], args: list[str]) -> int:
    flags = [a for a in args if a.startswith("-")]
    positional = [a for a in args if not a.startswith("-")]
    if "-l" in flags or "--list_of_cas" in flags:
        for name in hcas:
            print(device_name(name))
        return 0
    chosen = env_hca(hcas)
    selected = [chosen] if chosen is not None else hcas
    port: list[str] = []
    if positional:
        wanted = find_hca(hcas, positional[0])
        if wanted is None:
            print(f"ibpanic: ibstat: stat of IB device '{positional[0]}' failed",
                  file=sys.stderr)
            return 255
        selected = [wanted]
        port = positional[1:2]
    worst = 0
    for hca in selected:
        argv = ["/usr/sbin/ibstat", *flags] + ([SIM_CA, *port] if positional else [])
        with tempfile.TemporaryDirectory(prefix="gpuctl-ib-") as scratch:  # umad2sim's sys-*
            result = subprocess.run(argv, env=tool_env(config, hca), capture_output=True,
                                    text=True, timeout=30, check=False, cwd=scratch)
        sys.stdout.write(result.stdout.replace(f"'{SIM_CA}'", f"'{device_name(hca)}'"))
        sys.stderr.write(result.stderr)
        worst = max(worst, result.returncode)
    return worst


def main(argv: list[str]) -> int:
    tool = os.path.basename(argv[0])
    try:
        with open(CONFIG) as fh:
            config = json.load(fh)
    except OSError as exc:
        print(f"{tool}: gpuctl lab: cannot read {CONFIG}: {exc.strerror}", file=sys.stderr)
        return 255
    hcas = [str(h) for h in config["hcas"]]
    if tool == "ibstat":
        return run_ibstat(config, hcas, argv[1:])
    ca, rest = split_ca_option(argv[1:])
    hca = env_hca(hcas) or (hcas[0] if hcas else None)
    if ca is not None:
        hca = find_hca(hcas, ca)
        if hca is None:
            print(f"ibwarn: {tool}: can't find CA {ca!r} on this host", file=sys.stderr)
            return 255
    real = os.path.join(str(config.get("tools", "/usr/sbin")), tool)
    os.execve(real, [real, *rest], tool_env(config, hca))
    return 255  # not reached


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except BrokenPipeError:  # e.g. `ibstat | head`: exit quietly, as the real tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
