"""Fully convolutional residual generator (Galteri et al., ICCV 2017 / TMM 2019).

A stride-2 convolution takes the compressed image straight to half resolution,
a trunk of residual blocks works there, and a sub-pixel (×2 depth-to-space)
convolution returns a correction at full resolution that is added to the input
(global skip). No feature map lives at full resolution, which keeps the
network cheap on CPU while its receptive field covers several 8×8 JPEG
blocks. The last convolution starts at zero, so a freshly initialised
generator is the identity and training starts from "as good as the input".

Conditioned on quality (`conditioned=True`), the generator also takes the
JPEG-scale quality factor of each input (given by the user or estimated by the
quality predictor): a small MLP embeds QF/100 and every residual block scales
and shifts its hidden features by it (FiLM). The FiLM projections start at
zero, so a fresh conditioned generator is the unconditioned one. An
unconditioned generator ignores the quality argument.

`UNetGenerator` (`model.arch = "unet"`) is the multi-scale option: the same
stride-2 entry and sub-pixel exit, but between them an encoder–decoder of
residual blocks at 1/2, 1/4, 1/8, ... of the input's resolution (channels
growing by `channel_mults`), with each scale's encoder features added back into
the decoder. Its receptive field spans hundreds of pixels, many JPEG blocks, at
a cost per pixel of about two `Generator` trunks of the same width, because the
wider scales work on fewer pixels. The quality embedding modulates every block
at every scale. Same interface, same identity at initialisation.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrestore.models import fast_conv

# 3×3 convolutions whose gradient is fast on CPU (identical outputs; see fast_conv).
Conv3x3 = functools.partial(
    nn.Conv, kernel_size=(3, 3), conv_general_dilated=fast_conv.conv_general_dilated
)


def depth_to_space(x: jax.Array, factor: int) -> jax.Array:
    """Sub-pixel shuffle: [B, H, W, C·f²] -> [B, H·f, W·f, C]."""
    b, h, w, c = x.shape
    out_c = c // (factor * factor)
    x = x.reshape(b, h, w, factor, factor, out_c)
    x = x.transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h * factor, w * factor, out_c)


class ResidualBlock(nn.Module):
    """conv-act-conv with an identity skip; the branch is scaled for stable deep trunks.

    With a quality embedding, the first conv's output is modulated (FiLM)."""

    channels: int
    residual_scale: float = 1.0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, embedding: jax.Array | None = None) -> jax.Array:
        y = Conv3x3(self.channels, dtype=self.dtype, name="conv1")(x)
        if embedding is not None:
            film = nn.Dense(
                2 * self.channels, kernel_init=nn.initializers.zeros, dtype=self.dtype, name="film"
            )(embedding)
            scale, shift = jnp.split(film[:, None, None, :], 2, axis=-1)
            y = y * (1.0 + scale) + shift
        y = nn.leaky_relu(y, 0.2)
        y = Conv3x3(self.channels, dtype=self.dtype, name="conv2")(y)
        return x + self.residual_scale * y


# The quality given where none is known or needed: an unconditioned generator ignores
# it, and `init` only needs its shape.
PLACEHOLDER_QUALITY = 50.0


class Generator(nn.Module):
    """Maps a compressed RGB image in [0, 1] (any H, W) to its restoration in [0, 1]."""

    channels: int = 64
    num_blocks: int = 16
    residual_scale: float = 1.0
    dtype: jnp.dtype = jnp.float32
    conditioned: bool = False
    embedding_size: int = 64

    @nn.compact
    def __call__(self, image: jax.Array, quality: jax.Array | None = None) -> jax.Array:
        """`image` [B, H, W, 3] in [0, 1]; `quality` [B] (or scalar) QF 1–100, needed
        when conditioned."""
        # The stride-2 trunk needs even sizes; edge-pad odd ones and crop at the end.
        x, h, embedding = _entry(self, image, quality, multiple=2)
        down = nn.Conv(self.channels, (4, 4), strides=(2, 2), dtype=self.dtype, name="down")(h)
        down = nn.leaky_relu(down, 0.2)
        trunk = down
        for i in range(self.num_blocks):
            trunk = ResidualBlock(
                self.channels, self.residual_scale, dtype=self.dtype, name=f"block{i}"
            )(trunk, embedding)
        trunk = Conv3x3(self.channels, dtype=self.dtype, name="trunk_out")(trunk) + down
        return _exit(self, x, trunk, image.shape[1:3])


def _entry(module: nn.Module, image: jax.Array, quality, multiple: int):
    """(the input edge-padded to a multiple of `multiple`, it scaled to [-1, 1] in the
    compute dtype, the quality embedding or None): both generators' first lines,
    called inside their compact `__call__` (the embedding's layers are theirs)."""
    embedding = None
    if module.conditioned:
        embedding = quality_embedding(quality, image.shape[0], module.embedding_size)
    height, width = image.shape[1:3]
    pad = ((0, 0), (0, -height % multiple), (0, -width % multiple), (0, 0))
    x = jnp.pad(image, pad, mode="edge")
    return x, (x.astype(module.dtype) - 0.5) * 2.0, embedding


