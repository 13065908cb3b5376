"""The per-host holder: mounts the host's private overlays, then becomes its sshd.

Started by the lab as::

    ip netns exec <ns> unshare -m -u --propagation private python3 -I -S holder.py holder.json

so it runs in the host's network namespace with a fresh mount and UTS namespace. It sets
the hostname, mounts an overlay over each of the host's private directories (/etc, /var,
/opt, /usr, /root; upper and work dirs under the lab dir) and ``exec``s ``sshd -D``. The
sshd keeps the namespaces alive and every SSH session inherits them, so what a session
installs stays inside that host. When the sshd exits the mounts vanish with the namespace.

Standard library only and run as a script (``python3 -I -S``), so it starts fast.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import sys


def mount_overlay(libc: ctypes.CDLL, target: str, upper: str, work: str) -> None:
    options = f"lowerdir={target},upperdir={upper},workdir={work}"
    if libc.mount(b"overlay", target.encode(), b"overlay", 0, options.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount overlay on {target}: {os.strerror(err)}")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: holder.py HOLDER_JSON", file=sys.stderr)
        return 2
    with open(argv[1]) as fh:
        config = json.load(fh)
    try:
        socket.sethostname(config["hostname"])
        libc = ctypes.CDLL(None, use_errno=True)
        for overlay in config["overlays"]:
            mount_overlay(libc, overlay["target"], overlay["upper"], overlay["work"])
        command = [str(a) for a in config["exec"]]
        sys.stdout.flush()
        os.execv(command[0], command)
    except OSError as exc:
        print(f"gpuctl lab holder for {config.get('hostname')}: {exc}", file=sys.stderr)
        return 1
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
