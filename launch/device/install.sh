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
mapfile -t wheels < <(compgen -G ".carry/av/av-*.whl")
if [ "${#wheels[@]}" -ne 1 ]; then
  echo "install.sh: expected one PyAV wheel in .carry/av, found ${#wheels[@]}" \
    "(run prepare.sh here; carry [\".carry/av\"])" >&2
  exit 1
fi
rm -rf .site.partial
"$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --target .site.partial "${wheels[0]}"
PYTHONPATH=$PWD/.site.partial "$python" -c '
import av
from av.codec import Codec
for name in ("libx264", "mpeg2video"):
    Codec(name, "w")  # raises when PyAV has no such encoder
print("installed in .site: PyAV", av.__version__, "with the libx264 and mpeg2video encoders")
'
rm -rf .site
mv .site.partial .site
