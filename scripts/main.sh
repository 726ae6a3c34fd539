#!/usr/bin/env bash
# One command: set up the environment, build the synthetic dataset on first use, train TRG
# (CPU-sized variant) on it, evaluate against the mean-prediction baseline, draw pictures.
# Outputs go to runs/trg_cpu (override with JAXHEAD_WORKDIR); running it again resumes/reuses.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
start=$(date +%s)
source scripts/setup_env.sh
workdir="${JAXHEAD_WORKDIR:-runs/trg_cpu}"
python -m jaxhead.train --config=configs/trg.py:cpu --workdir="$workdir" "$@"
echo "[main] done in $(( $(date +%s) - start )) s: $workdir/eval/test.md, $workdir/predictions.png, $workdir/curves.png"
