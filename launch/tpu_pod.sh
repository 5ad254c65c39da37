#!/usr/bin/env bash
# Train jaxrestore on a Cloud TPU VM pod slice: every worker runs the same
# command; JAX finds the coordinator, process count and ids itself on TPU VMs.
#
#   launch/tpu_pod.sh create            # create the TPU VM slice
#   launch/tpu_pod.sh install           # clone the code and install it on every worker
#   launch/tpu_pod.sh data              # pack the photo set into TFDS on the bucket (once)
#   launch/tpu_pod.sh train [ARGS...]   # run jaxrestore.main on every worker
#   launch/tpu_pod.sh delete
#
# Set TPU_NAME, ZONE, PROJECT and BUCKET (gs://…, shared by all workers: data,
# checkpoints, metrics), and REPO (git URL of this project) for `install`;
# optionally ACCELERATOR_TYPE (default v4-32), RUNTIME (default tpu-ubuntu2204-base), BRANCH,
# CONFIG (default configs/gan.py), RUN (default gan).
# Rerunning `train` resumes from the newest checkpoint in $BUCKET/runs/$RUN.
set -euo pipefail

case "${1:-}" in
  create | install | data | train | delete) ;;
  *)
    sed -n '2,/^set -euo/{/^set/d;p}' "$0" >&2
    exit 2
    ;;
esac
: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}" "${PROJECT:?set PROJECT}"
: "${BUCKET:?set BUCKET, e.g. gs://my-bucket/jaxrestore}"
accelerator=${ACCELERATOR_TYPE:-v4-32}
runtime=${RUNTIME:-tpu-ubuntu2204-base}
branch=${BRANCH:-main}
config=${CONFIG:-configs/gan.py}
run=${RUN:-gan}

on_all_workers() {
  gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" --project "$PROJECT" \
    --worker=all --command "$1"
}

case "${1:-}" in
  create)
    gcloud compute tpus tpu-vm create "$TPU_NAME" --zone "$ZONE" --project "$PROJECT" \
      --accelerator-type "$accelerator" --version "$runtime"
    ;;
  install)
    repo=${REPO:?set REPO to the git URL of jaxrestore}
    on_all_workers "set -e
      rm -rf ~/jaxrestore && git clone --depth 1 --branch $branch $repo ~/jaxrestore
      cd ~/jaxrestore && python3 -m venv .venv && . .venv/bin/activate
      pip install -q -U pip && pip install -q -e . 'jax[tpu]' gcsfs"
    ;;
  data)
    # Assemble the photo set on worker 0 and pack it into TFDS on the bucket.
    gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" --project "$PROJECT" \
      --worker=0 --command "set -e; cd ~/jaxrestore && . .venv/bin/activate
      python -m jaxrestore.data.assemble --out ~/photos
      python -m jaxrestore.data.tfds_pack ~/photos --data_dir $BUCKET/tfds"
    ;;
  train)
    shift
    args=$(printf ' %q' "$@")
    on_all_workers "cd ~/jaxrestore && . .venv/bin/activate &&
      python -m jaxrestore.main --distributed --config $config \
        --workdir $BUCKET/runs/$run \
        --config.data.source=tfds:jaxrestore_images --config.data.dir=$BUCKET/tfds$args"
    ;;
  delete)
    gcloud compute tpus tpu-vm delete "$TPU_NAME" --zone "$ZONE" --project "$PROJECT" --quiet
    ;;
esac
