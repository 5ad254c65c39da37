"""Restore compressed images and video.

    python -m jaxrestore.restore INPUT... --output PATH [--checkpoint RUN] [--quality auto|N]
        [--tile 1024] [--overlap 128] [--dtype float32|bfloat16] [--batch 1] [--format png]
        [--codec h264|ffv1] [--crf 17] [--preset medium] [--max-pixels 120000000]

INPUT: image files (JPEG, PNG, WebP, TIFF, BMP), video files (anything PyAV
decodes: .mp4, .mkv, .mov, .avi, .webm, .mpg, .ts, ...) or folders (every image
and video below them, recursively). One file in: OUTPUT is the output file, its
format taken from the extension (.mp4, .m4v, .mov or .mkv for a video). Several
files or a folder: OUTPUT is a folder; the tree below each input folder is
mirrored and each file keeps its stem; images are saved as lossless PNG unless
`--format` says otherwise, videos keep their container (.mp4 for one we do not
write; .mkv for FFV1).

The model: `--checkpoint` (a training workdir, an export, or the name of a
packaged generator: `ssim`, the default, trained for fidelity with the SSIM
loss, or `gan`, the same network fine-tuned adversarially with a perceptual
loss: sharper texture, lower LPIPS, less PSNR) and, for `--quality auto` on
non-JPEG inputs, `--predictor` (default the packaged quality predictor). A JPEG file's quality
is read from its quantisation tables; a video's is the median of the
predictor's estimates over 16 frames spread through it.

Any size in bounded memory: an image of at most `--tile`² pixels (sides padded
to a multiple of 64) is one tile; a larger one is cut into `--tile`² tiles
whose neighbours share `--overlap` pixels, blended with linear weights over the
middle quarter of that band, so each kept pixel is at least 3/8 of the overlap
from its tile's inner edge — computed as on the whole image when that is the
network's reach or more (about 40 px for 64 channels × 8 blocks; the default
128 gives 48). XLA compiles once per tile shape, not once per image. EXIF
orientation is applied; the ICC profile and EXIF data are kept where the output
format allows (what Pillow can parse of a corrupt EXIF block); grayscale stays
grayscale; palette, CMYK and 1-bit images are restored in RGB or gray, a
palette's transparency becoming an alpha channel; an alpha channel is carried
through untouched. Refused, so that nothing is written at a loss: 16-bit or
float samples (16-bit RGB included, which Pillow would silently cut to 8 bits),
animated images, and any image whose header declares more than `--max-pixels`
(default 120 million: 100-megapixel camera files pass, a few KB of PNG declaring
gigapixels does not), checked before a pixel is decoded.

Video (`jaxrestore.media.transcode`): frames go to the device `--batch` at a time while
the next ones decode and the previous ones encode; every frame keeps its
timestamp and the audio streams are copied packet for packet. `--codec h264`
(libx264 at `--crf`/`--preset`) or `ffv1` (lossless, .mkv). Frames of at most
`--tile`² pixels are restored whole (one compiled shape per video).

Output is written to a temporary name in the same folder and renamed when
complete. A file that cannot be restored (unreadable, truncated, any error while
restoring it) gets a one-line error naming it and nothing is written for it; the
others are still done, a batch ends with the list of the files that failed (and
of the videos restored with frames left out, see `jaxrestore.media.transcode`), and the
exit status is then 1. tests/bad_inputs holds the hostile files this is tested on.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import tqdm
from absl import logging

from jaxrestore import inference
from jaxrestore.errors import reason
from jaxrestore.inference import loader
from jaxrestore.inference.restorer import Tiling
from jaxrestore.media import image as image_io
from jaxrestore.media import transcode, video


def plan(
    inputs: list[Path], output: Path, fmt: str | None, codec: str = "h264"
) -> list[tuple[Path, Path, str]]:
    """(input file, output file, format) for everything to restore; the format of a
    video is "VIDEO"."""
    single = len(inputs) == 1 and not inputs[0].is_dir()
    if single and video.is_video(inputs[0]):
        if output.suffix.lower() not in transcode.OUTPUT_SUFFIXES:
            raise ValueError(
                f"{output}: a video is written to one of {', '.join(transcode.OUTPUT_SUFFIXES)}"
            )
        return [(inputs[0], output, "VIDEO")]
    if single:
        suffix = output.suffix.lower()
        chosen = fmt.upper() if fmt else image_io.FORMATS.get(suffix)
        if chosen is None:
            raise ValueError(
                f"{output}: cannot tell the format from {suffix or 'no extension'}; use "
                f"one of {', '.join(sorted(image_io.FORMATS))} or --format"
            )
        return [(inputs[0], output, chosen)]
    chosen = (fmt or "png").upper()
    suffix = {"JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp", "PNG": ".png"}
    if chosen not in suffix:
        raise ValueError(f"--format {fmt}: expected png, jpeg, webp, tiff or bmp")

    def target(file: Path, folder: Path) -> tuple[Path, Path, str]:
        if not video.is_video(file):
            return file, folder.with_suffix(suffix[chosen]), chosen
        # A video keeps its container where we can write it (.mkv for FFV1).
        kept = file.suffix.lower() if file.suffix.lower() in transcode.OUTPUT_SUFFIXES else ".mp4"
        return file, folder.with_suffix(".mkv" if codec == "ffv1" else kept), "VIDEO"

    jobs = []
    for item in inputs:
        if item.is_dir():
            files = sorted(
                p
                for p in item.rglob("*")
                if p.suffix.lower() in image_io.FORMATS or video.is_video(p)
            )
            for file in files:
                jobs.append(target(file, output / item.name / file.relative_to(item)))
        else:
            jobs.append(target(item, output / item.name))
    return jobs


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jaxrestore.restore", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("inputs", nargs="+", type=Path, help="image/video files or folders")
    parser.add_argument("--output", "-o", type=Path, required=True)
    parser.add_argument(
        "--checkpoint",
        default="ssim",
        help="'ssim' (packaged, fidelity), 'gan' (packaged, perceptual), a workdir or an export",
    )
    parser.add_argument(
        "--predictor",
        default=loader.DEFAULT_PREDICTOR,
        help="'quality' (packaged), a quality-predictor workdir or export",
    )
    parser.add_argument("--quality", default="auto", help="'auto' or a JPEG QF 1–100")
    parser.add_argument("--tile", type=int, default=Tiling.tile)
    parser.add_argument("--overlap", type=int, default=Tiling.overlap)
    parser.add_argument("--batch", type=int, default=Tiling.batch, help="tiles or frames")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--format", default=None, help="png, jpeg, webp, tiff or bmp")
    parser.add_argument("--codec", default="h264", help="video: h264 or ffv1 (lossless, .mkv)")
    parser.add_argument("--crf", type=float, default=transcode.Encoding.crf, help="H.264 CRF")
    parser.add_argument("--preset", default=transcode.Encoding.preset, help="x264 preset")
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=image_io.MAX_PIXELS,
        help="refuse images declaring more pixels, before decoding them",
    )
    args = parser.parse_args(argv)
    logging.set_verbosity(logging.ERROR)
    name = "jaxrestore.restore"
    try:
        tiling = Tiling(args.tile, args.overlap, args.batch)
        encoding = transcode.Encoding(args.codec, args.crf, args.preset)
        for item in args.inputs:
            if not item.exists():
                raise ValueError(f"{item}: no such file or folder")
        jobs = plan(args.inputs, args.output, args.format, encoding.codec)
        if not jobs:
            raise ValueError(f"{', '.join(map(str, args.inputs))}: no images or videos found")
        estimator = None
        if args.quality == "auto" and args.predictor and loader.resolve(args.predictor).exists():
            estimator = inference.QualityEstimator(args.predictor)
        # Tiles (or frames) per second and ETA on a terminal; nothing when piped.
        shown = sys.stderr.isatty()
        bar = tqdm.tqdm(total=0, unit="tile", disable=not shown, leave=False)
        restorer = inference.Restorer(args.checkpoint, estimator, tiling, args.dtype, bar)
    except (ValueError, FileNotFoundError) as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    done = {"image": 0, "video": 0}
    pixels = frames = 0
    video_seconds = 0.0
    failed: list[str] = []  # one line per file not restored
    warned: list[str] = []  # one line per file restored with frames left out

    def warn(message: str) -> None:
        print(f"{name}: {message}", file=sys.stderr)
        warned.append(message)

    for source, target, fmt in jobs:
        try:
            if fmt == "VIDEO":
                began = time.perf_counter()
                quality = restorer.choose_quality(args.quality, path=source).quality
                restorer.progress = None
                try:
                    with tqdm.tqdm(unit="frame", disable=not shown, leave=False) as frame_bar:
                        frames += transcode.restore_video(
                            source,
                            target,
                            functools.partial(restorer.restore_frames, quality=quality),
                            encoding,
                            tiling.batch,
                            frame_bar,
                            warn,
                        )
                finally:
                    restorer.progress = bar
                video_seconds += time.perf_counter() - began
                done["video"] += 1
                continue
            loaded = image_io.load_image(source, args.max_pixels)
            quality = restorer.choose_quality(args.quality, loaded.rgb, source).quality
            restored = restorer.restore_pixels(loaded.rgb, quality)
            image_io.save_image(loaded, restored, target, fmt)
            pixels += loaded.rgb.shape[0] * loaded.rgb.shape[1]
            done["image"] += 1
        except Exception as error:  # noqa: BLE001 - one file's failure must not stop the rest
            # Our errors name the file; anything else (an OS error on the output, an
            # unforeseen decoder failure, out of memory) gets the file's name and its type.
            message = str(error) if isinstance(error, ValueError) else ""
            if not message.startswith(str(source)):
                message = f"{source}: {type(error).__name__}: {reason(error)}"
            print(f"{name}: {message}", file=sys.stderr)
            failed.append(message)
    bar.close()
    seconds = time.perf_counter() - start
    videos = sum(fmt == "VIDEO" for _, _, fmt in jobs)
    parts = []
    if len(jobs) > videos:
        image_seconds = max(seconds - video_seconds, 1e-9)
        parts.append(
            f"{done['image']} of {len(jobs) - videos} image(s), {pixels / 1e6:.1f} MP "
            f"({pixels / 1e6 / image_seconds:.2f} MP/s)"
        )
    if videos:
        parts.append(
            f"{done['video']} of {videos} video(s), {frames} frames "
            f"({frames / max(video_seconds, 1e-9):.2f} frames/s)"
        )
    print(f"{name}: restored {' and '.join(parts)} in {seconds:.1f} s", file=sys.stderr)
    if len(jobs) > 1 and (failed or warned):
        # The same lines again, together at the end, so none is lost in a long batch.
        for lines, what in ((failed, "failed"), (warned, "restored with frames left out")):
            if lines:
                print(f"{name}: {len(lines)} of {len(jobs)} files {what}:", file=sys.stderr)
                for line in lines:
                    print(f"  {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run())
