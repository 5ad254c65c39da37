"""Shared fixtures: tiny configs on the embedded images, no download needed."""

import atexit
import os
import shutil
import tempfile

import pytest

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

from helpers import MODEL, small_generator  # noqa: E402  (after the environment above)

from jaxrestore.media import image as image_io  # noqa: E402


@pytest.fixture
def tiny_config():
    from jaxrestore.training import configs

    return configs.load("ssim:tiny")


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
