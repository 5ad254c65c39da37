"""Compare trained generators on the held-out photos under many degradations.

    python -m jaxrestore.compare RUN... [--conditions jpeg:10,jpeg:20,double:30:10,...]
        [--predictor RUN] [--video CRF,...] [--max-images N] [--json FILE]

Conditions: `jpeg:Q` (single JPEG, 4:2:0), `jpeg444:Q`, `double:Q1:Q2` (JPEG at Q1,
then cropped by (3, 5) pixels so the grids do not align and saved at Q2),
`h264:CRF` / `mpeg2:QS` (one intra-coded frame). `--video` adds the held-out
video (`videos/heldout` of the assembled set), encoded whole as H.264 at each
CRF (inter frames), restored frame by frame.

A quality-conditioned generator is told the QF: the true one for single JPEG,
otherwise the quality predictor's estimate (`--predictor`), or, without one, the
JPEG-equivalent QF measured against the original (an oracle; the table says
which). Scores: PSNR on RGB of 8-bit outputs, mean over images (or frames),
and the gain over the degraded input. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from jaxrestore import inference, metrics
from jaxrestore.data import degrade, sources

DEFAULT_CONDITIONS = (
    "jpeg:5,jpeg:10,jpeg:20,jpeg:30,jpeg:40,jpeg:60,jpeg:90,double:30:10,double:10:30,double:50:50"
)
DOUBLE_SHIFT = (3, 5)


def degrade_image(image: np.ndarray, condition: str) -> tuple[np.ndarray, np.ndarray, int | None]:
    """(degraded, matching original, true QF or None) of one held-out image."""
    kind, *values = condition.split(":")
    numbers = [int(v) for v in values]
    if kind == "jpeg" and len(numbers) == 1:
        return degrade.jpeg_roundtrip(image, numbers[0]), image, numbers[0]
    if kind == "jpeg444" and len(numbers) == 1:
        return degrade.jpeg_roundtrip(image, numbers[0], "444"), image, numbers[0]
    if kind == "double" and len(numbers) == 2:
        dy, dx = DOUBLE_SHIFT
        size_h, size_w = image.shape[0] - dy, image.shape[1] - dx
        once = degrade.jpeg_roundtrip(image, numbers[0])[dy:, dx:]
        return degrade.jpeg_roundtrip(once, numbers[1]), image[dy:, dx:][:size_h, :size_w], None
    if kind in ("h264", "mpeg2") and len(numbers) == 1:
        even = image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]
        return degrade.video_roundtrip(even[None], kind, numbers[0])[0], even, None
    raise ValueError(f"unknown condition {condition!r}")


class Scorer:
    def __init__(self, workdir: str, estimator: inference.QualityEstimator | None):
        self.name = workdir
        self.restorer = inference.Restorer(workdir, estimator)
        self.estimator = estimator

    def quality(self, degraded: np.ndarray, original: np.ndarray, true: int | None) -> tuple:
        if not self.restorer.conditioned:
            return 50.0, "unused"  # ignored by an unconditioned generator
        if true is not None:
            return float(true), "given"
        if self.estimator is not None:
            return self.estimator.estimate(degraded), "predicted"
        return float(degrade.jpeg_equivalent_quality(original, degraded)), "oracle"

    def psnr(self, degraded: np.ndarray, original: np.ndarray, quality: float) -> float:
        # The restorer's own jitted apply: uint8 in, quantised [0, 1] out.
        restored = self.restorer._apply(
            self.restorer.params, jnp.asarray(degraded[None]), jnp.full((1,), quality)
        )
        target = jnp.asarray(original[None], jnp.float32) / 255.0
        return float(metrics.psnr(restored, target, 1.0)[0])


def compare(
    runs: list[str],
    conditions: list[str],
    images: sources.ImageSet,
    predictor: str | None,
    video_crfs: list[int],
    videos: sources.ClipSet | None,
) -> list[dict]:
    estimator = inference.QualityEstimator(predictor) if predictor else None
    scorers = [Scorer(run, estimator) for run in runs]
    rows = []

    def add_row(condition: str, triples: list[tuple]) -> None:
        """Score every model on (degraded, original, true QF or None) triples."""
        row = {"condition": condition, "images": len(triples)}
        row["psnr_degraded"] = float(np.mean([metrics.psnr(d, o) for d, o, _ in triples]))
        for scorer in scorers:
            scores, how = [], set()
            for degraded, original, true in triples:
                quality, method = scorer.quality(degraded, original, true)
                how.add(method)
                scores.append(scorer.psnr(degraded, original, quality))
            row[scorer.name] = float(np.mean(scores))
            row[f"{scorer.name} quality"] = "/".join(sorted(how))
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)

    originals = [images.load(i) for i in range(len(images))]
    for condition in conditions:
        add_row(condition, [degrade_image(image, condition) for image in originals])
    for crf in video_crfs:
        if videos is None or len(videos) == 0:
            raise ValueError("--video: no held-out video clips (run jaxrestore.data.assemble)")
        for index in range(len(videos)):
            clip = np.asarray(videos.clip(index))
            decoded = degrade.video_roundtrip(clip, "h264", crf)
            triples = [(d, o, None) for d, o in zip(decoded, clip)]
            add_row(f"video h264 crf{crf} [{index}]", triples)
    return rows


def markdown(rows: list[dict], runs: list[str]) -> str:
    header = "| condition | degraded PSNR | " + " | ".join(f"{Path(r).name} (gain)" for r in runs)
    lines = [header + " |", "|" + "---|" * (2 + len(runs))]
    for row in rows:
        cells = [
            f"{row[r]:.2f} ({row[r] - row['psnr_degraded']:+.2f})"
            + ("" if row[f"{r} quality"] in ("given", "unused") else f" [{row[f'{r} quality']}]")
            for r in runs
        ]
        lines.append(
            f"| {row['condition']} | {row['psnr_degraded']:.2f} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jaxrestore.compare", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("runs", nargs="+", help="generator training workdirs")
    parser.add_argument("--conditions", default=DEFAULT_CONDITIONS)
    parser.add_argument("--predictor", default="", help="quality predictor workdir")
    parser.add_argument("--video", default="", help="H.264 CRFs for the held-out video, e.g. 35,40")
    parser.add_argument("--source", default="photos", help="held-out images: config.data.source")
    parser.add_argument("--data-dir", default="", help="assembled photo set ('' = default)")
    parser.add_argument("--max-images", type=int, default=0)
    parser.add_argument("--json", default="", help="also write the rows to this file")
    args = parser.parse_args(argv)
    logging.set_verbosity(logging.ERROR)  # orbax's notes on checkpoint metadata
    data = ml_collections.ConfigDict({"source": args.source, "dir": args.data_dir, "videos": ""})
    try:
        images = sources.resolve(data)["heldout"]
        if args.max_images:
            images = images.select(range(min(args.max_images, len(images))))
        crfs = [int(c) for c in args.video.split(",") if c]
        videos = sources.resolve_clips(data)["heldout"] if crfs else None
        conditions = [c for c in args.conditions.split(",") if c]
        rows = compare(args.runs, conditions, images, args.predictor or None, crfs, videos)
    except (FileNotFoundError, ValueError) as error:
        print(f"jaxrestore.compare: {error}", file=sys.stderr)
        return 1
    print(markdown(rows, args.runs))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(run())
