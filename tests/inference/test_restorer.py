"""The tiled restorer: tiles blend to the whole-image result, one compilation per
tile shape."""

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import small_generator

from jaxrestore.inference import restorer as restorer_lib
from jaxrestore.inference.loader import Model


def test_tiled_equals_untiled_and_compiles_once_per_tile_shape(photo):
    model, params = small_generator()
    # Reach of 8 channels × 2 blocks: 4×4 stride-2 conv + 6 convs at half resolution,
    # under 20 px; an overlap of 64 keeps 24 px from every inner tile edge.
    tiled = restorer_lib.Restorer(
        Model(model, params), tiling=restorer_lib.Tiling(tile=128, overlap=64, batch=3)
    )
    a = tiled.restore_float(photo, 30.0) / 255.0
    whole = model.apply({"params": params}, jnp.asarray(photo[None] / 255.0, jnp.float32), 30.0)
    b = np.clip(np.asarray(whole[0]), 0.0, 1.0)
    assert np.abs(b - photo / 255.0).mean() > 0.01  # the network really changes the image
    assert np.abs(a - b).max() <= 1e-3
    assert tiled.traces == 1  # every tile of the 451x300 photo has one shape

    counter = restorer_lib.Restorer(
        Model(model, params), tiling=restorer_lib.Tiling(tile=256, overlap=64, batch=2)
    )
    for height, width in ((100, 150), (90, 170), (300, 420)):
        counter.restore_pixels(photo[:height, :width], 40.0)
    # 100x150 and 90x170 pad to one 128x192 tile; 300x420 is cut into 256² tiles.
    assert counter.traces == 2


def test_a_unet_export_loads_and_its_tiles_blend_to_the_whole_image(tmp_path, photo):
    import jax

    from jaxrestore.inference import loader
    from jaxrestore.models import generator as generator_lib

    config = {"arch": "unet", "channel_mults": [1, 2, 4], "channels": 8, "num_blocks": 1}
    config |= {"residual_scale": 1.0, "dtype": "float32", "conditioned": True}
    model = generator_lib.UNetGenerator(
        channels=8, num_blocks=1, channel_mults=(1, 2, 4), conditioned=True
    )
    params = model.init(jax.random.key(1), *generator_lib.example_inputs(32))["params"]
    rng = np.random.default_rng(5)
    params = jax.tree.map(lambda x: 0.05 * rng.standard_normal(x.shape, np.float32), params)
    loader.write_export(tmp_path / "unet", params, {"stage": "ssim", "model": config})
    loaded = loader.load(tmp_path / "unet", "generator")
    assert type(loaded.module) is generator_lib.UNetGenerator and loaded.conditioned

    whole = restorer_lib.Restorer(loaded, tiling=restorer_lib.Tiling(tile=512))
    tiled = restorer_lib.Restorer(loaded, tiling=restorer_lib.Tiling(tile=128, overlap=64))
    a, b = (r.restore_float(photo, 30.0) / 255.0 for r in (whole, tiled))
    assert np.abs(a - photo / 255.0).mean() > 0.01  # the network really changes the image
    # Its reach is wider than the overlap, so tiles differ a little (0.0006 measured).
    assert np.abs(a - b).mean() < 2e-3
    # Weights of another size than model.json says are named as such.
    config["channels"] = 16
    loader.write_export(tmp_path / "wrong", params, {"stage": "ssim", "model": config})
    with pytest.raises(ValueError, match="do not match its model config .*channel_mults"):
        loader.load(tmp_path / "wrong", "generator")
