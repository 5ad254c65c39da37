#!/usr/bin/env bash
# One universal, QF-conditioned generator (QF 5–95, single and double JPEG, chroma
# variants) against four specialists trained at a single QF (10, 20, 30, 40) with
# the same budget: same model size, patch, batch and number of steps. Then
# `jaxrestore.compare` scores all five on the held-out photos.
#
#   bash launch/universal_vs_specialists.sh OUT [DATA_DIR] [PREDICTOR_RUN]
#
# OUT gets runs/<name>/ (checkpoints, metrics.jsonl), compare.json, compare.md and
# timings.txt. STEPS, WORKERS, CHANNELS, BLOCKS, PATCH, BATCH override the budget
# (defaults: a GPU-sized run of a few minutes per model).
set -uo pipefail

out=${1:?usage: universal_vs_specialists.sh OUT [DATA_DIR] [PREDICTOR_RUN]}
data_dir=${2:-}
predictor=${3:-}
steps=${STEPS:-6000}
workers=${WORKERS:-12}
channels=${CHANNELS:-64}
blocks=${BLOCKS:-8}
patch=${PATCH:-96}
batch=${BATCH:-32}
python=${PYTHON:-python3}
mkdir -p "$out/runs"

common=(
  --config.total_steps="$steps"
  --config.batch_size="$batch"
  --config.data.patch_size="$patch"
  --config.data.workers="$workers"
  --config.data.rotate=True
  --config.data.dir="$data_dir"
  --config.model.channels="$channels"
  --config.model.num_blocks="$blocks"
  --config.optimizer.learning_rate=5e-4
  --config.optimizer.warmup_steps=300
  --config.loss.l1_weight=8.0
  --config.eval.lpips=False
  --config.eval.every_steps="$steps"
  --config.checkpoint_every_steps="$steps"
  --config.keep_checkpoints=1
  --config.log_every_steps=500
)

train() {  # name, config, extra overrides...
  local name=$1 config=$2
  shift 2
  local start=$SECONDS
  "$python" -m jaxrestore.main --config "$config" --workdir "$out/runs/$name" \
    "${common[@]}" "$@" 2>&1 | tee "$out/runs/$name.log" | grep -E "^(step [0-9]*000/|eval)"
  echo "$name: ${PIPESTATUS[0]} exit, $((SECONDS - start)) s" | tee -a "$out/timings.txt"
}

train universal configs/ssim.py:universal
for q in 10 20 30 40; do
  train "q$q" configs/ssim.py --config.data.quality_min="$q" --config.data.quality_max="$q" \
    --config.eval.qualities="($q,)"
done

runs=()
for name in universal q10 q20 q30 q40; do
  [ -d "$out/runs/$name/checkpoints" ] && runs+=("$out/runs/$name")
done
compare_args=(--json "$out/compare.json")
[ -n "$data_dir" ] && compare_args+=(--data-dir "$data_dir")
[ -n "$predictor" ] && compare_args+=(--predictor "$predictor")
[ -n "${MAX_IMAGES:-}" ] && compare_args+=(--max-images "$MAX_IMAGES")
start=$SECONDS
"$python" -m jaxrestore.compare "${runs[@]}" "${compare_args[@]}" >"$out/compare.md"
echo "compare: $? exit, $((SECONDS - start)) s" | tee -a "$out/timings.txt"
cat "$out/compare.md"
