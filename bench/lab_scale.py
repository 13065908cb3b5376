"""Time ``gpuctl lab`` up / status / down for 4, 16 and 64 hosts (root; not a test).

    sudo python bench/lab_scale.py [--sizes 4,16,64] [--lab-dir /tmp/gpuctl-lab-bench]

Each size gets its own site and a free /24 in 10.213.0.0/16; every lab is taken down again,
also when a step fails. Prints one row per size.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "lab"))

from labspec import make_spec  # noqa: E402

from provision import lab  # noqa: E402


def bench(count: int, base: Path) -> tuple[float, float, float, float, bool]:
    site = f"bench{count}"
    root = base / site
    spec = make_spec(site, count, seed=count)
    t0 = time.monotonic()
    try:
        lab.up(spec, root)
        t1 = time.monotonic()
        lab.up(spec, root)  # idempotent: nothing to do
        t2 = time.monotonic()
        report = lab.status(site, root)
        t3 = time.monotonic()
    finally:
        t4 = time.monotonic()
        lab.down(site, root)
        t5 = time.monotonic()
    return t1 - t0, t2 - t1, t3 - t2, t5 - t4, report.ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4,16,64")
    parser.add_argument("--lab-dir", default=None, help="parent of the labs [a temp dir]")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    base = Path(args.lab_dir or tempfile.mkdtemp(prefix="gpuctl-lab-bench-"))
    print(f"{'hosts':>5}  {'up':>7}  {'up again':>8}  {'status':>7}  {'down':>7}  ok")
    for count in sizes:
        up_s, again_s, status_s, down_s, ok = bench(count, base)
        print(f"{count:>5}  {up_s:>6.2f}s  {again_s:>7.2f}s  {status_s:>6.2f}s  "
              f"{down_s:>6.2f}s  {'yes' if ok else 'NO'}", flush=True)
    if not args.lab_dir:
        os.rmdir(base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
