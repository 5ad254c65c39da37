import dm_pix as pix
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from jaxrestore import losses, metrics
from jaxrestore.data import degrade


@pytest.fixture(scope="module")
def pair():
    original = data.astronaut()[100:300, 50:330]
    return original, degrade.jpeg_roundtrip(original, 15)


def to_batch(image):
    return jnp.asarray(image[None] / 255.0, jnp.float32)


def test_ssim_matches_skimage_on_the_same_pair(pair):
    original, jpeg = pair
    reference = structural_similarity(
        original,
        jpeg,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=-1,
    )
    ours = float(losses.ssim(to_batch(original), to_batch(jpeg))[0])
    assert 0.5 < reference < 0.99
    assert abs(ours - reference) < 1e-5
    assert abs(float(losses.ssim_loss(to_batch(jpeg), to_batch(original))) - (1 - reference)) < 1e-5


def test_psnr_matches_skimage(pair):
    original, jpeg = pair
    reference = peak_signal_noise_ratio(original, jpeg, data_range=255)
    assert abs(float(metrics.psnr(to_batch(original), to_batch(jpeg), 1.0)[0]) - reference) < 1e-3


def test_fast_blur_gradient_equals_dm_pix_default_filter():
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.random((2, 40, 33, 3)), jnp.float32)
    b = jnp.asarray(rng.random((2, 40, 33, 3)), jnp.float32)
    ours = jax.grad(lambda x: losses.ssim_loss(x, b))(a)
    reference = jax.grad(lambda x: 1.0 - jnp.mean(pix.ssim(x, b)))(a)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(reference), atol=1e-8, rtol=1e-4)
    assert float(jnp.abs(ours).max()) > 0


def test_quantize_rounds_to_the_8bit_grid():
    x = jnp.asarray([-0.2, 0.0, 0.5, 1.3, 100.4 / 255])
    np.testing.assert_allclose(np.asarray(losses.quantize(x)) * 255, [0, 0, 128, 255, 100])
