"""A generator applied to whole images and video frames, in tiles when they are large.

An image of at most `tile`² pixels (sides padded to a multiple of 64) is one
tile; a larger one is cut into `tile`² tiles whose neighbours share `overlap`
pixels, blended with linear weights over the middle quarter of that band, so
each kept pixel is at least 3/8 of the overlap from its tile's inner edge —
computed as on the whole image when that is the network's reach or more (about
40 px for 64 channels × 8 blocks; the default 128 gives 48). The tiles are cut,
blended and rounded to uint8 on the device: an image goes up once and comes back
once (`Restorer.restore_many`). XLA compiles the generator once per tile shape,
not once per image. Video frames of at most `tile`² pixels are restored whole
(one compiled shape per video).

    restorer = Restorer.from_pretrained("ssim")       # or "gan", a workdir, an export
    restored = restorer.restore(pixels, quality="auto")  # a uint8 array, any size
    result = restorer.restore_file("photo.jpg", "photo.png")
    print(result.describe())                           # QF 23 (from its quantisation tables)
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from PIL import Image

from jaxrestore.inference import loader
from jaxrestore.inference.quality import (
    VIDEO_FRAMES_SAMPLED,
    Choice,
    QualityEstimator,
    choose,
)
from jaxrestore.media import batch, transcode
from jaxrestore.media import image as image_io

PAD_MULTIPLE = 64


def edge_pad(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """[N, h, w, C] edge-padded at the bottom and right to [N, height, width, C]."""
    pad = ((0, 0), (0, height - images.shape[1]), (0, width - images.shape[2]), (0, 0))
    return np.pad(images, pad, mode="edge") if any(sum(p) for p in pad) else images


DEFAULT_OVERLAP = 128


def default_overlap(tile: int) -> int:
    """The overlap when none is given: 128, or half a smaller tile (to a multiple of 8)."""
    return min(DEFAULT_OVERLAP, tile // 2 // 8 * 8)


@dataclasses.dataclass
class Tiling:
    tile: int = 1024
    overlap: int | None = None  # None: `default_overlap(tile)`, 128 for the default tile
    batch: int = 1  # tiles (images) or frames (video) per device call; 4–8 on a GPU

    def __post_init__(self):
        if self.tile % PAD_MULTIPLE or self.tile < PAD_MULTIPLE:
            raise ValueError(
                f"--tile must be a positive multiple of {PAD_MULTIPLE}, got {self.tile}"
            )
        if self.overlap is None:
            self.overlap = default_overlap(self.tile)
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


# The sides of the blended sums on the device are rounded up to a multiple of this,
# so that images of nearby sizes share their compiled summing and finishing.
SUM_MULTIPLE = 128


@functools.lru_cache(maxsize=64)
def axis_weights(
    length: int, tile: int, overlap: int, padded: int
) -> tuple[np.ndarray, np.ndarray]:
    """One axis of an image `length` long in sums `padded` long: each tile's
    `blend_weights` [tiles, tile] and their sum [padded] (1 beyond `length`, where no
    tile reaches). The tiles' grid is the product of its axes, so a pixel's total
    weight is the outer product of the two axes' sums."""
    starts = tile_starts(length, tile, overlap)
    weights = np.stack([blend_weights(length, tile, start, overlap) for start in starts])
    total = np.ones(padded, np.float32)
    total[:length] = 0.0
    for start, weight in zip(starts, weights):
        total[start : start + tile] += weight
    return weights, total


@functools.partial(jax.jit, static_argnames=("height", "width"))
def cut_tiles(canvas: jax.Array, corners: jax.Array, height: int, width: int) -> jax.Array:
    """[N, H, W, C] canvas, [B, 3] (image, top, left) corners -> [B, height, width, C]
    tiles. The corners are traced: one compilation serves every position."""

    def cut(corner):
        start = (corner[0], corner[1], corner[2], 0)
        return jax.lax.dynamic_slice(canvas, start, (1, height, width, canvas.shape[3]))[0]

    return jax.vmap(cut)(corners)


@functools.partial(jax.jit, donate_argnums=0)
def add_tiles(
    total: jax.Array, tiles: jax.Array, corners: jax.Array, rows: jax.Array, columns: jax.Array
) -> jax.Array:
    """`total` [N, H, W, C] plus each of the B `tiles` [B, h, w, C] weighted by
    outer(rows[b], columns[b]) at its corner, in place (`total` is donated). One tile
    after another: neighbours in one batch overlap."""
    _, height, width, channels = tiles.shape

    def add(b, total):
        start = (corners[b, 0], corners[b, 1], corners[b, 2], 0)
        weight = (rows[b][:, None] * columns[b][None, :])[..., None]
        region = jax.lax.dynamic_slice(total, start, (1, height, width, channels))
        return jax.lax.dynamic_update_slice(total, region + tiles[b][None] * weight, start)

    return jax.lax.fori_loop(0, tiles.shape[0], add, total)


