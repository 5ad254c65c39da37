"""Generators compared on held-out images under many degradations (`jaxrestore.compare`).

Conditions: `jpeg:Q` (single JPEG, 4:2:0), `jpeg444:Q`, `double:Q1:Q2` (JPEG at Q1,
then cropped by `DOUBLE_SHIFT` pixels so the grids do not align and saved at Q2),
`h264:CRF` / `mpeg2:QS` (one intra-coded frame, `protocol.compress`). Held-out
video clips are encoded whole as H.264 (inter frames).

Each generator restores exactly as the restore command does: images through the
tiled path (`Restorer.restore_pixels`), clips through the video path
(`Restorer.restore_frames`, one QF for the clip), and the QF is chosen by
`Restorer.choose_quality`: the true one for single JPEG ('given'), otherwise the
quality predictor's estimate ('predicted'). Without a predictor, compare alone
falls back on an oracle: the JPEG-equivalent QF measured against the original
(`degrade.jpeg_equivalent_quality`; for a clip the median over the sampled frames).
Scores: PSNR on RGB of the 8-bit outputs, mean over images (or frames), and with
`lpips=True` LPIPS (AlexNet, `perceptual.lpips`) beside it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxrestore import inference, metrics
from jaxrestore.data import degrade, sources
from jaxrestore.evaluation import protocol
from jaxrestore.models import perceptual

DEFAULT_CONDITIONS = (
    "jpeg:5,jpeg:10,jpeg:20,jpeg:30,jpeg:40,jpeg:60,jpeg:90,double:30:10,double:10:30,double:50:50"
)
DOUBLE_SHIFT = (3, 5)
# How a QF was found, in compare's words where they differ from `quality.Choice.method`.
METHODS = {"network": "predicted"}


def degrade_image(image: np.ndarray, condition: str) -> tuple[np.ndarray, np.ndarray, int | None]:
    """(degraded, matching original, true QF or None) of one held-out image."""
    kind, *values = condition.split(":")
    numbers = [int(v) for v in values]
    if kind == "jpeg" and len(numbers) == 1:
        return *protocol.compress(image, "jpeg", numbers[0]), numbers[0]
    if kind == "jpeg444" and len(numbers) == 1:
        return degrade.jpeg_roundtrip(image, numbers[0], "444"), image, numbers[0]
    if kind == "double" and len(numbers) == 2:
        dy, dx = DOUBLE_SHIFT
        once = degrade.jpeg_roundtrip(image, numbers[0])[dy:, dx:]
        return degrade.jpeg_roundtrip(once, numbers[1]), image[dy:, dx:], None
    if kind in ("h264", "mpeg2") and len(numbers) == 1:
        return *protocol.compress(image, kind, numbers[0]), None
    raise ValueError(f"unknown condition {condition!r}")


class Scorer:
    """One generator, restoring as the restore command does (see the module docstring)."""

    def __init__(self, source: str, estimator: inference.QualityEstimator | None):
        self.name = source
        self.restorer = inference.Restorer(source, estimator)

    def _oracle(self) -> bool:
        """Whether a QF the input does not give must come from the oracle."""
        return self.restorer.conditioned and self.restorer.estimator is None

    def image(self, degraded: np.ndarray, original: np.ndarray, true: int | None) -> tuple:
        """(the restored image, how its QF was found)."""
        if true is None and self._oracle():
            quality, method = float(degrade.jpeg_equivalent_quality(original, degraded)), "oracle"
        else:
            given = "auto" if true is None else true
            chosen = self.restorer.choose_quality(given, degraded)
            quality, method = chosen.quality, chosen.method
        return self.restorer.restore_pixels(degraded, quality), METHODS.get(method, method)

    def clip(self, decoded: np.ndarray, clip: np.ndarray) -> tuple:
        """(the restored frames, how the clip's QF was found)."""
        if self._oracle():
            picks = protocol.sampled_frames(len(clip))
            found = [degrade.jpeg_equivalent_quality(clip[i], decoded[i]) for i in picks]
            quality, method = round(float(np.median(found)), 1), "oracle"
        else:
            chosen = protocol.clip_quality(self.restorer, decoded)
            quality, method = chosen.quality, chosen.method
        return self.restorer.restore_frames(decoded, quality), METHODS.get(method, method)


@jax.jit
def _lpips_of(test: jax.Array, original: jax.Array) -> jax.Array:
    # LPIPS alone: metrics.full_reference would also compute SSIM, PSNR-B, … per image.
    return perceptual.lpips(test.astype(jnp.float32) / 255.0, original.astype(jnp.float32) / 255.0)


def _lpips(test: np.ndarray, original: np.ndarray) -> float:
    return float(_lpips_of(test[None], original[None])[0])


def compare(
    runs: list[str],
    conditions: list[str],
    images: sources.ImageSet,
    predictor: str | None,
    video_crfs: list[int],
    videos: sources.ClipSet | None,
    lpips: bool = False,
) -> list[dict]:
    """One row per condition (and per held-out clip and CRF): the degraded input's
    PSNR (and LPIPS) and each run's, with how its QF was found. Rows go to stderr as
    they come."""
    estimator = inference.QualityEstimator(predictor) if predictor else None
    scorers = [Scorer(run, estimator) for run in runs]
    rows = []

    def scores(outputs: list[np.ndarray], originals: list[np.ndarray]) -> dict:
        found = {"psnr": float(np.mean([metrics.psnr(t, o) for t, o in zip(outputs, originals)]))}
        if lpips:
            found["lpips"] = float(np.mean([_lpips(t, o) for t, o in zip(outputs, originals)]))
        return found

    def add_row(condition: str, degraded: list, originals: list, restored: list) -> None:
        """`restored[k]`: scorer k's (outputs, [how each QF was found])."""
        row = {"condition": condition, "images": len(originals)}
        for name, value in scores(degraded, originals).items():
            row[f"{name}_degraded"] = value
        for scorer, (outputs, methods) in zip(scorers, restored):
            found = scores(outputs, originals)
            row[scorer.name] = found["psnr"]
            if lpips:
                row[f"{scorer.name} lpips"] = found["lpips"]
            row[f"{scorer.name} quality"] = "/".join(sorted(set(methods)))
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)

    originals = [images.load(i) for i in range(len(images))]
    if conditions and not originals:
        raise ValueError("no held-out images to score the conditions on")
    for condition in conditions:
        triples = [degrade_image(image, condition) for image in originals]
        restored = []
        for scorer in scorers:
            outputs, methods = zip(*(scorer.image(*t) for t in triples))
            restored.append((list(outputs), list(methods)))
        add_row(condition, [d for d, _, _ in triples], [o for _, o, _ in triples], restored)
    for crf in video_crfs:
        if videos is None or len(videos) == 0:
            raise ValueError("--video: no held-out video clips (run jaxrestore.data.assemble)")
        for index in range(len(videos)):
            clip = np.asarray(videos.clip(index))
            decoded = degrade.video_roundtrip(clip, "h264", crf)
            restored = []
            for scorer in scorers:
                frames, method = scorer.clip(decoded, clip)
                restored.append((list(frames), [method]))
            add_row(f"video h264 crf{crf} [{index}]", list(decoded), list(clip), restored)
    return rows


def markdown(rows: list[dict], runs: list[str]) -> str:
    """The rows as a Markdown table: PSNR and gain over the degraded input per run,
    with how the QF was found where it was not given; LPIPS (lower is better) beside
    each PSNR where the rows have it."""
    with_lpips = bool(rows) and "lpips_degraded" in rows[0]
    names = [Path(r).name for r in runs]
    header = ["condition", "degraded PSNR"] + [f"{n} (gain)" for n in names]
    if with_lpips:
        header += ["degraded LPIPS"] + [f"{n} LPIPS" for n in names]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["condition"], f"{row['psnr_degraded']:.2f}"]
        cells += [
            f"{row[r]:.2f} ({row[r] - row['psnr_degraded']:+.2f})"
            + ("" if row[f"{r} quality"] in ("given", "unused") else f" [{row[f'{r} quality']}]")
            for r in runs
        ]
        if with_lpips:
            cells += [f"{row['lpips_degraded']:.3f}"] + [f"{row[f'{r} lpips']:.3f}" for r in runs]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
