"""The generator's 3×3 convolutions: XLA's forward, a hand-written gradient on CPU."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrestore.models import fast_conv
from jaxrestore.models import generator as generator_lib


def _lax_conv(x, kernel):
    return jax.lax.conv_general_dilated(
        x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


@pytest.mark.parametrize("shape", [(2, 9, 13, 5), (1, 16, 16, 8)])
def test_gradient_matches_xla(shape):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    kernel = jnp.asarray(rng.standard_normal((3, 3, shape[-1], 7)), jnp.float32)
    weights = jnp.asarray(rng.standard_normal(shape[:3] + (7,)), jnp.float32)

    def loss(conv):
        return lambda x, k: jnp.sum(jnp.tanh(conv(x, k)) * weights)

    np.testing.assert_array_equal(fast_conv.conv3x3(x, kernel), _lax_conv(x, kernel))
    ours = jax.grad(loss(fast_conv.conv3x3), argnums=(0, 1))(x, kernel)
    theirs = jax.grad(loss(_lax_conv), argnums=(0, 1))(x, kernel)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_only_plain_3x3_same_convolutions_take_the_fast_path(monkeypatch):
    calls = []
    monkeypatch.setattr(fast_conv, "conv3x3", lambda x, k: calls.append(1) or _lax_conv(x, k))
    x = jnp.ones((1, 8, 8, 4))
    dn = ("NHWC", "HWIO", "NHWC")
    fast_conv.conv_general_dilated(x, jnp.ones((3, 3, 4, 4)), (1, 1), "SAME", dimension_numbers=dn)
    assert len(calls) == 1
    for kernel, strides, padding, dilation in [
        ((4, 4, 4, 4), (1, 1), "SAME", None),  # 4×4
        ((3, 3, 4, 4), (2, 2), "SAME", None),  # strided
        ((3, 3, 4, 4), (1, 1), "VALID", None),  # no padding
        ((3, 3, 4, 4), (1, 1), "SAME", (2, 2)),  # dilated
    ]:
        out = fast_conv.conv_general_dilated(
            x, jnp.ones(kernel), strides, padding, rhs_dilation=dilation, dimension_numbers=dn
        )
        expected = jax.lax.conv_general_dilated(
            x, jnp.ones(kernel), strides, padding, rhs_dilation=dilation, dimension_numbers=dn
        )
        np.testing.assert_array_equal(out, expected)
    assert len(calls) == 1


def test_generator_gradients_equal_those_of_plain_convolutions(monkeypatch):
    model = generator_lib.Generator(channels=8, num_blocks=2, conditioned=True)
    x = jnp.asarray(np.random.default_rng(1).random((2, 20, 18, 3)), jnp.float32)
    q = jnp.array([10.0, 60.0])
    params = model.init(jax.random.key(0), x, q)["params"]
    params = jax.tree.map(lambda p: p + 0.05 * jnp.sin(jnp.arange(p.size).reshape(p.shape)), params)

    def grads():
        return jax.grad(lambda p: jnp.mean((model.apply({"params": p}, x, q) - 0.5) ** 2))(params)

    fast = grads()
    monkeypatch.setattr(fast_conv, "_covered", lambda *args: False)  # XLA's own gradient
    plain = grads()
    assert jax.tree.structure(fast) == jax.tree.structure(plain)
    for a, b in zip(jax.tree.leaves(fast), jax.tree.leaves(plain)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