@functools.partial(jax.jit, static_argnames="rounded")
def finish_tiles(total: jax.Array, rows: jax.Array, columns: jax.Array, rounded: bool) -> jax.Array:
    """The blended canvas: `total` [N, H, W, C] over the weights' sum (the outer product
    of the axes' sums `rows` [H] and `columns` [W]), rounded to uint8 when `rounded`
    (float32 in [0, 255] otherwise)."""
    restored = total / (rows[:, None] * columns[None, :])[None, ..., None]
    if not rounded:
        return restored
    return jnp.clip(jnp.round(restored), 0, 255).astype(jnp.uint8)


class Restorer:
    """A generator applied to images and video frames, tile by tile.

    `model`: a packaged name ('ssim', 'gan'), a training workdir, an export, or a
    `loader.Model` (`Model(module, params)` for a network built in code);
    `estimator`: the quality predictor for `quality='auto'` on inputs that are not
    JPEG files (see `quality.choose`). `traces` counts the generator's XLA
    compilations (one per tile or frame shape)."""

    def __init__(
        self,
        model: loader.Model | str | Path = loader.DEFAULT_GENERATOR,
        estimator: QualityEstimator | None = None,
        tiling: Tiling | None = None,
        dtype: str = "float32",
        progress=None,
    ):
        self.model = model if isinstance(model, loader.Model) else loader.load(model, "generator")
        self.params = self.model.params
        self.estimator = estimator
        self.tiling = tiling or Tiling()
        self.traces = 0
        self.progress = progress  # a tqdm bar counting tiles, or None
        module = self.model.module.clone(dtype=jnp.dtype(dtype))

        def apply(params, tiles, quality):
            self.traces += 1  # runs once per traced shape
            x = tiles.astype(jnp.float32) / 255.0
            restored = module.apply({"params": params}, x, quality).astype(jnp.float32)
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
        return self.restore_many(rgb[None], quality, rounded=False)[0]

    def restore_pixels(self, rgb: np.ndarray, quality: float) -> np.ndarray:
        """uint8 RGB [H, W, 3] restored at QF `quality` -> uint8 RGB, in tiles."""
        return self.restore_many(rgb[None], quality)[0]

    def restore_frames(self, frames: np.ndarray, quality: float) -> np.ndarray:
        """uint8 RGB video frames [N, H, W, 3] -> restored uint8, whole frames at a time
        when they fit one tile."""
        return self.restore_many(frames, quality, whole=True)

    def restore_many(
        self, images: np.ndarray, quality: float, whole: bool = False, rounded: bool = True
    ) -> np.ndarray:
        """uint8 RGB [N, H, W, 3] -> restored uint8 [N, H, W, 3] (float32 in [0, 255]
        unless `rounded`). Tiles of all N images are batched together; with `whole`,
        an image of at most tile² pixels is one tile of its exact (even) size, as suits
        the frames of a video, which all share one shape.

        Tiled images stay on the device from the upload of their (edge-padded) pixels
        to the rounded result: tiles are cut there (`cut_tiles`), restored a batch at
        a time by the generator, weighted and summed in place (`add_tiles`), divided
        by the weights' sum and rounded (`finish_tiles`); only uint8 comes back. The
        generator is compiled once per tile shape, apart from the small functions
        around it, which are compiled per image size (cutting) or per size class
        (the sums: sides rounded up to SUM_MULTIPLE, a video's frames to whole
        batches): on a 2-core CPU about 0.1 s for a new size and 0.5 s for a new
        class, against 0.5 s (CPU) to seconds (GPU) for the generator, which a
        fused step would compile again for every canvas. Separate launches cost tens
        of microseconds a batch on a GPU."""
        count, height, width = images.shape[:3]
        overlap = self.tiling.overlap
        tile_h, tile_w, full_h, full_w = self._geometry(height, width, whole)
        padded = edge_pad(images, full_h, full_w)
        if (tile_h, tile_w) == (full_h, full_w):  # one tile an image: nothing to blend
            self._count(count)
            restored = self._run(padded, quality, self._apply_uint8 if rounded else self._apply)
            self._done(count)
            return restored[:, :height, :width]
        sum_h, sum_w = (-(-side // SUM_MULTIPLE) * SUM_MULTIPLE for side in (full_h, full_w))
        frames = -(-count // self.tiling.batch) * self.tiling.batch if whole else count
        row_weights, row_sum = axis_weights(full_h, tile_h, overlap, sum_h)
        column_weights, column_sum = axis_weights(full_w, tile_w, overlap, sum_w)
        row_starts = tile_starts(full_h, tile_h, overlap)
        column_starts = tile_starts(full_w, tile_w, overlap)
        tiles = [
            (i, r, c)
            for i in range(count)
            for r in range(len(row_starts))
            for c in range(len(column_starts))
        ]
        self._count(len(tiles))
        canvas = jax.device_put(padded)
        total = jnp.zeros((frames, sum_h, sum_w, 3), jnp.float32)
        batch = self.tiling.batch
        q = jnp.full((batch,), quality, jnp.float32)
        previous = None
        for first in range(0, len(tiles), batch):
            group = tiles[first : first + batch]
            filled = group + group[-1:] * (batch - len(group))  # one batch shape
            corners = jax.device_put(
                np.array([(i, row_starts[r], column_starts[c]) for i, r, c in filled], np.int32)
            )  # up once for cutting and summing
            rows = row_weights[[r for _, r, _ in filled]]
            columns = column_weights[[c for _, _, c in filled]]
            rows[len(group) :] = 0.0  # the filling copies add nothing
            restored = self._apply(self.params, cut_tiles(canvas, corners, tile_h, tile_w), q)
            total = add_tiles(total, restored, corners, rows, columns)
            # One batch in flight ahead of the host: the device never waits for it, the
            # progress bar counts finished tiles and queued buffers stay bounded.
            if previous is not None:
                previous[0].block_until_ready()
                self._done(previous[1])
            previous = restored, len(group)
        restored = np.asarray(finish_tiles(total, row_sum, column_sum, rounded))
        self._done(previous[1])
        # A copy: contiguous for the writers and writable (JAX's host view is not).
        return np.array(restored[:count, :height, :width])

    def _count(self, tiles: int) -> None:
        if self.progress is not None:
            self.progress.total = (self.progress.total or 0) + tiles
            self.progress.refresh()

    def _done(self, tiles: int) -> None:
        if self.progress is not None:
            self.progress.update(tiles)

    @property
    def conditioned(self) -> bool:
        return bool(getattr(self.model.module, "conditioned", False))

    def choose_quality(
        self,
        quality: str | float = "auto",
        image: np.ndarray | None = None,
        path: str | Path | None = None,
        frames: np.ndarray | None = None,
    ) -> Choice:
        """The QF this generator gets for an input (`quality.choose`)."""
        return choose(quality, self.conditioned, self.estimator, image, path, frames)

    @classmethod
    def from_pretrained(
        cls,
        model: str | Path = loader.DEFAULT_GENERATOR,
        predictor: str | Path | None = loader.DEFAULT_PREDICTOR,
        tile: int = 1024,
        overlap: int | None = None,
        batch: int = 1,
        dtype: str = "float32",
    ) -> Restorer:
        """A restorer of a packaged generator ('ssim': fidelity, 'gan': perceptual), a
        training workdir or an export, with the quality predictor (packaged by default)
        for `quality='auto'` on inputs that are not JPEG files; `predictor=None` goes
        without (then 'auto' works only on JPEG files). Large images go through in
        `tile`² tiles (bounded memory; see `Tiling`)."""
        tiling = Tiling(tile, overlap, batch)  # checked before anything loads
        generator = loader.load(model, "generator")
        estimator = None
        if predictor is not None and generator.conditioned:
            estimator = QualityEstimator(predictor)
        return cls(generator, estimator, tiling, dtype)

    def restore(
        self, image: np.ndarray, quality: str | float = "auto", path: str | Path | None = None
    ) -> np.ndarray:
        """Restore a uint8 image array: RGB [H, W, 3], gray [H, W] or [H, W, 1], or
        either with alpha ([H, W, 4], [H, W, 2]), in the same layout (gray as the luma
        of the restored RGB, alpha untouched). `quality`: a JPEG QF, or 'auto' (the
        predictor's estimate from the pixels, or the quantisation tables of the JPEG
        file `path` when given). Any size, in tiles."""
        array = np.asarray(image)
        rgb = image_io.as_rgb8(array, str(path or "image"))
        chosen = self.choose_quality(quality, rgb, path)
        restored = self.restore_pixels(rgb, chosen.quality)
        channels = 1 if array.ndim == 2 else array.shape[-1]
        if channels in (1, 2):
            gray = np.asarray(Image.fromarray(restored).convert("L"))
            restored = gray if array.ndim == 2 else gray[..., None]
        if channels in (2, 4):
            restored = np.concatenate([restored, array[..., -1:]], axis=-1)
        return restored

    def restore_file(
        self,
        source: str | Path,
        target: str | Path,
        quality: str | float = "auto",
        *,
        format: str | None = None,
        overwrite: bool = False,
        max_pixels: int = image_io.MAX_PIXELS,
        encoding: transcode.Encoding | None = None,
    ) -> FileResult:
        """Restore an image or video file into `target` as the restore command does
        (a file, or an existing folder to write `<stem>.png` into): EXIF orientation,
        ICC profile, EXIF, grayscale and alpha kept; a video's audio and timestamps
        kept. Never replaces `source`; replaces an existing `target` only with
        `overwrite`. ValueError (one line naming the file) when it cannot be done."""
        if not Path(source).is_file():
            raise ValueError(f"{source}: not a file (restore_file takes one image or video)")
        encoding = encoding or transcode.Encoding()
        existing = "overwrite" if overwrite else "refuse"
        plan = batch.plan([Path(source)], target, format, encoding.codec, existing)
        return self.restore_job(
            plan.jobs[0], quality, overwrite=overwrite, max_pixels=max_pixels, encoding=encoding
        )

    def restore_job(
        self,
        job: batch.Job,
        quality: str | float = "auto",
        *,
        overwrite: bool = False,
        max_pixels: int = image_io.MAX_PIXELS,
        encoding: transcode.Encoding | None = None,
        progress=None,
        warn: Callable[[str], None] | None = None,
    ) -> FileResult:
        """One planned file (`media.batch.Job`): read, restore, write atomically.
        `progress`: a tqdm bar for a video's frames; `warn`: for a video's lost frames."""
        began = time.perf_counter()
        if job.is_video:
            chosen = self.choose_quality(quality, path=job.source)
            frames = transcode.restore_video(
                job.source,
                job.target,
                functools.partial(self.restore_frames, quality=chosen.quality),
                encoding or transcode.Encoding(),
                self.tiling.batch,
                progress,
                warn or logging.warning,
                overwrite,
            )
            seconds = time.perf_counter() - began
            return FileResult(job.source, job.target, chosen, 0, frames, seconds)
        loaded = image_io.load_image(job.source, max_pixels)
        chosen = self.choose_quality(quality, loaded.rgb, job.source)
        restored = self.restore_pixels(loaded.rgb, chosen.quality)
        image_io.save_image(loaded, restored, job.target, job.fmt, overwrite)
        pixels = loaded.rgb.shape[0] * loaded.rgb.shape[1]
        return FileResult(job.source, job.target, chosen, pixels, 0, time.perf_counter() - began)


@dataclasses.dataclass(frozen=True)
class FileResult:
    """What `Restorer.restore_file` did: the QF used and how it was chosen
    (`quality.Choice`: 'given', 'quantization-table', 'network', 'earlier-compression',
    'resized-compression' or 'unused' by an unconditioned generator), pixels (an
    image) or frames (a video) and seconds."""

    source: Path
    target: Path
    choice: Choice
    pixels: int
    frames: int
    seconds: float

    @property
    def quality(self) -> float | None:
        return None if self.choice.method == "unused" else self.choice.quality

    def describe(self) -> str:
        """The QF and its source, as the restore command prints it."""
        if self.choice.method == "unused":
            return "no QF (the generator is not conditioned on one)"
        if self.choice.method in ("earlier-compression", "resized-compression"):
            earlier = "an earlier JPEG compression"
            if self.choice.method == "resized-compression":
                earlier += f" at QF {self.choice.earlier:g}, resized since,"
            return (
                f"QF {round(self.choice.quality, 1):g} ({earlier} seen through a re-save "
                f"at QF {round(self.choice.last_save, 1):g})"
            )
        how = {
            "given": "given",
            "quantization-table": "from its quantisation tables",
            "network": "estimated by the quality predictor"
            + (f" over {VIDEO_FRAMES_SAMPLED} frames" if self.frames else ""),
        }[self.choice.method]
        return f"QF {round(self.choice.quality, 1):g} ({how})"
