"""Conditional sub-patch discriminator (Galteri et al., TMM 2019).

The discriminator sees the compressed input beside a candidate (the original
or a restoration) and judges each `sub_patch`×`sub_patch` region of the
training patch on its own: the patch is cut into a grid of sub-patches, each is
reduced to one logit by stride-2 convolutions, and the logits come back as a
[B, H / sub_patch, W / sub_patch] grid. Judging small regions independently
keeps the adversarial signal local, where compression artifacts live.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp


def to_sub_patches(x: jax.Array, size: int) -> jax.Array:
    """[B, H, W, C] -> [B · H/size · W/size, size, size, C] (row-major grid)."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // size, size, w // size, size, c)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(-1, size, size, c)


class Discriminator(nn.Module):
    """Logits [B, H/sub_patch, W/sub_patch]: high where the candidate looks original."""

    channels: int = 64
    sub_patch: int = 32
    max_channels: int = 512
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, candidate: jax.Array, condition: jax.Array) -> jax.Array:
        b, h, w, _ = candidate.shape
        size = self.sub_patch
        if h % size or w % size or size < 4 or size & (size - 1):
            raise ValueError(
                f"discriminator: patch {h}x{w} must be a multiple of the sub-patch {size} "
                "(a power of two ≥ 4)"
            )
        x = jnp.concatenate([candidate, condition], axis=-1).astype(self.dtype) * 2.0 - 1.0
        x = to_sub_patches(x, size)
        features = self.channels
        # Halve the sub-patch until 4×4 is left, doubling the width (capped).
        for i in range(int(math.log2(size)) - 2):
            x = nn.Conv(features, (4, 4), strides=(2, 2), dtype=self.dtype, name=f"down{i}")(x)
            x = nn.leaky_relu(x, 0.2)
            features = min(features * 2, self.max_channels)
        x = x.reshape(x.shape[0], -1)
        logits = nn.Dense(1, dtype=self.dtype, name="logit")(x)
        return logits.astype(jnp.float32).reshape(b, h // size, w // size)


def make_discriminator(config) -> Discriminator:
    """Build the discriminator from a `config.discriminator` ConfigDict."""
    return Discriminator(
        channels=config.channels,
        sub_patch=config.sub_patch,
        max_channels=config.max_channels,
        dtype=jnp.dtype(config.dtype),
    )
