"""Compare trained generators on the held-out photos under many degradations.

    python -m jaxrestore.compare RUN... [--conditions jpeg:10,jpeg:20,double:30:10,...]
        [--predictor RUN] [--video CRF,...] [--lpips] [--max-images N] [--json FILE]

Conditions: `jpeg:Q` (single JPEG, 4:2:0), `jpeg444:Q`, `double:Q1:Q2` (JPEG at Q1,
then cropped by (3, 5) pixels so the grids do not align and saved at Q2),
`h264:CRF` / `mpeg2:QS` (one intra-coded frame). `--video` adds the held-out
video (`videos/heldout` of the assembled set), encoded whole as H.264 at each
CRF (inter frames), restored as the restore command restores a video.

Each generator restores as the restore command does (images in tiles, edge-padded
to a multiple of 64). A quality-conditioned generator is told the QF: the true
one for single JPEG, otherwise the quality predictor's estimate (`--predictor`),
or, without one, the JPEG-equivalent QF measured against the original (an
oracle; the table says which). Scores: PSNR on RGB of 8-bit outputs, mean over
images (or frames), and the gain over the degraded input; `--lpips` adds LPIPS
(AlexNet; lower is better) of the degraded input and of each run. Prints a
Markdown table. The scoring is `jaxrestore.evaluation.compare`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from absl import logging

from jaxrestore.evaluation import compare, protocol


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jaxrestore.compare", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("runs", nargs="+", help="generator training workdirs")
    parser.add_argument("--conditions", default=compare.DEFAULT_CONDITIONS)
    parser.add_argument("--predictor", default="", help="quality predictor workdir")
    parser.add_argument("--video", default="", help="H.264 CRFs for the held-out video, e.g. 35,40")
    parser.add_argument(
        "--lpips", action="store_true", help="also score LPIPS (slower: a compile per image size)"
    )
    parser.add_argument("--source", default="photos", help="held-out images: config.data.source")
    parser.add_argument("--data-dir", default="", help="assembled photo set ('' = default)")
    parser.add_argument("--max-images", type=int, default=0)
    parser.add_argument("--json", default="", help="also write the rows to this file")
    args = parser.parse_args(argv)
    logging.set_verbosity(logging.ERROR)  # orbax's notes on checkpoint metadata
    try:
        images = protocol.image_set(
            source=args.source, data_dir=args.data_dir, limit=args.max_images
        )
        crfs = [int(c) for c in args.video.split(",") if c]
        videos = protocol.held_out_clips(args.data_dir) if crfs else None
        conditions = [c for c in args.conditions.split(",") if c]
        rows = compare.compare(
            args.runs, conditions, images, args.predictor or None, crfs, videos, args.lpips
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"jaxrestore.compare: {error}", file=sys.stderr)
        return 1
    print(compare.markdown(rows, args.runs))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(run())
