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

Video (`jaxrestore.video`): frames go to the device `--batch` at a time while
the next ones decode and the previous ones encode; every frame keeps its
timestamp and the audio streams are copied packet for packet. `--codec h264`
(libx264 at `--crf`/`--preset`) or `ffv1` (lossless, .mkv). Frames of at most
`--tile`² pixels are restored whole (one compiled shape per video).

Output is written to a temporary name in the same folder and renamed when
complete. A file that cannot be restored (unreadable, truncated, any error while
restoring it) gets a one-line error naming it and nothing is written for it; the
others are still done, a batch ends with the list of the files that failed (and
of the videos restored with frames left out, see `jaxrestore.video`), and the
exit status is then 1. tests/bad_inputs holds the hostile files this is tested on.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from absl import logging
from PIL import Image, ImageOps

from jaxrestore import inference, video
from jaxrestore.data import sources

WEIGHTS = Path(__file__).parent / "weights"
# The packaged generators, by the name `--checkpoint` accepts.
PACKAGED = {"ssim": WEIGHTS / "ssim_universal", "gan": WEIGHTS / "gan_universal"}
DEFAULT_CHECKPOINT = PACKAGED["ssim"]
DEFAULT_PREDICTOR = WEIGHTS / "quality"
PAD_MULTIPLE = 64
FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}


def resolve_checkpoint(value: str) -> str:
    """A packaged generator's name (`ssim`, `gan`) -> its path; anything else as given."""
    return str(PACKAGED.get(value, value))


def edge_pad(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """[N, h, w, C] edge-padded at the bottom and right to [N, height, width, C]."""
    pad = ((0, 0), (0, height - images.shape[1]), (0, width - images.shape[2]), (0, 0))
    return np.pad(images, pad, mode="edge") if any(sum(p) for p in pad) else images


# A file that cannot be restored; the message is one line naming it and saying why.
InputError = sources.ImageError


@dataclasses.dataclass
class Tiling:
    tile: int = 1024
    overlap: int = 128
    batch: int = 1  # tiles (images) or frames (video) per device call; 4–8 on a GPU

    def __post_init__(self):
        if self.tile % PAD_MULTIPLE or self.tile < PAD_MULTIPLE:
            raise ValueError(
                f"--tile must be a positive multiple of {PAD_MULTIPLE}, got {self.tile}"
            )
        if not 0 <= self.overlap <= self.tile // 2 or self.overlap % 8:
            raise ValueError(
                f"--overlap must be a multiple of 8 in 0..{self.tile // 2}, got {self.overlap}"
            )
        if self.batch < 1:
            raise ValueError(f"--batch must be at least 1, got {self.batch}")


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one axis: stride tile − overlap, the last flush with the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, tile - overlap)) + [length - tile]
    return sorted(set(starts))


def blend_weights(length: int, tile: int, start: int, overlap: int) -> np.ndarray:
    """1-D weights of one tile: next to an inner edge, 0 over a margin of 3/8 of the
    overlap, a linear ramp over its middle quarter, 1 beyond (and at the image's own
    edges). Neighbours' ramps cover the same pixels and sum to 1 there."""
    weights = np.ones(tile, np.float32)
    margin = 3 * overlap // 8
    width = overlap - 2 * margin
    if width == 0:
        return weights
    ramp = (np.arange(width, dtype=np.float32) + 0.5) / width
    if start > 0:
        weights[:margin] = 0.0
        weights[margin : margin + width] = ramp
    if start + tile < length:
        weights[tile - margin :] = 0.0
        weights[tile - margin - width : tile - margin] *= ramp[::-1]
    return weights


