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

from jaxrestore.data import sources
from jaxrestore.inference import loader
from jaxrestore.media import image as image_io
from jaxrestore.media import jpeg_tables, video
from jaxrestore.models import quality as quality_lib
from jaxrestore.models.generator import PLACEHOLDER_QUALITY

VIDEO_FRAMES_SAMPLED = 16


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

    def estimate_file(self, path: str | Path) -> dict[str, Any]:
        """{'quality', 'method', ...} of an image or video file (see `estimate_file`)."""
        return estimate_file(path, self)


class Choice(NamedTuple):
    quality: float
    method: str  # 'given', 'quantization-table', 'network' or 'unused'


def parse_quality(quality: str | float) -> float | None:
    """A user's quality: None for 'auto', else a QF in 1..100 (ValueError otherwise)."""
    if quality == "auto":
        return None
    try:
        value = float(quality)
    except (TypeError, ValueError):
        value = float("nan")
    if not 1 <= value <= 100:
        raise ValueError(f"quality must be 'auto' or a number in 1..100, got {quality}")
    return value


def choose(
    quality: str | float,
    conditioned: bool,
    estimator: QualityEstimator | None,
    image: np.ndarray | None = None,
    path: str | Path | None = None,
    frames: np.ndarray | list[np.ndarray] | None = None,
) -> Choice:
    """The QF for one input (see the module docstring): `image` (uint8 RGB) and/or its
    file `path`, or a video's sampled `frames` (read from `path` when not given)."""
    if not conditioned:
        return Choice(PLACEHOLDER_QUALITY, "unused")
    given = parse_quality(quality)
    if given is not None:
        return Choice(given, "given")
    is_video = path is not None and video.is_video(Path(path))
    if path is not None and not is_video:
        tables = jpeg_tables.read_tables(path)
        if tables is not None:
            return Choice(
                float(jpeg_tables.quality_from_tables(tables).quality), "quantization-table"
            )
    if estimator is None:
        what = "a video" if is_video or frames is not None else "a non-JPEG input"
        raise ValueError(f"{path or 'input'}: --quality auto on {what} needs the quality predictor")
    if frames is None and image is None:
        frames = video.sample_frames(Path(path), VIDEO_FRAMES_SAMPLED)
    if frames is not None:
        # As `estimate_file` reports it (and the restore command has always used it).
        return Choice(round(float(np.median(estimator.estimate_frames(frames))), 1), "network")
    return Choice(estimator.estimate(image), "network")


def estimate_file(path: str | Path, estimator: QualityEstimator | None) -> dict[str, Any]:
    """A JPEG's QF from its quantisation tables (exact for libjpeg's tables); any
    other image or a video through the network (`estimator`). Raises ValueError
    with a one-line reason for unreadable files."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    tables = jpeg_tables.read_tables(path) if _looks_like_image(path) else None
    if tables is not None:
        found = jpeg_tables.quality_from_tables(tables)
        return {
            "file": str(path),
            "quality": found.quality,
            "method": "quantization-table",
            "exact": found.exact,
        }
    if estimator is None:
        raise ValueError(f"{path}: not a JPEG file; estimating its quality needs the predictor")
    if _looks_like_image(path):
        quality = estimator.estimate(image_io.read_image(str(path)))
        return {"file": str(path), "quality": round(quality, 1), "method": "network"}
    frames = video.sample_frames(path, VIDEO_FRAMES_SAMPLED)
    qualities = estimator.estimate_frames(frames)
    return {
        "file": str(path),
        "quality": round(float(np.median(qualities)), 1),
        "method": "network",
        "frames_sampled": len(qualities),
        "quality_min": round(min(qualities), 1),
        "quality_max": round(max(qualities), 1),
        "per_frame": [round(q, 1) for q in qualities],
    }


def _looks_like_image(path: Path) -> bool:
    if path.suffix.lower() in sources.IMAGE_SUFFIXES:
        return True
    from PIL import Image

    try:
        with Image.open(path):
            return True
    except (OSError, ValueError):
        return False
