import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxrestore.models.generator import Generator, UNetGenerator, depth_to_space, make_generator

ARCHS = {
    "residual": lambda **kw: Generator(channels=8, num_blocks=2, **kw),
    "unet": lambda **kw: UNetGenerator(channels=8, num_blocks=1, **kw),
}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("shape", [(1, 37, 53, 3), (2, 8, 9, 3), (1, 64, 64, 3), (3, 15, 16, 3)])
def test_any_size_in_same_size_out_and_identity_at_init(shape, arch):
    model = ARCHS[arch]()
    x = jax.random.uniform(jax.random.key(1), shape)
    params = model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
    y = model.apply(params, x)
    assert y.shape == shape
    # The output convolution starts at zero: the fresh generator returns its input.
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x))


def perturbed(model, conditioned=False):
    example = (jnp.zeros((1, 32, 32, 3)),) + ((jnp.full((1,), 50.0),) if conditioned else ())
    params = model.init(jax.random.key(0), *example)
    rng = np.random.default_rng(3)
    return jax.tree.map(lambda p: 0.1 * rng.standard_normal(p.shape, np.float32), params)


def test_unet_sees_far_and_conditions_every_scale():
    """One changed pixel moves the multi-scale generator's output ~100 px away; the
    residual trunk's reach stays within a few blocks. The QF reaches every scale."""
    x = jax.random.uniform(jax.random.key(4), (1, 256, 256, 3))
    poked = x.at[0, 128, 128].add(0.5)
    reach = {}
    for arch, make in ARCHS.items():
        model = make()
        params = perturbed(model)
        moved = np.abs(np.asarray(model.apply(params, poked) - model.apply(params, x)))[0]
        rows, cols = np.nonzero(moved.max(-1) > 1e-6)
        reach[arch] = max(np.abs(rows - 128).max(), np.abs(cols - 128).max())
    assert reach["residual"] < 24 and reach["unet"] > 90, reach

    model = UNetGenerator(channels=8, num_blocks=1, conditioned=True)
    params = perturbed(model, conditioned=True)
    films = [k for k in params["params"] if k.startswith(("enc", "dec"))]
    scales = {k.split("_")[0] for k in films}
    assert scales == {"enc0", "enc1", "enc2", "enc3", "dec0", "dec1", "dec2"}
    assert all("film" in params["params"][k] for k in films)
    low, high = (model.apply(params, x, jnp.full((1,), q)) for q in (10.0, 80.0))
    assert float(jnp.abs(low - high).mean()) > 1e-3
    with pytest.raises(ValueError, match="needs the input's quality"):
        model.apply(params, x)


def test_scale_blocks_set_each_scales_depth():
    """`scale_blocks` gives each scale its own count (the coarsest runs it twice, all in
    the encoder); without it every scale has `num_blocks`."""

    def blocks(model):
        params = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))["params"]
        return sorted(k for k in params if k.startswith(("enc", "dec")))

    default = UNetGenerator(channels=4, num_blocks=2, channel_mults=(1, 1, 1))
    assert blocks(default) == sorted(
        ["enc0_0", "enc0_1", "enc1_0", "enc1_1", "enc2_0", "enc2_1", "enc2_2", "enc2_3"]
        + ["dec0_0", "dec0_1", "dec1_0", "dec1_1"]
    )
    deep_top = UNetGenerator(
        channels=4, num_blocks=2, channel_mults=(1, 1, 1), scale_blocks=(3, 1, 1)
    )
    assert blocks(deep_top) == sorted(
        ["enc0_0", "enc0_1", "enc0_2", "enc1_0", "enc2_0", "enc2_1"]
        + ["dec0_0", "dec0_1", "dec0_2", "dec1_0"]
    )
    x = jax.random.uniform(jax.random.key(1), (1, 21, 30, 3))
    params = deep_top.init(jax.random.key(0), x)
    np.testing.assert_array_equal(np.asarray(deep_top.apply(params, x)), np.asarray(x))
    config = ml_collections.ConfigDict(
        {"channels": 4, "num_blocks": 1, "residual_scale": 1.0, "dtype": "float32"}
    )
    config.arch, config.channel_mults, config.scale_blocks = "unet", (1, 1, 1), (3, 1, 1)
    assert make_generator(config).scale_blocks == (3, 1, 1)


def test_make_generator_reads_arch_and_defaults_to_residual():
    config = ml_collections.ConfigDict(
        {"channels": 8, "num_blocks": 1, "residual_scale": 1.0, "dtype": "float32"}
    )
    assert type(make_generator(config)) is Generator  # configs written before `arch`
    config.arch, config.channel_mults = "unet", [1, 2]
    model = make_generator(config)
    assert type(model) is UNetGenerator and model.channel_mults == (1, 2)
    assert model.multiple == 4
    config.arch = "transformer"
    with pytest.raises(ValueError, match="model.arch='transformer' is not one of residual, unet"):
        make_generator(config)


def test_trained_weights_change_output_and_params_are_size_independent():
    model = Generator(channels=8, num_blocks=2)
    params = model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
    params = jax.tree.map(lambda p: p + 0.05, params)
    small = jax.random.uniform(jax.random.key(2), (1, 21, 33, 3))
    large = jax.random.uniform(jax.random.key(3), (1, 96, 80, 3))
    assert float(jnp.abs(model.apply(params, small) - small).mean()) > 1e-3
    assert model.apply(params, large).shape == large.shape


def test_depth_to_space_places_channels_as_2x2_cells():
    x = jnp.arange(12, dtype=jnp.float32).reshape(1, 1, 1, 12)
    y = depth_to_space(x, 2)
    assert y.shape == (1, 2, 2, 3)
    np.testing.assert_array_equal(np.asarray(y[0, 0, 0]), [0, 1, 2])
    np.testing.assert_array_equal(np.asarray(y[0, 0, 1]), [3, 4, 5])
    np.testing.assert_array_equal(np.asarray(y[0, 1, 0]), [6, 7, 8])
    np.testing.assert_array_equal(np.asarray(y[0, 1, 1]), [9, 10, 11])
