#!/usr/bin/env bash
# On the lent GPU machine, the call before train.sh (carry [".carry/av"]): install
# PyAV, FFmpeg's codecs for the H.264/MPEG-2 degradations of the unet recipe, into
# .site/ at the repository root. The device keeps ignored outputs between calls to a
# warm machine, so the training call that follows within the machine's idle time
# finds it there (train.sh puts .site on the path when it exists).
#
#   bash launch/device/install.sh
#
# The wheel is 35 MiB: with the photos it would pass the 64 MiB a call carries, hence
# a call of its own. Without it train.sh still trains, on the JPEG kinds only.
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${PYTHON:-python3}
rm -rf .site.partial
"$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --target .site.partial .carry/av/*.whl
PYTHONPATH=$PWD/.site.partial "$python" -c '
import av
missing = [c for c in ("libx264", "mpeg2video") if c not in av.codecs_available]
assert not missing, f"PyAV lacks the encoders {missing}"
print("installed in .site: PyAV", av.__version__, "with libx264 and mpeg2video")
'
rm -rf .site
mv .site.partial .site
