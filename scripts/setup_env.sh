#!/usr/bin/env bash
# Creates (or reuses) the virtualenv and installs jaxhead with the given extras.
# Usage: source scripts/setup_env.sh [EXTRAS]    (e.g. "test,torch")
# JAXHEAD_VENV picks the virtualenv directory (default: .venv in the repo root).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${JAXHEAD_VENV:-$repo/.venv}"
extras="${1:-}"
if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating virtualenv $venv"
  python3 -m venv "$venv"
fi
# Pinned requirements first: the editable install then resolves nothing new.
"$venv/bin/python" -m pip install -q --upgrade pip
if [ -n "$extras" ]; then
  "$venv/bin/python" -m pip install -q -r "$repo/requirements-test.txt"
  "$venv/bin/python" -m pip install -q -e "$repo[$extras]"
else
  "$venv/bin/python" -m pip install -q -r "$repo/requirements.txt"
  "$venv/bin/python" -m pip install -q -e "$repo"
fi
export PATH="$venv/bin:$PATH"