def _exit(module: nn.Module, x: jax.Array, trunk: jax.Array, size) -> jax.Array:
    """The zero-initialised sub-pixel correction added to the padded input `x`, cropped
    back to `size` (H, W): both generators' last lines."""
    correction = Conv3x3(
        3 * 4, kernel_init=nn.initializers.zeros, dtype=module.dtype, name="upsample"
    )(trunk)
    restored = x + depth_to_space(correction, 2).astype(jnp.float32)
    return restored[:, : size[0], : size[1], :]


def quality_embedding(quality, batch: int, size: int) -> jax.Array:
    """[batch, size]: the MLP embedding of QF/100 (`quality` [batch] or a scalar).
    Called inside a compact module, whose `embed1`/`embed2` layers it makes."""
    if quality is None:
        raise ValueError("a quality-conditioned generator needs the input's quality")
    q = jnp.broadcast_to(jnp.asarray(quality, jnp.float32), (batch,)) / 100.0
    embedding = nn.leaky_relu(nn.Dense(size, name="embed1")(q[:, None]), 0.2)
    return nn.leaky_relu(nn.Dense(size, name="embed2")(embedding), 0.2)


class UNetGenerator(nn.Module):
    """The multi-scale generator (see the module docstring); any H, W in, same out.

    `num_blocks` residual blocks per scale on each side (encoder and decoder) and
    twice that at the coarsest scale, unless `scale_blocks` gives each scale's count
    (one per entry of `channel_mults`; the coarsest scale has no decoder side and runs
    its count twice in the encoder, as with `num_blocks`). Scale i works at
    1/2^(i+1) of the input with `channels · channel_mults[i]` channels."""

    channels: int = 64
    num_blocks: int = 2
    channel_mults: tuple[int, ...] = (1, 2, 4, 4)
    scale_blocks: tuple[int, ...] = ()
    residual_scale: float = 1.0
    dtype: jnp.dtype = jnp.float32
    conditioned: bool = False
    embedding_size: int = 64

    @property
    def multiple(self) -> int:
        """Input sides are edge-padded to a multiple of this, and cropped back."""
        return 2 ** len(self.channel_mults)

    def blocks_at(self, level: int) -> int:
        """Residual blocks on each side of scale `level` (encoder, then decoder); the
        coarsest scale, all encoder, has twice this many."""
        return self.scale_blocks[level] if self.scale_blocks else self.num_blocks

    @nn.compact
    def __call__(self, image: jax.Array, quality: jax.Array | None = None) -> jax.Array:
        x, h, embedding = _entry(self, image, quality, self.multiple)
        widths = [self.channels * mult for mult in self.channel_mults]
        h = nn.leaky_relu(
            nn.Conv(widths[0], (4, 4), strides=(2, 2), dtype=self.dtype, name="down")(h), 0.2
        )
        entry, skips = h, []
        for level, features in enumerate(widths):
            if level:  # 2×2 stride-2: each coarse pixel sees one 2×2 cell, no overlap
                h = nn.Conv(
                    features, (2, 2), strides=(2, 2), dtype=self.dtype, name=f"pool{level}"
                )(h)
            blocks = self.blocks_at(level) * (2 if level == len(widths) - 1 else 1)
            for i in range(blocks):
                h = ResidualBlock(
                    features, self.residual_scale, dtype=self.dtype, name=f"enc{level}_{i}"
                )(h, embedding)
            skips.append(h)
        for level in range(len(widths) - 2, -1, -1):
            features = widths[level]
            up = nn.ConvTranspose(
                features, (2, 2), strides=(2, 2), dtype=self.dtype, name=f"unpool{level}"
            )(h)
            h = up + skips[level]
            for i in range(self.blocks_at(level)):
                h = ResidualBlock(
                    features, self.residual_scale, dtype=self.dtype, name=f"dec{level}_{i}"
                )(h, embedding)
        h = Conv3x3(widths[0], dtype=self.dtype, name="trunk_out")(h) + entry
        return _exit(self, x, h, image.shape[1:3])


ARCHITECTURES = ("residual", "unet")


def make_generator(model_config) -> Generator | UNetGenerator:
    """Build the generator from a `config.model` ConfigDict (`arch` 'residual', the
    default and what configs without the field hold, or 'unet')."""
    common = dict(
        channels=model_config.channels,
        num_blocks=model_config.num_blocks,
        residual_scale=model_config.residual_scale,
        dtype=jnp.dtype(model_config.dtype),
        conditioned=bool(model_config.get("conditioned", False)),
    )
    arch = model_config.get("arch", "residual")
    if arch == "residual":
        return Generator(**common)
    if arch == "unet":
        mults = tuple(int(m) for m in model_config.get("channel_mults", (1, 2, 4, 4)))
        scale_blocks = tuple(int(b) for b in model_config.get("scale_blocks", ()))
        return UNetGenerator(channel_mults=mults, scale_blocks=scale_blocks, **common)
    raise ValueError(f"model.arch={arch!r} is not one of {', '.join(ARCHITECTURES)}")


def example_inputs(size: int) -> tuple[jax.Array, jax.Array]:
    """(image, quality) of the shapes the generator's `init` takes, a `size`² square."""
    return jnp.zeros((1, size, size, 3), jnp.float32), jnp.full((1,), PLACEHOLDER_QUALITY)
