"""The tiled restorer: tiles blend to the whole-image result, one compilation per
tile shape."""

import jax.numpy as jnp
import numpy as np
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
