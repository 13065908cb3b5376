#!/usr/bin/env bash
# Fresh machine -> the main job on the built-in lab site: install, lint, plan, and (as root)
# stand up the simulated lab, provision its hosts (preflight, image, base) and burn in its rack.
# --no-lab stops after the plan (what tests/test_fresh_clone.py runs from a fresh clone);
# --keep-lab leaves the lab up at the end (by default it is taken down again).
set -euo pipefail
cd "$(dirname "$0")/.."
LAB=1
KEEP=0
case "${1:-}" in
  "") ;;
  --no-lab) LAB=0 ;;
  --keep-lab) KEEP=1 ;;
  *) echo "usage: $0 [--no-lab | --keep-lab]" >&2; exit 2 ;;
esac
./scripts/setup.sh
export PATH="$PWD/${GPUCTL_VENV:-.venv}/bin:$PATH"
SITE=inventory/sites/lab
echo "== gpuctl lint $SITE"
gpuctl lint "$SITE"
echo "== gpuctl plan $SITE   (writes $SITE/generated)"
gpuctl plan "$SITE"
if [ "$LAB" = 0 ]; then
  echo "quickstart: done (--no-lab)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "quickstart: not root; skipping the lab (gpuctl lab up needs root)"
  exit 0
fi
echo "== gpuctl lab up $SITE"
gpuctl lab up "$SITE"
gpuctl lab status "$SITE"
echo "== gpuctl provision site $SITE --phases preflight,image,base"
gpuctl provision site "$SITE" --phases preflight,image,base
echo "== gpuctl burnin run $SITE --rack a01 --level standard"
gpuctl burnin run "$SITE" --rack a01 --level standard --report-dir out/lab-burnin
if [ "$KEEP" = 1 ]; then
  echo "quickstart: done. The lab is still up; tear it down with: gpuctl lab down $SITE"
else
  echo "== gpuctl lab down $SITE   (--keep-lab leaves it up)"
  gpuctl lab down "$SITE"
  echo "quickstart: done"
fi
