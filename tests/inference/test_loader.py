"""The model loader: exports and workdirs read, checked against the model they claim."""

import jax
import numpy as np
import pytest
from helpers import small_generator

from jaxrestore.inference import loader
from jaxrestore.models import generator as generator_lib


def test_init_from_takes_an_export_and_names_a_mismatch(tmp_path, model_dir):
    model, params = small_generator()
    like = jax.device_put(params)
    loaded = loader.load_params_like(model_dir, "generator", like)
    for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    wider = generator_lib.Generator(channels=16, num_blocks=2, conditioned=True)
    other = wider.init(jax.random.key(0), *generator_lib.example_inputs(32))
    with pytest.raises(ValueError, match="does not match config.model"):
        loader.load_params_like(model_dir, "generator", other["params"])
    predictor = tmp_path / "predictor"
    loader.write_export(predictor, params, {"stage": "quality", "model": {}})
    with pytest.raises(ValueError, match="quality predictor, not a generator"):
        loader.load_params_like(predictor, "generator", like)
    with pytest.raises(FileNotFoundError, match="nor an export"):
        loader.load_params_like(tmp_path, "generator", like)


def test_packaged_names_load_the_packaged_networks():
    ssim = loader.load("ssim")
    assert ssim.kind == "generator" and ssim.conditioned and ssim.export_info["stage"] == "ssim"
    assert ssim.path == loader.PACKAGED["ssim"]
    predictor = loader.load("quality", "quality")
    assert predictor.kind == "quality" and predictor.config.stage == "quality"
    with pytest.raises(ValueError, match="^quality: a quality predictor, not a generator$"):
        loader.load("quality", "generator")
    # Every packaged network's params match the model its model.json describes.
    for name in loader.PACKAGED_GENERATORS:
        model = loader.load(name, "generator")
        count = sum(np.size(x) for x in jax.tree.leaves(model.params))
        assert count == sum(np.size(x) for x in jax.tree.leaves(ssim.params)) > 100_000
