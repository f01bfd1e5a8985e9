#!/usr/bin/env bash
# One lent-GPU session for the default model (issue 21): train the `lama` default model on a packed
# photo shard, warm-started from the shipped weights, and leave the exported model in $OUT.
#
# Here (CPU), before asking for the machine:
#   python -m inpaintgan.data.shard ../shared/data/photos/train -o gpu_pack/shard.zip --seed <session>
#   bash scripts/gpu_default_model.sh gpu_pack/shard.zip 0.2     # a dry run on the CPU (tiny: EXTRA below)
# On the GPU machine (device tool, carry gpu_pack):
#   bash scripts/gpu_default_model.sh gpu_pack/shard.zip 8       # 8 minutes of training, bf16
# Then copy $OUT/default.safetensors to src/inpaintgan/weights/ and re-run the evaluation.
#
# Environment: OUT (default gpu_out), INIT (default: the shipped default model), EXTRA (more
# `--set` overrides, e.g. for the CPU dry run).
set -euo pipefail
SHARD=${1:?usage: gpu_default_model.sh SHARD.zip MINUTES}
MINUTES=${2:-8}
OUT=${OUT:-gpu_out}
INIT=${INIT:-src/inpaintgan/weights/default.safetensors}
PY=${PYTHON:-python}
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$PY" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$SHARD" "$WORK/photos"
# shellcheck disable=SC2086
"$PY" -m inpaintgan train -c configs/default_lama_gpu.yaml --out "$WORK/run" --no-progress \
  --set data.root="$WORK/photos" --set data.prefill_cache="$WORK/prefill" --set train.init_from="$INIT" --set train.time_limit_min="$MINUTES" ${EXTRA:-}
"$PY" -m inpaintgan export "$WORK/run" -o "$OUT/default.safetensors" --half --working-size 256
cp "$WORK/run/metrics.csv" "$OUT/metrics.csv"
echo "exported $OUT/default.safetensors"
