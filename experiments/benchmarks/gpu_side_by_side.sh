#!/usr/bin/env bash
# Official PyTorch code against jaxhead on one accelerator, in about 8 minutes:
# TRG train step at batch 128, DAD-3DNet at batch 256, each in float32 (framework defaults, TF32 allowed)
# and bfloat16 (torch.autocast against compute_dtype=bfloat16), then LBS at 1024 and 4096 against smplx.
# Rows (img/s, ratio, MFU) go to RESULTS.md.
#
#   bash experiments/benchmarks/gpu_side_by_side.sh OFFICIAL_TRG OFFICIAL_DAD [WHEEL_DIR]
#
# WHEEL_DIR holds the pure-Python wheels of the extras (torchgeometry 0.1.2, yacs, pytorchcv, smplx) for a
# machine without a package index; they are installed without dependencies.
set -euo pipefail
TRG=${1:?official TRG-Release checkout}
DAD=${2:?official DAD-3DHeads checkout}
WHEELS=${3:-}
cd "$(dirname "$0")/../.."
export PYTHONPATH=$PWD
# JAX and torch share the device: JAX would otherwise take 75 % of its memory up front.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.45
if [ -n "$WHEELS" ]; then python -m pip install -q --no-index --no-deps "$WHEELS"/*.whl; fi
python experiments/benchmarks/patch_torchgeometry.py
B=experiments/benchmarks/torch_reference.py
for dtype in float32 bfloat16; do
  timeout 90 python $B --model trg --official_dir "$TRG" --device cuda --batch 128 --dtype $dtype --rounds 10 --write || true
  timeout 115 python $B --model dad3dnet --official_dir "$DAD" --device cuda --batch 256 --dtype $dtype --rounds 10 --write || true
done
timeout 50 python $B --smplx --device cuda --lbs_batches 1024 4096 --rounds 10 --write || true
