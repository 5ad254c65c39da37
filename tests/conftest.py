"""Shared fixtures: tiny configs on the embedded images, no download needed."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from jaxrestore.media import image as image_io

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Every test (and every `jaxrestore.main` it starts) sees 8 CPU devices, so the
# sharded code paths run as on an 8-accelerator host.
os.environ.setdefault("JAX_NUM_CPU_DEVICES", "8")
# One XLA compilation cache for the session, shared with every `jaxrestore.main` a test
# starts: the same tiny steps are compiled by many tests and runs.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="jaxrestore-test-xla-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)


@pytest.fixture
def tiny_config():
    from jaxrestore.training import configs

    return configs.load("ssim:tiny")


MODEL = {"channels": 8, "num_blocks": 2, "residual_scale": 1.0, "dtype": "float32"}


def small_generator():
    """The real generator, conditioned, with every weight random (its output layer
    too, which training would otherwise have to move away from zero)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxrestore.models import generator as generator_lib

    model = generator_lib.Generator(channels=8, num_blocks=2, conditioned=True)
    params = model.init(jax.random.key(1), jnp.zeros((1, 32, 32, 3)), jnp.full((1,), 50.0))
    rng = np.random.default_rng(2)
    params = jax.tree.map(lambda x: 0.1 * rng.standard_normal(x.shape, np.float32), params)
    return model, params["params"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A params-only export of `small_generator`, as the restore command loads it."""
    from jaxrestore.inference import loader

    _, params = small_generator()
    out = tmp_path_factory.mktemp("export") / "small"
    info = {"stage": "ssim", "kind": "generator", "model": {**MODEL, "conditioned": True}}
    loader.write_export(out, params, info)
    return out


@pytest.fixture(scope="module")
def photo():
    from jaxrestore.data import sources

    return image_io.read_image(str(sources.embedded_dir() / "chelsea.png"))  # 451x300


def restore_run(workdir, config):
    """(state, step, loop counters) of WORKDIR's newest readable checkpoint, restored as
    the train loop does, onto the mesh `config.mesh` asks for."""
    from jaxrestore.data import pipeline
    from jaxrestore.training import checkpoint, loop, sharding

    abstract, _ = loop.build(config, sharding.make_mesh(config.mesh))
    manager = checkpoint.make_manager(workdir, config)
    data_iterator = iter(pipeline.make_train_dataset(config))
    try:
        return checkpoint.restore_latest(manager, abstract, data_iterator, config)
    finally:
        manager.close()
