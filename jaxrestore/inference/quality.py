"""The quality (JPEG QF) a conditioned generator is given: the one place it is chosen.

`choose` takes the user's `quality` ('auto' or a number) and what is known of the
input: a number is used as given; 'auto' reads a JPEG file's quantisation tables
(exact for libjpeg's tables), else asks the quality predictor (`QualityEstimator`)
about the pixels; a video gets the median of its estimates over frames spread
through the file. An image whose pixels carry an earlier, heavier JPEG compression
on a grid it no longer starts on (cropped and saved again: most pictures people
have) gets that compression's QF instead, read from its lattice
(`earlier_compression`, method 'earlier-compression'); so does one resized since
that compression (`resized_compression`, method 'resized-compression'). An
unconditioned generator ignores the quality ('unused').
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrestore.inference import loader
from jaxrestore.media import image as image_io
from jaxrestore.media import jpeg_tables, video
from jaxrestore.models import quality as quality_lib
from jaxrestore.models.generator import PLACEHOLDER_QUALITY

VIDEO_FRAMES_SAMPLED = 16
NO_PREDICTOR = "its quality is estimated by the quality predictor, and none is loaded"


class QualityEstimator:
    """The quality predictor: the JPEG-scale QF of images and frames, from pixels."""

    def __init__(self, source: str | Path = loader.DEFAULT_PREDICTOR):
        self.model = loader.load(source, "quality")
        self.source = source
        module = self.model.module
        self._predict = jax.jit(
            lambda params, x: module.apply({"params": params}, x.astype(jnp.float32) / 255.0)
        )

    def estimate(self, image: np.ndarray) -> float:
        """QF estimated from uint8 RGB pixels [H, W, 3] (a centre crop on the 8×8 grid)."""
        crop = quality_lib.grid_crop(image_io.as_rgb8(image, "image"))
        return float(self._predict(self.model.params, jnp.asarray(crop[None]))[0])

    def estimate_frames(self, frames: list[np.ndarray] | np.ndarray) -> list[float]:
        return [self.estimate(frame) for frame in frames]


class Choice(NamedTuple):
    quality: float
    # 'given', 'quantization-table', 'network', 'earlier-compression',
    # 'resized-compression' or 'unused'
    method: str
    # With 'earlier-/resized-compression': the QF the last save (its tables, or the
    # predictor) says, which the earlier, heavier compression overrides.
    last_save: float | None = None
    # With 'resized-compression': the earlier compression's own QF (`quality` is what
    # is left of it after the resize, `resized_equivalent_quality`).
    earlier: float | None = None


# An earlier compression counts when its lattice is this clear (peak of the offset's
# profile) and stands this far above the other offsets' median; and it must be
# heavier than the last save by more than EARLIER_MARGIN QF (see `earlier_compression`).
# Measured on 14 held-out photos and 14 LIVE1 images (all 256² centre crops): single
# saves at QF 5–95 and unsaved originals peak at most 0.233 at another offset (at a
# lower QF); a QF 10 save shifted and saved again at 30, 50 or 90 peaks at 0.41–0.99,
# 30 → 90 at 0.74–0.96, each at the first QF exactly; 20 → 40 (0.22–0.37) and
# 30 → 50 (0.16–0.32) are found in part, the rest keep the last save's QF.
EARLIER_PEAK = 0.28
EARLIER_RATIO = 2.0
EARLIER_MARGIN = 5
SCAN_SIDE = 256  # the offsets are scanned on a centre crop of (SCAN_SIDE + 8)²


class Earlier(NamedTuple):
    """A JPEG compression on a grid the image no longer starts on."""

    quality: int  # its QF (libjpeg's scale)
    strength: float  # the peak of its lattice profile, up to 1
    offset: tuple[float, float]  # (dy, dx) where its grid lies (a block's first pixel)
    block: float = 8.0  # its blocks' side now, in pixels: 8 × the resize since (8: none)


_scan = jax.jit(quality_lib.offset_profiles)


def earlier_compression(image: np.ndarray) -> Earlier | None:
    """The strongest JPEG compression of uint8 RGB `image` whose 8×8 grid is not the
    image's own (the picture was cropped or shifted, then saved again, to JPEG at
    a higher QF or losslessly), or None. It is read from the lattice the quantiser
    left in the block DCT at each of the 64 grid offsets (`offset_profiles`): a
    peak counts when it is at least EARLIER_PEAK and EARLIER_RATIO times the
    median offset's. Resized pictures lose the lattice (their grid is no longer
    8 pixels) and are not seen."""
    image = image_io.as_rgb8(image, "image")
    height, width = image.shape[:2]
    side = SCAN_SIDE + 8
    if height < 24 or width < 24:
        return None
    top = max(0, (height - side) // 2) // 8 * 8  # on the image's own 8×8 grid
    left = max(0, (width - side) // 2) // 8 * 8
    crop = image[top : top + side, left : left + side]
    profiles = np.asarray(_scan(jnp.asarray(crop, jnp.float32) / 255.0))  # [64, Q]
    peaks = profiles.max(axis=1)
    qualities = profiles.argmax(axis=1) + 1
    floor = EARLIER_RATIO * float(np.median(peaks[1:]))
    best = None
    for index in range(1, 64):  # offset 0 is the image's own grid
        if peaks[index] >= max(EARLIER_PEAK, floor) and (
            best is None or peaks[index] > peaks[best]
        ):
            best = index
    if best is None:
        return None
    return Earlier(int(qualities[best]), float(peaks[best]), divmod(best, 8))


# A compression before a resize: its 8×8 blocks are now 8·s pixels (s: the resize,
# RESIZED_PERIODS covers s ≈ 0.53–0.97; near s = 0.5 they fall on the last save's own
# grid harmonics, and 1 is `earlier_compression`'s). Their edges make the mean
# absolute luma difference between neighbouring columns (rows) periodic; the
# RESIZED_CANDIDATES strongest periods are each resampled back to 8-pixel blocks on
# their phase and read like a JPEG's lattice, at QF RESIZED_MIN_QUALITY and up. The
# lattice counts at RESIZED_PEAK, below QF RESIZED_COARSE_QUALITY at
# RESIZED_COARSE_PEAK (smooth pictures fit the coarse lattices by chance).
# Measured on 256² centre crops of the 29 LIVE1 images: single saves at QF 5–95,
# originals, and originals resized (0.6–0.9×, three kernels) then saved at QF 75–90
# never pass; QF 10 resized by 0.75× (bicubic) then saved at QF 90 is found at its
# QF in 27 of 29, by 0.6× in 12, QF 20 resized by 0.9× (Lanczos) in 6.
RESIZED_PERIODS = np.arange(4.25, 7.8, 0.0025)
RESIZED_CANDIDATES = 4
RESIZED_REFINE_STEPS = (-24, -12, -6, -3, 3, 6, 12, 24)  # × 0.0025 pixels of period
RESIZED_MIN_QUALITY = 5
RESIZED_PEAK = 0.12
RESIZED_COARSE_QUALITY = 10
RESIZED_COARSE_PEAK = 0.2
RESIZED_PROFILE_SIDE = 1024  # the periodicity is measured on a centre crop this size

# A resize averages a compression's errors away in part, so the picture is less
# damaged than its first QF says: the QF the generator is given (trained on pairs
# labelled so) is the JPEG-equivalent one — the QF whose plain JPEG of the resized
# original has the same PSNR (`data.degrade.jpeg_equivalent_quality`). Medians over
# 24 training photos (192² after the resize; bicubic, bilinear and Lanczos in turn),
# for a first QF (rows) and a resize (columns); interpolated between, clamped outside.
RESIZED_FIRST_QUALITIES = np.array([5, 10, 15, 20, 30, 40, 50, 60, 75, 90])
RESIZED_SCALES = np.array([0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])
RESIZED_EQUIVALENT = np.array(
    [
        [8, 8, 7, 7, 7, 6, 6, 6, 6],
        [25, 22, 19, 17, 15, 14, 13, 12, 11.5],
        [51, 42, 34, 31, 26, 23, 21, 19.5, 17],
        [69, 62, 54, 46, 39, 33, 30, 27.5, 24],
        [84, 79, 74, 71, 63, 57, 51, 44, 38.5],
        [89, 86, 82, 79, 74, 70, 65.5, 58, 53],
        [91, 89, 87, 84, 81, 77, 73, 67.5, 62.5],
        [93, 92, 90, 87, 85, 82, 78, 75, 69.5],
        [96, 95, 94, 92, 90, 88, 86, 84, 82],
        [100, 100, 98, 97, 97, 96, 95, 94, 93],
    ]
)


def resized_equivalent_quality(quality: float, scale: float) -> float:
    """The JPEG-equivalent QF of a compression at `quality` resized by `scale` since
    (RESIZED_EQUIVALENT, bilinear between its measurements)."""
    by_scale = [np.interp(scale, RESIZED_SCALES, row) for row in RESIZED_EQUIVALENT]
    return float(np.interp(quality, RESIZED_FIRST_QUALITIES, by_scale))


_lattice_profile = jax.jit(
    lambda image: quality_lib.lattice_statistics(quality_lib.block_dct_luma(image))["profile"]
)


def _edge_periodicity(luma: np.ndarray, axis: int) -> np.ndarray:
    """The complex response of the column (axis=1) or row (axis=0) edge profile
    of `luma` at each of RESIZED_PERIODS."""
    edges = np.abs(np.diff(luma, axis=axis)).mean(axis=1 - axis)
    edges = edges - np.convolve(edges, np.ones(9) / 9, mode="same")  # slow trends out
    positions = np.arange(len(edges))
    waves = np.exp(-2j * np.pi * positions[None, :] / RESIZED_PERIODS[:, None])
    return waves @ edges / len(edges)


def resized_compression(image: np.ndarray) -> Earlier | None:
    """The JPEG compression of uint8 RGB `image` made before it was resized (by
    0.53–0.97, with any image tool's kernel) and saved again, or None: its blocks'
    period and phase are read from the periodic edges they left, the picture is
    resampled back to 8-pixel blocks there, and the lattice of the block DCT says
    the QF (see RESIZED_PERIODS)."""
    from PIL import Image

    image = image_io.as_rgb8(image, "image")
    height, width = image.shape[:2]
    if min(height, width) < 96:
        return None
    top = max(0, (height - RESIZED_PROFILE_SIDE) // 2)
    left = max(0, (width - RESIZED_PROFILE_SIDE) // 2)
    crop = image[top : top + RESIZED_PROFILE_SIDE, left : left + RESIZED_PROFILE_SIDE]
    luma = crop.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    across, down = _edge_periodicity(luma, 1), _edge_periodicity(luma, 0)
    magnitude_x, magnitude_y = np.abs(across), np.abs(down)
    joint = magnitude_x / np.median(magnitude_x) + magnitude_y / np.median(magnitude_y)
    maxima = np.flatnonzero((joint[1:-1] >= joint[:-2]) & (joint[1:-1] >= joint[2:])) + 1
    picture = Image.fromarray(crop)

    @functools.cache  # the refinement's later passes come back to periods read before
    def read(ix: int, iy: int) -> Earlier | None:
        """The lattice of the picture resampled to 8-pixel blocks of periods ix, iy."""
        if not (0 <= ix < len(RESIZED_PERIODS) and 0 <= iy < len(RESIZED_PERIODS)):
            return None
        period_x, period_y = RESIZED_PERIODS[ix], RESIZED_PERIODS[iy]
        side = min(SCAN_SIDE, int(min(crop.shape[0] / period_y, crop.shape[1] / period_x)) * 8)
        side -= 24  # whole blocks inside the picture from any phase
        if side < 64:
            return None
        # An edge between pixels i and i+1 peaks the profile at i; a block starts at i+1.
        edge_x = (-np.angle(across[ix]) % (2 * np.pi)) / (2 * np.pi) * period_x
        edge_y = (-np.angle(down[iy]) % (2 * np.pi)) / (2 * np.pi) * period_y
        start_x = edge_x + 1 + (crop.shape[1] - side * period_x / 8) / 2 // period_x * period_x
        start_y = edge_y + 1 + (crop.shape[0] - side * period_y / 8) / 2 // period_y * period_y
        resampled = picture.transform(
            (side, side),
            Image.AFFINE,
            (period_x / 8, 0, start_x, 0, period_y / 8, start_y),
            Image.BICUBIC,
        )
        pixels = jnp.asarray(np.asarray(resampled, np.float32)[None] / 255.0)
        profile = np.asarray(_lattice_profile(pixels))[0, RESIZED_MIN_QUALITY - 1 :]
        offset = (
            round(float((top + start_y) % period_y), 2),
            round(float((left + start_x) % period_x), 2),
        )
        quality = int(profile.argmax()) + RESIZED_MIN_QUALITY
        block = round(float(period_x + period_y) / 2, 3)
        return Earlier(quality, float(profile.max()), offset, block)

    found = []
    for index in maxima[np.argsort(-joint[maxima])][:RESIZED_CANDIDATES]:
        # Each axis at its own strongest period within ±12 steps (the two sides of
        # a resized picture are rounded to whole pixels separately).
        low, high = max(0, index - 12), index + 13
        ix = low + int(np.argmax(magnitude_x[low:high]))
        iy = low + int(np.argmax(magnitude_y[low:high]))
        if (earlier := read(ix, iy)) is not None:
            found.append((earlier, ix, iy))
    if not found:
        return None
    # The lattice fades fast with a wrong period (0.3% off: gone over 256 pixels),
    # which a small picture's edges give only to about 1%: the best candidate is
    # read again at periods around its own.
    best, ix, iy = max(found, key=lambda item: item[0].strength)
    for axis in (0, 1, 0, 1):  # each side's period in turn
        moves = [(ix + step, iy) if axis == 0 else (ix, iy + step) for step in RESIZED_REFINE_STEPS]
        for jx, jy in moves:
            earlier = read(jx, jy)
            if earlier is not None and earlier.strength > best.strength:
                best, ix, iy = earlier, jx, jy
    needed = RESIZED_PEAK if best.quality >= RESIZED_COARSE_QUALITY else RESIZED_COARSE_PEAK
    return best if best.strength >= needed else None


def _effective(found: Choice, image: np.ndarray | None, path) -> tuple[Choice, Earlier | None]:
    """`found` (the last save's QF) or, when the pixels carry an earlier and heavier
    compression on another grid, that one's QF (method 'earlier-compression'; made
    before a resize: 'resized-compression'); with the earlier compression when it
    decided."""
    if found.quality <= EARLIER_MARGIN + 1:  # nothing heavier to find
        return found, None
    if image is None:
        image = image_io.read_image(str(path))
    earlier = earlier_compression(image)
    if earlier is None or earlier.quality >= found.quality - EARLIER_MARGIN:
        earlier = resized_compression(image)
    if earlier is None or earlier.quality >= found.quality - EARLIER_MARGIN:
        return found, None
    if earlier.block == 8:
        return Choice(float(earlier.quality), "earlier-compression", found.quality), earlier
    # Resized since: the generator gets the damage that is left, never above the last
    # save's.
    equivalent = resized_equivalent_quality(earlier.quality, earlier.block / 8)
    effective = round(min(equivalent, found.quality), 1)
    return Choice(effective, "resized-compression", found.quality, earlier.quality), earlier


def parse_quality(quality: str | float) -> float | None:
    """A user's quality: None for 'auto', else a QF in 1..100 (ValueError otherwise)."""
    if isinstance(quality, str) and quality == "auto":
        return None
    try:
        if isinstance(quality, bool):  # True is not QF 1
            raise TypeError
        value = float(quality)
    except (TypeError, ValueError):
        value = float("nan")
    if not 1 <= value <= 100:
        raise ValueError(f"quality must be 'auto' or a number in 1..100, got {quality}")
    return value


def _from_tables(path: str | Path) -> jpeg_tables.TableQuality | None:
    """The QF of a JPEG file from its quantisation tables; None for any other file."""
    tables = jpeg_tables.read_tables(path) if image_io.looks_like_image(Path(path)) else None
    return None if tables is None else jpeg_tables.quality_from_tables(tables)


def _network_needed(path: str | Path | None, is_video: bool) -> ValueError:
    what = "a video" if is_video else "not a JPEG file"
    return ValueError(f"{path or 'input'}: {what}: {NO_PREDICTOR}")


def choose(
    quality: str | float,
    conditioned: bool,
    estimator: QualityEstimator | None,
    image: np.ndarray | None = None,
    path: str | Path | None = None,
    frames: np.ndarray | list[np.ndarray] | None = None,
) -> Choice:
    """The QF for one input (see the module docstring): an image (`image`, uint8 RGB,
    and/or its file `path`) or a video (its sampled `frames`, or its file `path`)."""
    if not conditioned:
        return Choice(PLACEHOLDER_QUALITY, "unused")
    given = parse_quality(quality)
    if given is not None:
        return Choice(given, "given")
    is_video = frames is not None or (path is not None and video.is_video(Path(path)))
    if path is not None and not is_video:
        found = _from_tables(path)
        if found is not None:
            return _effective(Choice(float(found.quality), "quantization-table"), image, path)[0]
    if estimator is None:
        raise _network_needed(path, is_video)
    if is_video:
        if frames is None:
            frames = video.sample_frames(Path(path), VIDEO_FRAMES_SAMPLED)
        return Choice(video_quality(estimator.estimate_frames(frames)), "network")
    if image is None:
        if path is None:
            raise ValueError("choose: give the image, its file or a video's frames")
        image = image_io.read_image(str(path))
    return _effective(Choice(estimator.estimate(image), "network"), image, path)[0]


def _report(path: Path, chosen: Choice, earlier: Earlier | None) -> dict[str, Any]:
    """estimate_file's answer for an image: the QF `choose` takes, with how, and for
    an earlier compression also the last save's QF and where its grid lies."""
    result = {"file": str(path), "quality": round(chosen.quality, 1), "method": chosen.method}
    if earlier is not None:
        result["last_save_quality"] = round(chosen.last_save, 1)
        result["earlier_grid_offset"] = list(earlier.offset)
        if earlier.block != 8:  # resized since: its own QF, its blocks' side now
            result["earlier_quality"] = earlier.quality
            result["earlier_block_size"] = earlier.block
        result["earlier_strength"] = round(earlier.strength, 3)
    return result


def video_quality(estimates: list[float]) -> float:
    """A video's QF from its frames' estimates: their median, to 0.1 (as reported)."""
    return round(float(np.median(estimates)), 1)


def estimate_file(path: str | Path, estimator: QualityEstimator | None) -> dict[str, Any]:
    """What `choose` finds for a file, with how: a JPEG's QF from its quantisation
    tables (exact for libjpeg's tables); any other image or a video through the
    network (`estimator`; for a video also the per-frame estimates). Raises
    ValueError with a one-line reason for unreadable files."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    found = _from_tables(path)
    if found is not None:
        pixels = image_io.read_image(str(path))
        table = Choice(float(found.quality), "quantization-table")
        return _report(path, *_effective(table, pixels, path)) | {"exact": found.exact}
    is_video = not image_io.looks_like_image(path)
    if estimator is None:
        raise _network_needed(path, is_video)
    if not is_video:
        pixels = image_io.read_image(str(path))
        network = Choice(estimator.estimate(pixels), "network")
        return _report(path, *_effective(network, pixels, path))
    qualities = estimator.estimate_frames(video.sample_frames(path, VIDEO_FRAMES_SAMPLED))
    return {
        "file": str(path),
        "quality": video_quality(qualities),
        "method": "network",
        "frames_sampled": len(qualities),
        "quality_min": round(min(qualities), 1),
        "quality_max": round(max(qualities), 1),
        "per_frame": [round(q, 1) for q in qualities],
    }
