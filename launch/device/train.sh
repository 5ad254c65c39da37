#!/usr/bin/env bash
# On the lent GPU machine (the `device` tool's run, from the repository root, with
# carry [".carry"]): train for SECONDS, export, and leave the export in $OUT as
# ≤ 15 MiB parts with the run's metrics, for launch/device/fetch.sh here.
#
#   bash launch/device/train.sh
#
# CONFIG (default ssim:universal_unet), TRAIN_SECONDS (default 420; the
# run is stopped with SIGTERM, checkpoints and exits 75, as on a preemption),
# INIT (default: the packaged weights of NAME if jaxrestore/weights/NAME exists,
# so each lent session continues from the last committed weights), NAME (default
# ssim_unet), WORKERS (grain workers, default 12), EXTRA (more --config overrides);
# SKIP_WHEELS=1 uses the Python packages already installed (a CPU check here).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
config=${CONFIG:-ssim:universal_unet}
seconds=${TRAIN_SECONDS:-420}
name=${NAME:-ssim_unet}
workers=${WORKERS:-12}
python=${PYTHON:-python3}
out=${OUT:-/tmp/device_out}
work=${WORKDIR:-/tmp/device_run}
read -r -a extra <<<"${EXTRA:-}"
mkdir -p "$out"
if [ -z "${SKIP_WHEELS:-}" ] && compgen -G ".carry/whl/*.whl" >/dev/null; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .carry/whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
init=${INIT-}
if [ -z "${INIT+set}" ] && [ -d "jaxrestore/weights/$name" ]; then
  init=jaxrestore/weights/$name
fi
data=()
[ -d .carry/photos ] && data=(--config.data.dir=.carry/photos)
# The pack leaves the training clips out (74 MB); without them the *_clip kinds of
# the unet recipe become intra-frame ones of the same share (NO_CLIPS overrides).
if [ -d .carry/photos ] && [ ! -d .carry/photos/videos/train ] &&
  [ "${config#*:}" = universal_unet ]; then
  data+=("--config.data.degradations=${NO_CLIPS:-jpeg:6,double_jpeg:2,chroma:2,resave:3,h264:3,mpeg2:2}")
  echo "no training clips in .carry/photos: ${data[-1]}"
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | tee "$out/gpu.txt"
start=$(date +%s)
timeout --signal=TERM --kill-after=90 "$seconds" \
  "$python" -m jaxrestore.main --config "configs/${config%%:*}.py:${config#*:}" \
  --workdir "$work" "${data[@]}" --config.data.workers="$workers" \
  --config.init_from="$init" --config.eval.lpips=False "${extra[@]}" 2>&1 |
  grep -v -e '^WARNING' -e 'Warning' | tee "$out/train.log"
status=${PIPESTATUS[0]}
echo "training exited $status after $(($(date +%s) - start)) s" | tee -a "$out/train.log"
case $status in 0 | 75 | 124) ;; *) exit "$status" ;; esac
"$python" -m jaxrestore.export "$work" "/tmp/$name" || exit 1
tar -C /tmp -cf - "$name" | split -b 15m - "$out/$name.tar.part-"
cp "$work/metrics.jsonl" "$out/$name.metrics.jsonl"
ls -la "$out"
