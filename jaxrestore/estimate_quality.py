"""Estimate the JPEG quality factor of image and video files.

    python -m jaxrestore.estimate_quality FILE... [--predictor RUN]

Prints one JSON line per file:
  {"file": ..., "quality": QF, "method": "quantization-table" | "network", ...}
A JPEG file's QF is read from its quantisation tables ("exact": true when they
are libjpeg's tables at that QF; other encoders' tables give the nearest QF).
Other images, and video (a summary over frames spread through the file:
median, min, max and per-frame estimates), go through the quality predictor
(`--predictor`, a `configs/quality.py` run; default $JAXRESTORE_PREDICTOR).
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
from jaxrestore.inference.quality import NO_PREDICTOR


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jaxrestore.estimate_quality", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("files", nargs="+", help="image or video files")
    parser.add_argument(
        "--predictor",
        default=os.environ.get("JAXRESTORE_PREDICTOR", ""),
        help="training workdir of the quality predictor (configs/quality.py)",
    )
    args = parser.parse_args(argv)
    logging.set_verbosity(logging.ERROR)  # orbax's notes on checkpoint metadata
    estimator = None
    if args.predictor:
        try:
            estimator = inference.QualityEstimator(args.predictor)
        except (FileNotFoundError, ValueError) as error:
            print(f"jaxrestore.estimate_quality: {error}", file=sys.stderr)
            return 2
    status = 0
    for path in args.files:
        try:
            result = inference.estimate_file(path, estimator)
        except ValueError as error:
            message = str(error)
            if estimator is None and NO_PREDICTOR in message:
                message += " (--predictor quality, a run or an export; or $JAXRESTORE_PREDICTOR)"
            print(f"jaxrestore.estimate_quality: {message}", file=sys.stderr)
            status = 1
            continue
        print(json.dumps(result), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(run())
