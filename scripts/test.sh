#!/usr/bin/env bash
# The whole test suite: setup, static checks (ruff, mypy --strict), then pytest.
# Lab tests (marked `lab`) need root; they are skipped with a reason otherwise.
# pytest runs on two workers (GPUCTL_TEST_WORKERS, 0 for none): the lab tests one after the
# other on one (tests/conftest.py groups them), the unit tests beside them.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$PWD/${GPUCTL_VENV:-.venv}/bin:$PATH"
echo "== ruff"
ruff check provision tests bench
echo "== mypy (strict on provision/)"
mypy
echo "== pytest"
python -m pytest -q -p no:cacheprovider --durations=25 \
  -n "${GPUCTL_TEST_WORKERS:-2}" --dist loadgroup --no-loadscope-reorder "$@"
