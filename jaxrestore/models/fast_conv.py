"""3×3 'SAME' convolutions with a gradient that XLA's CPU backend computes fast.

On CPU, XLA's own gradient of a convolution is slow: for the generator's 3×3,
64-channel convolutions the backward pass costs 5–15× the forward (measured
with jaxlib 0.10 on 2 cores: two stacked convolutions on 2×128×128×64 take 52 ms
forward and 804 ms for the gradient). Here the gradient is written out
instead: the input's gradient is a forward convolution of the output's gradient
with the flipped, transposed kernel, and the kernel's gradient is nine
contractions of the shifted input with the output's gradient — ops XLA's CPU
backend runs at full speed (320 ms for the same case; the `train` and
`reference` benchmarks show the effect on whole steps).

`conv_general_dilated` has `lax.conv_general_dilated`'s signature, for
`flax.linen.Conv(conv_general_dilated=...)`. It takes this path only for what
it covers (CPU, stride 1, 3×3 kernel, SAME padding, NHWC/HWIO, no dilation or
groups) and hands anything else, and every other backend, to XLA unchanged.
The forward computation is XLA's in every case, so outputs are identical.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

NHWC = ("NHWC", "HWIO", "NHWC")
PADDING = ((1, 1), (1, 1))


def _forward(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return lax.conv_general_dilated(x, kernel, (1, 1), PADDING, dimension_numbers=NHWC)


@jax.custom_vjp
def conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """[B, H, W, Cin] * [3, 3, Cin, Cout] -> [B, H, W, Cout], stride 1, zero padding 1."""
    return _forward(x, kernel)


def _conv3x3_fwd(x, kernel):
    return _forward(x, kernel), (x, kernel)


def _conv3x3_bwd(residuals, grad):
    x, kernel = residuals
    grad = grad.astype(x.dtype)
    # A correlation's transpose: the flipped kernel with its in/out features swapped.
    grad_x = _forward(grad, jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2))
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    height, width = x.shape[1:3]
    grad_kernel = jnp.stack(
        [
            jnp.stack(
                [
                    jnp.einsum(
                        "bhwi,bhwo->io",
                        padded[:, dy : dy + height, dx : dx + width, :],
                        grad,
                        preferred_element_type=jnp.float32,
                    )
                    for dx in range(3)
                ]
            )
            for dy in range(3)
        ]
    )
    return grad_x.astype(x.dtype), grad_kernel.astype(kernel.dtype)


conv3x3.defvjp(_conv3x3_fwd, _conv3x3_bwd)


def _is_same_3x3(padding) -> bool:
    if isinstance(padding, str):
        return padding.upper() == "SAME"
    return tuple(tuple(p) for p in padding) == PADDING


def _covered(rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers, groups):
    if jax.default_backend() != "cpu" or rhs.ndim != 4 or tuple(rhs.shape[:2]) != (3, 3):
        return False
    if tuple(window_strides) != (1, 1) or groups != 1 or not _is_same_3x3(padding):
        return False
    if any(d is not None and tuple(d) != (1, 1) for d in (lhs_dilation, rhs_dilation)):
        return False
    specs = lax.conv_dimension_numbers((1, 1, 1, 1), rhs.shape, dimension_numbers)
    return specs == lax.conv_dimension_numbers((1, 1, 1, 1), rhs.shape, NHWC)


def conv_general_dilated(
    lhs,
    rhs,
    window_strides,
    padding,
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=None,
    feature_group_count=1,
    precision=None,
    **kwargs,
):
    """`lax.conv_general_dilated`, with `conv3x3`'s gradient where it applies."""
    if (
        not kwargs
        and precision is None
        and _covered(
            rhs,
            window_strides,
            padding,
            lhs_dilation,
            rhs_dilation,
            dimension_numbers,
            feature_group_count,
        )
    ):
        return conv3x3(lhs, rhs)
    return lax.conv_general_dilated(
        lhs,
        rhs,
        window_strides,
        padding,
        lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count,
        precision=precision,
        **kwargs,
    )
