"""The quality (JPEG QF) a conditioned generator is given: the one place it is chosen.

`choose` takes the user's `quality` ('auto' or a number) and what is known of the
input: a number is used as given; 'auto' reads a JPEG file's quantisation tables
(exact for libjpeg's tables), else asks the quality predictor (`QualityEstimator`)
about the pixels; a video gets the median of its estimates over frames spread
through the file. An unconditioned generator ignores the quality ('unused').
"""

from __future__ import annotations

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
    method: str  # 'given', 'quantization-table', 'network' or 'unused'


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
            return Choice(float(found.quality), "quantization-table")
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
    return Choice(estimator.estimate(image), "network")


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
        return {
            "file": str(path),
            "quality": found.quality,
            "method": "quantization-table",
            "exact": found.exact,
        }
    is_video = not image_io.looks_like_image(path)
    if estimator is None:
        raise _network_needed(path, is_video)
    if not is_video:
        quality = estimator.estimate(image_io.read_image(str(path)))
        return {"file": str(path), "quality": round(quality, 1), "method": "network"}
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
