#!/usr/bin/env bash
# One command: set up the environment and run the whole test suite on CPU.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
source scripts/setup_env.sh "test,torch"
export JAX_PLATFORMS=cpu
set +e
python -m pytest -q "$@"
rc=$?
set -e
# pytest exits 5 when it collected no test: that is a failure too.
if [ "$rc" -ne 0 ]; then
  echo "[test] pytest failed with exit code $rc" >&2
  exit "$rc"
fi
