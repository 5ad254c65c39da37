"""The tiled restorer: tiles blend to the whole-image result, one compilation per
tile shape."""

import types

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


def host_blended(restorer, images, quality, whole=False):
    """The tiled restoration as it was done before the device path: every tile's
    result brought to the host, weighted and summed in NumPy (float32)."""
    count, height, width = images.shape[:3]
    overlap, batch = restorer.tiling.overlap, restorer.tiling.batch
    tile_h, tile_w, full_h, full_w = restorer._geometry(height, width, whole)
    padded = restorer_lib.edge_pad(images, full_h, full_w)
    positions = [
        (i, y, x)
        for i in range(count)
        for y in restorer_lib.tile_starts(full_h, tile_h, overlap)
        for x in restorer_lib.tile_starts(full_w, tile_w, overlap)
    ]
    total = np.zeros((count, full_h, full_w, 3), np.float32)
    weight = np.zeros((count, full_h, full_w, 1), np.float32)
    q = jnp.full((batch,), quality, jnp.float32)
    for first in range(0, len(positions), batch):
        group = positions[first : first + batch]
        filled = group + group[-1:] * (batch - len(group))
        tiles = np.stack([padded[i, y : y + tile_h, x : x + tile_w] for i, y, x in filled])
        results = np.asarray(restorer._apply(restorer.params, tiles, q))
        for (i, y, x), result in zip(group, results):
            w = np.outer(
                restorer_lib.blend_weights(full_h, tile_h, y, overlap),
                restorer_lib.blend_weights(full_w, tile_w, x, overlap),
            )[..., None]
            total[i, y : y + tile_h, x : x + tile_w] += result * w
            weight[i, y : y + tile_h, x : x + tile_w] += w
    return (total / weight)[:, :height, :width]


def test_device_blending_equals_host_blending(photo):
    model, params = small_generator()
    # 12 tiles of 128² (odd sides) in batches of 5: the last batch is filled with copies.
    restorer = restorer_lib.Restorer(
        Model(model, params), tiling=restorer_lib.Tiling(tile=128, overlap=48, batch=5)
    )
    image = photo[:211, :347]  # rows 0, 80, 84; columns 0, 80, 160, 220
    expected = host_blended(restorer, image[None], 30.0)[0]
    assert np.abs(restorer.restore_float(image, 30.0) - expected).max() <= 1e-3
    restored = restorer.restore_pixels(image, 30.0)
    assert restored.dtype == np.uint8 and restored.shape == image.shape
    assert restored.flags.writeable and restored.flags.c_contiguous  # as before
    assert np.abs(restored.astype(int) - np.round(expected)).max() <= 1
    assert np.abs(restored.astype(int) - image).mean() > 1.0  # restored, not copied
    # Video frames larger than a tile: 2 frames' 24 tiles batched together, and a
    # shorter last batch of frames on the same (batch-sized) sums.
    frames = np.stack([photo[:211, :347], photo[50:261, 60:407]])
    expected = host_blended(restorer, frames, 40.0, whole=True)
    assert np.abs(restorer.restore_frames(frames, 40.0) - np.round(expected)).max() <= 1
    assert np.abs(restorer.restore_frames(frames[1:], 40.0) - np.round(expected[1:])).max() <= 1
    # Grayscale with alpha through `restore`: the layout is the caller's, as before.
    gray = np.stack([photo[:211, :347, 0], photo[:211, :347, 1]], axis=-1)
    out = restorer.restore(gray, 30.0)
    assert out.shape == gray.shape and (out[..., 1] == gray[..., 1]).all()
    assert restorer.traces == 1  # one tile shape, one batch shape


def test_images_of_several_sizes_share_one_generator_and_nearby_sizes_their_sums(photo):
    model, params = small_generator()
    restorer = restorer_lib.Restorer(
        Model(model, params), tiling=restorer_lib.Tiling(tile=128, overlap=32, batch=2)
    )
    progress = types.SimpleNamespace(total=0, n=0, refresh=lambda: None)
    progress.update = lambda count: setattr(progress, "n", progress.n + count)
    restorer.progress = progress
    restorer.restore_pixels(photo[:300, :451], 40.0)  # sums 384 x 512
    compiled = restorer_lib.add_tiles._cache_size(), restorer_lib.cut_tiles._cache_size()
    for height, width in ((299, 450), (270, 401), (199, 257)):
        restorer.restore_pixels(photo[:height, :width], 40.0)
    assert restorer.traces == 1  # every image in 128² tiles
    # 299 x 450 and 270 x 401 share the 384 x 512 sums; 199 x 257 needs 256 x 384.
    # Cutting (cheap to compile) is compiled for each size.
    assert restorer_lib.add_tiles._cache_size() == compiled[0] + 1
    assert restorer_lib.cut_tiles._cache_size() == compiled[1] + 3
    assert progress.n == progress.total == 15 + 15 + 12 + 6  # tiles, counted when done