class ImageRestorer:
    """A generator (flax module + params) applied tile by tile; `traces` counts the
    XLA compilations."""

    def __init__(self, model, params, tiling: Tiling, dtype: str = "float32", progress=None):
        self.params = params
        self.tiling = tiling
        self.traces = 0
        self.progress = progress  # a tqdm bar counting tiles, or None
        model = model.clone(dtype=jnp.dtype(dtype))

        def apply(params, tiles, quality):
            self.traces += 1  # runs once per traced shape
            x = tiles.astype(jnp.float32) / 255.0
            restored = model.apply({"params": params}, x, quality).astype(jnp.float32)
            return jnp.clip(restored, 0.0, 1.0) * 255.0  # rounded after blending

        self._apply = jax.jit(apply)
        # Whole frames need no blending: rounded on the device, a quarter of the bytes
        # come back to the host.
        self._apply_uint8 = jax.jit(
            lambda params, tiles, quality: jnp.round(apply(params, tiles, quality)).astype(
                jnp.uint8
            )
        )

    def _run(self, tiles: np.ndarray, quality: float, apply=None) -> np.ndarray:
        apply = apply or self._apply
        batch = self.tiling.batch
        out = []
        for start in range(0, len(tiles), batch):
            chunk = tiles[start : start + batch]
            count = len(chunk)
            if count < batch:  # one batch shape: pad with copies
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - count, axis=0)])
            q = jnp.full((batch,), quality, jnp.float32)
            out.append(np.asarray(apply(self.params, jnp.asarray(chunk), q))[:count])
        return np.concatenate(out)

    def _geometry(self, height: int, width: int, whole: bool) -> tuple[int, int, int, int]:
        """(tile_h, tile_w, full_h, full_w) for an image: `full` is the padded canvas."""
        tile = self.tiling.tile
        # Odd sides get one edge-padded row/column, as the generator itself does, so
        # every tile starts on the stride-2 grid of the whole image.
        even_h, even_w = height + height % 2, width + width % 2
        if whole and even_h * even_w <= tile * tile:
            return even_h, even_w, even_h, even_w  # one shape for all frames of a video
        # An image of at most tile² pixels (sides padded to a multiple of 64) is one
        # tile; a larger one is cut into tile² squares (a side under one tile padded).
        pad_h, pad_w = (-(-side // PAD_MULTIPLE) * PAD_MULTIPLE for side in (even_h, even_w))
        if pad_h * pad_w <= tile * tile:
            return pad_h, pad_w, pad_h, pad_w
        tile_h, tile_w = min(tile, pad_h), min(tile, pad_w)
        return tile_h, tile_w, max(even_h, tile_h), max(even_w, tile_w)

    def restore_float(self, rgb: np.ndarray, quality: float) -> np.ndarray:
        """uint8 RGB [H, W, 3] -> restored float32 in [0, 255], before rounding."""
        return self.restore_many_float(rgb[None], quality)[0]

    def restore_many_float(
        self, images: np.ndarray, quality: float, whole: bool = False
    ) -> np.ndarray:
        """uint8 RGB [N, H, W, 3] -> restored float32 [N, H, W, 3] in [0, 255]. Tiles
        of all N images are batched together; with `whole`, an image of at most
        tile² pixels is one tile of its exact (even) size, as suits the frames of a
        video, which all share one shape."""
        count, height, width = images.shape[:3]
        overlap = self.tiling.overlap
        tile_h, tile_w, full_h, full_w = self._geometry(height, width, whole)
        padded = edge_pad(images, full_h, full_w)
        positions = [
            (i, y, x)
            for i in range(count)
            for y in tile_starts(full_h, tile_h, overlap)
            for x in tile_starts(full_w, tile_w, overlap)
        ]
        total = np.zeros((count, full_h, full_w, 3), np.float32)
        weight = np.zeros((count, full_h, full_w, 1), np.float32)
        if self.progress is not None:
            self.progress.total = (self.progress.total or 0) + len(positions)
            self.progress.refresh()
        # A batch of tiles at a time: the host holds the images, the sums and one batch.
        for first in range(0, len(positions), self.tiling.batch):
            group = positions[first : first + self.tiling.batch]
            tiles = np.stack([padded[i, y : y + tile_h, x : x + tile_w] for i, y, x in group])
            for (i, y, x), result in zip(group, self._run(tiles, quality)):
                w = np.outer(
                    blend_weights(full_h, tile_h, y, overlap),
                    blend_weights(full_w, tile_w, x, overlap),
                )[..., None]
                total[i, y : y + tile_h, x : x + tile_w] += result * w
                weight[i, y : y + tile_h, x : x + tile_w] += w
            if self.progress is not None:
                self.progress.update(len(group))
        return (total / weight)[:, :height, :width]

    def restore_frames(self, frames: np.ndarray, quality: float) -> np.ndarray:
        """uint8 RGB video frames [N, H, W, 3] -> restored uint8, whole frames at a time
        when they fit one tile."""
        count, height, width = frames.shape[:3]
        tile_h, tile_w, full_h, full_w = self._geometry(height, width, whole=True)
        if (tile_h, tile_w) != (full_h, full_w):  # frames larger than a tile
            restored = self.restore_many_float(frames, quality, whole=True)
            return np.clip(np.round(restored), 0, 255).astype(np.uint8)
        padded = edge_pad(frames, full_h, full_w)
        if self.progress is not None:
            self.progress.total = (self.progress.total or 0) + count
            self.progress.refresh()
        restored = self._run(padded, quality, self._apply_uint8)[:, :height, :width]
        if self.progress is not None:
            self.progress.update(count)
        return restored

    def restore(self, rgb: np.ndarray, quality: float) -> np.ndarray:
        """uint8 RGB [H, W, 3] -> restored uint8 RGB, in tiles."""
        return np.clip(np.round(self.restore_float(rgb, quality)), 0, 255).astype(np.uint8)


@dataclasses.dataclass
class Loaded:
    rgb: np.ndarray  # uint8 [H, W, 3]
    alpha: np.ndarray | None  # uint8 [H, W] or None
    grayscale: bool
    icc_profile: bytes | None
    exif: bytes | None


def load_image(path: Path, max_pixels: int = sources.MAX_PIXELS) -> Loaded:
    """Decode an input file, EXIF-oriented, with what the output should carry over.
    InputError (one line naming the file) for what cannot be restored whole:
    undecodable, over `max_pixels` as declared, over 8 bits, animated, under 8x8."""
    with sources.open_image(path, max_pixels) as image:
        if getattr(image, "is_animated", False):  # a still output would lose frames
            raise InputError(f"{path}: an animated image; only still images are restored")
        image.load()
        icc = image.info.get("icc_profile")
        exif = image.getexif()  # what Pillow could parse of it, when it is corrupt
        image = ImageOps.exif_transpose(image)
        if exif and 0x0112 in exif:
            del exif[0x0112]  # the pixels are now upright
        exif_bytes = exif.tobytes() if exif else None
        grayscale = image.mode in ("L", "LA", "1")
        alpha = None
        if image.mode in ("RGBA", "LA", "PA") or (
            image.mode == "P" and "transparency" in image.info
        ):
            image = image.convert("RGBA" if not grayscale else "LA")
            alpha = np.asarray(image)[..., -1].copy()
        rgb = np.asarray(image.convert("RGB"))
    if min(rgb.shape[:2]) < 8:
        raise InputError(f"{path}: {rgb.shape[1]}x{rgb.shape[0]} is too small (at least 8x8)")
    return Loaded(rgb, alpha, grayscale, icc, exif_bytes)


def save_image(loaded: Loaded, restored: np.ndarray, output: Path, fmt: str) -> None:
    """Write atomically: a temporary name in the same folder, renamed when complete."""
    if loaded.grayscale:
        # Back to one channel: the luma of the restored RGB.
        image = Image.fromarray(restored).convert("L")
        if loaded.alpha is not None:
            image = Image.merge("LA", (image, Image.fromarray(loaded.alpha)))
    else:
        image = Image.fromarray(restored)
        if loaded.alpha is not None:
            image = Image.merge("RGBA", (*image.split(), Image.fromarray(loaded.alpha)))
    if fmt in ("JPEG", "BMP") and image.mode in ("RGBA", "LA"):
        image = image.convert("RGB" if image.mode == "RGBA" else "L")  # no alpha there
    options: dict = {}
    if loaded.icc_profile and fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        options["icc_profile"] = loaded.icc_profile
    if loaded.exif and fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        options["exif"] = loaded.exif
    if fmt == "JPEG":
        options["quality"] = 95
    if fmt == "WEBP":
        options["lossless"] = True
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.partial-{os.getpid()}")
    try:
        image.save(temporary, fmt, **options)
        os.replace(temporary, output)
    finally:
        temporary.unlink(missing_ok=True)


def plan(
    inputs: list[Path], output: Path, fmt: str | None, codec: str = "h264"
) -> list[tuple[Path, Path, str]]:
    """(input file, output file, format) for everything to restore; the format of a
    video is "VIDEO"."""
    single = len(inputs) == 1 and not inputs[0].is_dir()
    if single and video.is_video(inputs[0]):
        if output.suffix.lower() not in video.OUTPUT_SUFFIXES:
            raise ValueError(
                f"{output}: a video is written to one of {', '.join(video.OUTPUT_SUFFIXES)}"
            )
        return [(inputs[0], output, "VIDEO")]
    if single:
        suffix = output.suffix.lower()
        chosen = fmt.upper() if fmt else FORMATS.get(suffix)
        if chosen is None:
            raise ValueError(
                f"{output}: cannot tell the format from {suffix or 'no extension'}; use "
                f"one of {', '.join(sorted(FORMATS))} or --format"
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
        kept = file.suffix.lower() if file.suffix.lower() in video.OUTPUT_SUFFIXES else ".mp4"
        return file, folder.with_suffix(".mkv" if codec == "ffv1" else kept), "VIDEO"

    jobs = []
    for item in inputs:
        if item.is_dir():
            files = sorted(
                p for p in item.rglob("*") if p.suffix.lower() in FORMATS or video.is_video(p)
            )
            for file in files:
                jobs.append(target(file, output / item.name / file.relative_to(item)))
        else:
            jobs.append(target(item, output / item.name))
    return jobs


def video_quality(restorer: inference.Restorer, quality: str, path: Path) -> float:
    """The QF a conditioned generator gets for a whole video: the given number, or the
    median of the predictor's estimates over frames spread through it."""
    if quality != "auto":
        return restorer.quality_for(np.zeros((8, 8, 3), np.uint8), quality)[0]
    if restorer.estimator is None:
        raise ValueError(f"{path}: --quality auto on a video needs the quality predictor")
    return float(inference.estimate_file(path, restorer.estimator)["quality"])


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
    parser.add_argument("--predictor", default=str(DEFAULT_PREDICTOR))
    parser.add_argument("--quality", default="auto", help="'auto' or a JPEG QF 1–100")
    parser.add_argument("--tile", type=int, default=Tiling.tile)
    parser.add_argument("--overlap", type=int, default=Tiling.overlap)
    parser.add_argument("--batch", type=int, default=Tiling.batch, help="tiles or frames")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--format", default=None, help="png, jpeg, webp, tiff or bmp")
    parser.add_argument("--codec", default="h264", help="video: h264 or ffv1 (lossless, .mkv)")
    parser.add_argument("--crf", type=float, default=video.Encoding.crf, help="H.264 CRF")
    parser.add_argument("--preset", default=video.Encoding.preset, help="x264 preset")
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=sources.MAX_PIXELS,
        help="refuse images declaring more pixels, before decoding them",
    )
    args = parser.parse_args(argv)
    logging.set_verbosity(logging.ERROR)
    name = "jaxrestore.restore"
    try:
        tiling = Tiling(args.tile, args.overlap, args.batch)
        encoding = video.Encoding(args.codec, args.crf, args.preset)
        for item in args.inputs:
            if not item.exists():
                raise ValueError(f"{item}: no such file or folder")
        jobs = plan(args.inputs, args.output, args.format, encoding.codec)
        if not jobs:
            raise ValueError(f"{', '.join(map(str, args.inputs))}: no images or videos found")
        estimator = None
        if args.quality == "auto" and args.predictor and Path(args.predictor).exists():
            estimator = inference.QualityEstimator(args.predictor)
        restorer = inference.Restorer(resolve_checkpoint(args.checkpoint), estimator)
        # Tiles (or frames) per second and ETA on a terminal; nothing when piped.
        shown = sys.stderr.isatty()
        bar = tqdm.tqdm(total=0, unit="tile", disable=not shown, leave=False)
        tiled = ImageRestorer(restorer.model, restorer.params, tiling, args.dtype, bar)
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
                quality = 50.0
                if restorer.conditioned:
                    quality = video_quality(restorer, args.quality, source)
                tiled.progress = None
                try:
                    with tqdm.tqdm(unit="frame", disable=not shown, leave=False) as frame_bar:
                        frames += video.restore_video(
                            source,
                            target,
                            functools.partial(tiled.restore_frames, quality=quality),
                            encoding,
                            tiling.batch,
                            frame_bar,
                            warn,
                        )
                finally:
                    tiled.progress = bar
                video_seconds += time.perf_counter() - began
                done["video"] += 1
                continue
            loaded = load_image(source, args.max_pixels)
            quality = 50.0
            if restorer.conditioned:
                quality, _ = restorer.quality_for(loaded.rgb, args.quality, source)
            restored = tiled.restore(loaded.rgb, quality)
            save_image(loaded, restored, target, fmt)
            pixels += loaded.rgb.shape[0] * loaded.rgb.shape[1]
            done["image"] += 1
        except Exception as error:  # noqa: BLE001 - one file's failure must not stop the rest
            # Our errors name the file; anything else (an OS error on the output, an
            # unforeseen decoder failure, out of memory) gets the file's name and its type.
            message = str(error) if isinstance(error, ValueError) else ""
            if not message.startswith(str(source)):
                message = f"{source}: {type(error).__name__}: {sources.reason(error)}"
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
