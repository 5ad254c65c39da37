"""The papers' evaluation protocol as one command.

    python -m jaxrestore.evaluate [--images DIR|detection] [--qualities 10,20,30,40] --out OUT
        [--checkpoint RUN] [--codec jpeg|h264|mpeg2] [--video FILE ...]
        [--video-codec h264|mpeg2] [--video-strength 35] [--video-frames 60]
        [--no-task] [--no-brisque] [--max-images N] [--crops 4]

For every image and quality: compress it with the codec (JPEG: libjpeg-turbo,
4:2:0, byte-identical to Pillow's default writer; H.264 CRF / MPEG-2 quantiser
for `--codec h264|mpeg2`, one intra frame), restore it through the restore
command's tiled path (`jaxrestore.inference.Restorer`), and score the
compressed and the restored image against the original:

- fidelity and perceptual, on the device (`jaxrestore.metrics`): PSNR (RGB and
  BT.601 Y), SSIM (RGB and Y, Gaussian σ = 1.5), PSNR-B (Y), LPIPS (AlexNet);
- no-reference: BRISQUE (the `brisque` package, lower is better) with the
  `eval` extra;
- task-based, with the `eval` extra (`jaxrestore.evaluation.tasks`): an SSD MobileNet
  v2 COCO detector's mAP@0.5 and recall against its detections on the
  original, an ImageNet classifier's top-1 agreement with the original, and the
  share of the original's faces still found.

`--video FILE` (a video file PyAV reads, or a `.npy` clip [T, H, W, 3]; default
none) compresses the clip as one stream (inter frames), restores it frame by
frame and reports per-frame PSNR / SSIM / LPIPS and a temporal-consistency
figure: the mean absolute difference between the consecutive-frame
differences of a version and those of the original (0 = the original's motion
exactly; flicker raises it).

Quality given to a conditioned generator: as the restore command would find it
— a JPEG's QF (what its quantisation tables give), otherwise the quality
predictor's estimate (`--predictor`; for a clip the median over 16 frames).

`--images detection` evaluates on the object-rich detection set
(`jaxrestore.data.detection_set`, built first when missing or out of date).

OUT receives report.json, report.md, gain_vs_quality.png, task_vs_quality.png,
crops.png and, with --video, video_frames.png. The run is deterministic for a
given checkpoint and image set. The protocol is `jaxrestore.evaluation.protocol`,
report.md and the figures `jaxrestore.evaluation.report`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from absl import logging

from jaxrestore.data import detection_set
from jaxrestore.evaluation import protocol
from jaxrestore.evaluation import report as report_lib
from jaxrestore.inference import loader
from jaxrestore.inference.restorer import DEFAULT_OVERLAP, Tiling

DETECTION = "detection"  # --images value naming the detection set


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jaxrestore.evaluate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--images",
        default="",
        help="folder of images ('' = held-out photos, 'detection' = the detection set)",
    )
    parser.add_argument("--qualities", default="10,20,30,40")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--checkpoint", default="ssim", help="'ssim', 'gan' (packaged), a workdir or an export"
    )
    parser.add_argument("--predictor", default=str(loader.DEFAULT_PREDICTOR))
    parser.add_argument("--codec", default="jpeg", help="jpeg, h264 or mpeg2")
    parser.add_argument(
        "--video", nargs="*", type=Path, default=[], help="video files or .npy clips"
    )
    parser.add_argument("--video-codec", default="h264")
    parser.add_argument(
        "--video-strength", type=int, default=35, help="H.264 CRF or MPEG-2 quantiser"
    )
    parser.add_argument("--video-frames", type=int, default=60)
    parser.add_argument("--max-images", type=int, default=0)
    parser.add_argument("--crops", type=int, default=4)
    parser.add_argument("--no-task", action="store_true")
    parser.add_argument("--no-brisque", action="store_true")
    parser.add_argument("--tile", type=int, default=Tiling.tile)
    parser.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP)
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    args = parser.parse_args(argv)
    logging.set_verbosity(logging.ERROR)
    name = "jaxrestore.evaluate"
    try:
        settings = protocol.Settings(
            qualities=[int(q) for q in args.qualities.split(",") if q],
            codec=args.codec,
            tile=args.tile,
            overlap=args.overlap,
            dtype=args.dtype,
            task=not args.no_task,
            brisque=not args.no_brisque,
            crops=args.crops,
            video_codec=args.video_codec,
            video_strength=args.video_strength,
            video_frames=args.video_frames,
        )
        folder = args.images
        if folder == DETECTION:
            folder = detection_set.ensure()
        images = protocol.image_set(folder, limit=args.max_images)
        for clip in args.video:
            if not clip.exists():
                raise ValueError(f"{clip}: no such file")
        evaluator = protocol.Evaluator(loader.resolve(args.checkpoint), args.predictor, settings)
        report, extras = protocol.evaluate(evaluator, images, args.video)
    except (ValueError, FileNotFoundError, detection_set.BuildError) as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    report["plots"] = report_lib.plots(report, extras, args.out, settings.crops)
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    (args.out / "report.md").write_text(report_lib.markdown(report))
    print(report_lib.markdown(report))
    print(
        f"{name}: {len(report['images'])} images in {report['settings']['seconds']} s "
        f"({report['settings']['seconds_per_image']} s per image); report in {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(run())
