#!/usr/bin/env bash
# Here, after launch/device/train.sh ran on the lent machine: join the export's
# parts (the run's files_at folder) into jaxrestore/weights/NAME (replacing it)
# and keep the run's metrics in docs/training/.
#
#   bash launch/device/fetch.sh FILES_AT [NAME]
set -euo pipefail
cd "$(dirname "$0")/../.."
files_at=${1:?usage: fetch.sh FILES_AT [NAME]}
name=${2:-ssim_unet}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cat "$files_at/$name".tar.part-* | tar -C "$scratch" -xf -
python -c "from jaxrestore.inference import loader; loader.load('$scratch/$name', 'generator')"
rm -rf "jaxrestore/weights/$name"
mv "$scratch/$name" "jaxrestore/weights/$name"
cp "$files_at/$name.metrics.jsonl" "docs/training/$name.metrics.jsonl"
echo "jaxrestore/weights/$name: $(du -sh "jaxrestore/weights/$name" | cut -f1)"
