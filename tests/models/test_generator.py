import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrestore.models.generator import Generator, depth_to_space


@pytest.mark.parametrize("shape", [(1, 37, 53, 3), (2, 8, 9, 3), (1, 64, 64, 3), (3, 15, 16, 3)])
def test_any_size_in_same_size_out_and_identity_at_init(shape):
    model = Generator(channels=8, num_blocks=2)
    x = jax.random.uniform(jax.random.key(1), shape)
    params = model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
    y = model.apply(params, x)
    assert y.shape == shape
    # The output convolution starts at zero: the fresh generator returns its input.
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x))


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
