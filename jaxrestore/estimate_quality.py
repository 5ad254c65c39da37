"""Estimate the JPEG quality factor of image and video files.

    python -m jaxrestore.estimate_quality FILE... [--predictor quality|RUN]

Prints one JSON line per file:
  {"file": ..., "quality": QF, "method": "quantization-table" | "network" |
   "earlier-compression" | "resized-compression", ...}
A JPEG file's QF is read from its quantisation tables ("exact": true when they
are libjpeg's tables at that QF; other encoders' tables give the nearest QF).
When the pixels carry an earlier, heavier JPEG compression (the picture was
cropped, or resized, and saved again), "quality" is that one's QF, the QF the
restore command uses, and "last_save_quality" the last save's; the earlier
grid's offset, its lattice's strength and, if resized since, its blocks' size
in pixels come with it.
Other images, and video (a summary over frames spread through the file:
median, min, max and per-frame estimates), go through the quality predictor:
`--predictor`, default $JAXRESTORE_PREDICTOR or else the packaged one
(`quality`, the one the restore command uses); a `configs/quality.py` run or an
export also work, and `--predictor ''` goes without (JPEG files only).
A file that cannot be read prints a one-line error on stderr; the exit status
is then 1, after the other files are done.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from absl import logging

from jaxrestore import inference
from jaxrestore.files import printable
from jaxrestore.inference import loader
from jaxrestore.inference.quality import NO_PREDICTOR


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jaxrestore.estimate_quality", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("files", nargs="+", help="image or video files")
    parser.add_argument(
        "--predictor",
        default=os.environ.get("JAXRESTORE_PREDICTOR") or loader.DEFAULT_PREDICTOR,
        help="'quality' (packaged), or a quality-predictor workdir (configs/quality.py) "
        "or export; default $JAXRESTORE_PREDICTOR, else 'quality'; '' for none (JPEG "
        "files only)",
    )
    args = parser.parse_args(argv)
    logging.set_verbosity(logging.ERROR)  # orbax's notes on checkpoint metadata
    try:
        # '' goes without: JPEG files only (their tables).
        estimator = inference.QualityEstimator(args.predictor) if args.predictor else None
    except (FileNotFoundError, ValueError) as error:
        print(f"jaxrestore.estimate_quality: {printable(str(error))}", file=sys.stderr)
        return 2
    status = 0
    for path in args.files:
        try:
            result = inference.estimate_file(path, estimator)
        except ValueError as error:
            message = printable(str(error))
            if estimator is None and NO_PREDICTOR in message:
                message += " (--predictor quality, a run or an export; or $JAXRESTORE_PREDICTOR)"
            print(f"jaxrestore.estimate_quality: {message}", file=sys.stderr)
            status = 1
            continue
        print(json.dumps(result), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(run())
