#!/usr/bin/env bash
# Fresh machine -> the main job on the built-in lab site: install, lint, plan, and (as root)
# stand up the simulated lab and run whatever of the pipeline exists on it.
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
if gpuctl lab --help >/dev/null 2>&1; then
  echo "== gpuctl lab up $SITE"
  gpuctl lab up "$SITE"
  gpuctl lab status "$SITE"
fi
if gpuctl provision --help >/dev/null 2>&1; then
  echo "== gpuctl provision site $SITE"
  gpuctl provision site "$SITE" --phases preflight,image,base
fi
if gpuctl burnin run --help >/dev/null 2>&1; then
  echo "== gpuctl burnin run $SITE --rack a01 --level standard"
  gpuctl burnin run "$SITE" --rack a01 --level standard --report-dir out/lab-burnin
fi
echo "quickstart: done. Tear the lab down with: gpuctl lab down $SITE"
