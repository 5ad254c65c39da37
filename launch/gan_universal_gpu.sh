#!/usr/bin/env bash
# Adversarial fine-tuning of the packaged universal generator on one GPU, with
# several loss weightings trained side by side (the models are small: one run
# leaves most of a modern GPU idle), then the best checkpoint exported.
#
#   bash launch/gan_universal_gpu.sh OUT [DATA_DIR]
#
# Each variant runs `configs/gan.py:universal` with its overrides for at most
# SECONDS_PER_RUN seconds of wall time (default 300; the run is stopped there and
# keeps its last checkpoint) or STEPS adversarial steps. Every 1,000 steps it is
# evaluated on the held-out photos (QF 10–40, PSNR, SSIM, LPIPS) and checkpointed.
# `jaxrestore.export --best-lpips 10` then picks, over all variants, the
# checkpoint with the lowest LPIPS at QF 10 that still gains PSNR at every QF, and
# writes it to OUT/gan_universal. OUT also gets runs/<variant>/ and their logs.
# GPU_SHARE: the fraction of GPU memory each concurrent run may take; EXTRA:
# overrides for every variant (e.g. a smaller batch for a smoke test).
set -uo pipefail

out=${1:?usage: gan_universal_gpu.sh OUT [DATA_DIR]}
data_dir=${2:-}
seconds=${SECONDS_PER_RUN:-300}
steps=${STEPS:-100000}
workers=${WORKERS:-4}
python=${PYTHON:-python3}
read -r -a extra <<<"${EXTRA:-}"
mkdir -p "$out/runs"

# name: overrides of configs/gan.py:universal
variants=(
  "perc0.1:"
  "perc0.3:--config.gan.perceptual_weight=0.3 --config.gan.adversarial_weight=1e-2"
  "perc0.3_adv:--config.gan.perceptual_weight=0.3 --config.gan.adversarial_weight=2e-2 --config.gan.ssim_weight=0.5 --config.gan.l1_weight=0.5"
)
if [ -n "${VARIANTS:-}" ]; then  # e.g. VARIANTS=perc0.1,perc0.3
  chosen=()
  for v in "${variants[@]}"; do
    [[ ",$VARIANTS," == *",${v%%:*},"* ]] && chosen+=("$v")
  done
  variants=("${chosen[@]}")
fi

export XLA_PYTHON_CLIENT_MEM_FRACTION=${GPU_SHARE:-0.25}
pids=()
runs=()
for v in "${variants[@]}"; do
  name=${v%%:*}
  read -r -a overrides <<<"${v#*:}"
  runs+=("$out/runs/$name")
  timeout --signal=TERM --kill-after=60 "$seconds" \
    "$python" -m jaxrestore.main --config configs/gan.py:universal --workdir "$out/runs/$name" \
    --config.adversarial_steps="$steps" --config.data.workers="$workers" \
    --config.data.dir="$data_dir" "${overrides[@]}" "${extra[@]}" >"$out/runs/$name.log" 2>&1 &
  pids+=($!)
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}"
  echo "${runs[$i]}: exit $? (124 = stopped at ${seconds} s)"
  grep -E "^eval|steps/s" "${runs[$i]}.log" | tail -n 12
done
"$python" -m jaxrestore.export "${runs[@]}" "$out/gan_universal" --best-lpips 10
