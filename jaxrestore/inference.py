"""Trained models at use time: load them from a run, estimate quality, restore.

A model is read from a training workdir (its newest checkpoint and the config
saved with it), so any run of `jaxrestore.main` can be used directly:

    estimator = QualityEstimator("runs/quality_cpu")
    estimator.estimate_file("photo.png")   # {'quality': 31.7, 'method': 'network', ...}
    restorer = Restorer("runs/ssim_universal_cpu", estimator)
    restored, quality = restorer.restore(pixels, quality="auto")

`quality="auto"` reads the QF from a JPEG file's quantisation tables when the
source file is a JPEG, else asks the quality predictor; a number overrides both.
An unconditioned generator ignores the quality. A damaged export or checkpoint
(model.json that is not JSON or lacks its keys, a model config that builds no
network, params/ missing, truncated or overwritten) is one ValueError line naming
it, whatever orbax, tensorstore or flax raised.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxrestore import checkpoint, jpeg_tables, losses, video
from jaxrestore.data import sources
from jaxrestore.models import generator as generator_lib
from jaxrestore.models import quality as quality_lib

VIDEO_FRAMES_SAMPLED = 16
BAD_CONFIG = "its model config does not build a network"


def load_params(workdir: str | Path, stage: str | None = None) -> tuple[Any, Any]:
    """(config, params) of a params-only export (`jaxrestore.export`) or of the newest
    checkpoint of a training workdir (for a GAN run the generator's params).
    `stage` ('quality' or 'generator') is checked."""
    path = checkpoint.as_dir(workdir)
    exported = (path / "model.json").exists()
    if not exported and not (path / "checkpoints").is_dir():
        raise FileNotFoundError(
            f"{workdir}: neither a training workdir (checkpoints/) nor an export (model.json)"
        )
    if exported:
        try:
            info = json.loads((path / "model.json").read_text())
            if not isinstance(info["stage"], str) or not isinstance(info["model"], dict):
                raise TypeError("'stage' must be a string and 'model' an object")
            config = ml_collections.ConfigDict({"stage": info["stage"], "model": info["model"]})
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"{workdir}: model.json is not an export's description "
                f"({type(error).__name__}: {sources.reason(error)})"
            ) from None
    else:
        config = _guarded(workdir, "cannot read the saved config", checkpoint.load_config, path)
    is_quality = config.stage == "quality"
    if stage == "quality" and not is_quality:
        raise ValueError(f"{workdir}: a {config.stage!r} run, not a quality predictor")
    if stage == "generator" and is_quality:
        raise ValueError(f"{workdir}: a quality predictor, not a generator run")
    if exported:
        if not (path / "params").is_dir():
            raise FileNotFoundError(f"{workdir}: model.json but no params/ beside it")
        params = _guarded(
            workdir, "cannot read params/", checkpoint.restore_on_one_device, path / "params"
        )
        return config, params
    tree = _guarded(workdir, "cannot read its newest checkpoint", checkpoint.load_state_tree, path)
    params = tree["generator"]["params"] if "generator" in tree else tree["params"]
    return config, params


def _guarded(source: str | Path, what: str, call: Callable[..., Any], *args: Any) -> Any:
    """`call(*args)`, with any failure as one ValueError line naming `source` and saying
    `what` failed: a damaged checkpoint or model config makes orbax, tensorstore and
    flax raise many exception types."""
    try:
        return call(*args)
    except Exception as error:  # noqa: BLE001 - reported, with its type, as one line
        raise ValueError(
            f"{source}: {what} ({type(error).__name__}: {sources.reason(error)})"
        ) from None


def check_params(model, params: Any, example: tuple, source: str | Path) -> None:
    """Raise a one-line ValueError when `params` are not the ones `model` (built from
    the saved model config) expects: another size, or a different network."""
    init = functools.partial(jax.eval_shape, model.init, jax.random.key(0))
    expected = _guarded(source, BAD_CONFIG, init, *example)
    expected = expected["params"]
    shapes = jax.tree.map(lambda x: tuple(x.shape), expected)
    found = jax.tree.map(lambda x: tuple(np.shape(x)), params)
    if shapes != found:
        described = ", ".join(
            f"{k}={v}"
            for k, v in sorted(vars(model).items())
            if k in ("channels", "num_blocks", "conditioned", "features")
        )
        raise ValueError(
            f"{source}: the saved weights do not match its model config ({described}); "
            "the export or checkpoint is damaged or was written by a different model"
        )


class QualityEstimator:
    """The JPEG-scale QF of images, frames and files."""

    def __init__(self, workdir: str | Path):
        self.workdir = workdir
        config, params = load_params(workdir, "quality")
        self.model = _guarded(workdir, BAD_CONFIG, quality_lib.make_quality_net, config.model)
        check_params(self.model, params, (jnp.zeros((1, 64, 64, 3)),), workdir)
        self.params = jax.device_put(params)
        self._predict = jax.jit(
            lambda params, x: self.model.apply({"params": params}, x.astype(jnp.float32) / 255.0)
        )

    def estimate(self, image: np.ndarray) -> float:
        """QF estimated by the network from uint8 RGB pixels [H, W, 3]."""
        crop = quality_lib.grid_crop(sources.as_rgb8(image, "image"))
        return float(self._predict(self.params, jnp.asarray(crop[None]))[0])

    def estimate_frames(self, frames: list[np.ndarray]) -> list[float]:
        return [self.estimate(frame) for frame in frames]

    def estimate_file(self, path: str | Path) -> dict[str, Any]:
        """{'quality', 'method', ...} of an image or video file (see estimate_quality)."""
        return estimate_file(path, self)


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
        quality = estimator.estimate(sources.read_image(str(path)))
        return {"file": str(path), "quality": round(quality, 1), "method": "network"}
    frames = read_video_frames(path, VIDEO_FRAMES_SAMPLED)
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


def read_video_frames(path: Path, count: int) -> list[np.ndarray]:
    """Up to `count` RGB frames spread evenly over a video file (decoded in one pass;
    a stream of unknown length keeps every k-th frame, k doubling as it grows).
    Packets the decoder rejects (corrupt data) are skipped, as restoring skips them."""
    import av

    kept: list[tuple[int, np.ndarray]] = []
    try:
        with video.open_input(path) as container:
            stream = video.video_stream(container, path)
            total = stream.frames
            picks = set(np.linspace(0, total - 1, min(count, total)).astype(int)) if total else None
            stride = 1
            for index, frame in enumerate(_decodable_frames(container, stream)):
                if picks is not None and index not in picks:
                    continue
                if picks is None and index % stride:
                    continue
                kept.append((index, frame.to_ndarray(format="rgb24")))
                if picks is None and len(kept) >= 2 * count:
                    stride *= 2
                    kept = [(i, f) for i, f in kept if i % stride == 0]
    except video.VideoError:
        raise
    except (av.FFmpegError, OSError, ValueError) as error:  # PyAV: bad tags, sizes, ...
        raise video.VideoError(f"{path}: cannot decode video ({sources.reason(error)})") from None
    if not kept:
        raise video.VideoError(f"{path}: no decodable video frames")
    chosen = np.unique(np.linspace(0, len(kept) - 1, min(count, len(kept))).astype(int))
    return [kept[i][1] for i in chosen]


def _decodable_frames(container, stream) -> Iterator:
    """The frames of `stream`, skipping the packets its decoder rejects."""
    import av

    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.FFmpegError:
            continue


class Restorer:
    """A generator from a training workdir, applied to whole images."""

    def __init__(self, workdir: str | Path, estimator: QualityEstimator | None = None):
        self.config, params = load_params(workdir, "generator")
        self.model = _guarded(workdir, BAD_CONFIG, generator_lib.make_generator, self.config.model)
        example = (jnp.zeros((1, 16, 16, 3)), jnp.full((1,), 50.0))
        check_params(self.model, params, example, workdir)
        self.params = jax.device_put(params)
        self.estimator = estimator
        self.conditioned = bool(self.config.model.get("conditioned", False))
        self._apply = jax.jit(
            lambda params, x, q: losses.quantize(
                self.model.apply({"params": params}, x.astype(jnp.float32) / 255.0, q)
            )
        )

    def quality_for(
        self, image: np.ndarray, quality: str | float = "auto", path: str | Path | None = None
    ) -> tuple[float, str]:
        """(QF, how it was found): the given number, the file's tables, or the network."""
        if quality != "auto":
            value = float(quality)
            if not 1 <= value <= 100:
                raise ValueError(f"quality must be 'auto' or a number in 1..100, got {quality}")
            return value, "given"
        if path is not None:
            tables = jpeg_tables.read_tables(path)
            if tables is not None:
                return float(jpeg_tables.quality_from_tables(tables).quality), "quantization-table"
        if self.estimator is None:
            raise ValueError("quality='auto' on a non-JPEG input needs a quality predictor")
        return self.estimator.estimate(image), "network"

    def restore(
        self, image: np.ndarray, quality: str | float = "auto", path: str | Path | None = None
    ) -> tuple[np.ndarray, float | None]:
        """Restore uint8 RGB [H, W, 3]; returns (uint8 restored, the QF used or None
        for an unconditioned generator)."""
        image = sources.as_rgb8(image, str(path or "image"))
        used = None
        if self.conditioned:
            used, _ = self.quality_for(image, quality, path)
        q = jnp.full((1,), used if used is not None else 50.0, jnp.float32)
        restored = self._apply(self.params, jnp.asarray(image[None]), q)
        return np.asarray(jnp.round(restored[0] * 255.0)).astype(np.uint8), used
