#!/usr/bin/env bash
# Fresh machine -> the main job on the built-in lab site: install, lint, plan, and (as root)
# stand up the simulated lab, provision its hosts (preflight, image, base) and burn in its rack.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$PWD/${GPUCTL_VENV:-.venv}/bin:$PATH"
SITE=inventory/sites/lab
echo "== gpuctl lint $SITE"
gpuctl lint "$SITE"
echo "== gpuctl plan $SITE   (writes $SITE/generated)"
gpuctl plan "$SITE"
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
echo "quickstart: done. Tear the lab down with: gpuctl lab down $SITE"
