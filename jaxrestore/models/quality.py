"""Quality predictor: the JPEG quality factor (QF) of an image or frame, from pixels.

A decoded JPEG keeps the imprint of its quantiser: the 8×8 block DCT
coefficients of its luma sit near multiples of the quantisation steps. The
network computes that DCT (fixed, exact — JPEG's transform is the orthonormal
DCT-II), and for every candidate QF 1–100 measures how well the non-zero
coefficients fit the lattice of libjpeg's luma table at that QF (mean of
cos 2πc/Q): a profile over QF that peaks at the true one. A 1-D convolution
over that profile and an MLP over global statistics (the profile, the share of
non-zero coefficients, the log energy of each DCT frequency, which carries the
blur and ringing of any codec) give logits over QF 1–100; the prediction is
their softmax expectation. For video frames and other codecs the lattice is
absent and the statistics branch estimates the JPEG-equivalent QF that the
training pairs are labelled with (see `data.degrade`).

Any image size: the statistics are means over blocks. The 8×8 grid is taken
from the top-left corner, where JPEG's grid lies in an uncropped image.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxrestore.media import jpeg_tables

NUM_QUALITIES = 100
# Whole images are judged on a centre crop of at most this many pixels a side, on
# the 8×8 grid: the lattice statistics cost blocks × 100 × 64 values, and 4,096
# blocks decide the QF as well as a whole photo does.
MAX_SIDE = 512


def grid_crop(image: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """A centre crop of [H, W, ...] of at most `max_side`², starting on the 8×8 grid."""
    height, width = image.shape[:2]
    crop_h = min(height, max_side) // 8 * 8
    crop_w = min(width, max_side) // 8 * 8
    if crop_h == 0 or crop_w == 0:
        raise ValueError(f"{width}x{height} is smaller than one 8×8 block")
    top = (height - crop_h) // 2 // 8 * 8
    left = (width - crop_w) // 2 // 8 * 8
    return image[top : top + crop_h, left : left + crop_w]


def dct_matrix(n: int = 8) -> np.ndarray:
    """Orthonormal DCT-II basis, rows = frequencies."""
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    basis = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    basis[0] /= np.sqrt(2.0)
    return basis.astype(np.float32)


def block_dct_luma(image: jax.Array) -> jax.Array:
    """[B, H, W, 3] RGB in [0, 1] -> [B, blocks, 64] DCT of JPEG's level-shifted luma."""
    b, h, w, _ = image.shape
    h8, w8 = h // 8 * 8, w // 8 * 8
    if h8 == 0 or w8 == 0:
        raise ValueError(f"image {w}x{h} is smaller than one 8×8 block")
    rgb = image[:, :h8, :w8].astype(jnp.float32) * 255.0
    luma = rgb @ jnp.array([0.299, 0.587, 0.114], jnp.float32) - 128.0
    blocks = luma.reshape(b, h8 // 8, 8, w8 // 8, 8)
    d = jnp.asarray(dct_matrix())
    coefficients = jnp.einsum("uy,bmynx,vx->bmnuv", d, blocks, d)
    return coefficients.reshape(b, -1, 64)


def lattice_statistics(coefficients: jax.Array) -> dict[str, jax.Array]:
    """Per-image statistics of [B, blocks, 64] DCT coefficients (no gradient needed)."""
    steps = jnp.asarray(jpeg_tables.LIBJPEG_TABLES[:, 0].reshape(NUM_QUALITIES, 64), jnp.float32)
    c = coefficients[:, :, None, :]  # [B, blocks, 1, 64]
    nonzero = (jnp.abs(c) >= steps / 2).astype(jnp.float32)  # [B, blocks, Q, 64]
    fit = jnp.cos(2 * jnp.pi * c / steps) * nonzero
    fit_sum = jnp.mean(jnp.sum(fit, -1), axis=1)  # [B, Q]
    nonzero_sum = jnp.mean(jnp.sum(nonzero, -1), axis=1)
    return {
        "profile": fit_sum / (nonzero_sum + 1e-3),  # [B, Q] in [-1, 1]
        "nonzero": nonzero_sum / 64.0,  # [B, Q] in [0, 1]
        "energy": jnp.log1p(jnp.mean(coefficients**2, axis=1)) / 10.0,  # [B, 64]
    }


def offset_profiles(image: jax.Array) -> jax.Array:
    """[H, W, 3] RGB in [0, 1] -> [64, Q] lattice profiles (`lattice_statistics`) of
    the 8×8 grid started at each offset (dy, dx) in 0..7 (row dy·8 + dx), over the
    same (H − 8) × (W − 8) window: a JPEG compression on a grid the image no longer
    starts on (cropped since, then saved again) shows as a peak at its QF at the
    offset where its grid now lies."""
    height, width = image.shape[0] - 8, image.shape[1] - 8
    offsets = jnp.array([(dy, dx) for dy in range(8) for dx in range(8)], jnp.int32)

    def one(offset):
        window = jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (height, width, 3))
        return lattice_statistics(block_dct_luma(window[None]))["profile"][0]

    return jax.lax.map(one, offsets)  # one offset at a time: bounded memory


class QualityNet(nn.Module):
    """[B, H, W, 3] in [0, 1] -> QF estimate [B] in [1, 100]."""

    features: int = 16
    hidden: int = 128

    @nn.compact
    def __call__(self, image: jax.Array) -> jax.Array:
        stats = jax.lax.stop_gradient(lattice_statistics(block_dct_luma(image)))
        profile = jnp.stack([stats["profile"], stats["nonzero"]], axis=-1)  # [B, Q, 2]
        local = nn.Conv(self.features, (7,), name="profile_conv1")(profile)
        local = nn.gelu(local)
        local = nn.Conv(self.features, (7,), name="profile_conv2")(local)
        local = nn.gelu(local)
        local = nn.Conv(1, (7,), name="profile_out")(local)[..., 0]  # [B, Q]
        summary = jnp.concatenate([stats["profile"], stats["nonzero"], stats["energy"]], -1)
        hidden = nn.gelu(nn.Dense(self.hidden, name="mlp1")(summary))
        hidden = nn.gelu(nn.Dense(self.hidden, name="mlp2")(hidden))
        logits = local + nn.Dense(NUM_QUALITIES, name="mlp_out")(hidden)
        qualities = jnp.arange(1, NUM_QUALITIES + 1, dtype=jnp.float32)
        return jnp.sum(jax.nn.softmax(logits, axis=-1) * qualities, axis=-1)


def make_quality_net(model_config) -> QualityNet:
    return QualityNet(features=model_config.features, hidden=model_config.hidden)


def example_inputs(size: int) -> tuple[jax.Array]:
    """The input of the shape the predictor's `init` takes, a `size`² square."""
    return (jnp.zeros((1, size, size, 3), jnp.float32),)
