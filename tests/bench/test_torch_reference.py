"""The PyTorch reference (jaxrestore.bench.torch_reference) computes what the JAX code computes:
generator outputs, losses, gradients and the stage-1 update. It backs the `reference`
benchmark of `python -m jaxrestore.bench`; torch is optional, so without it this skips."""

import jax
import ml_collections
import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="the PyTorch benchmark reference needs torch (pip install torch)"
)

from helpers import ROOT  # noqa: E402

from jaxrestore import losses  # noqa: E402
from jaxrestore.bench import torch_reference as tr  # noqa: E402
from jaxrestore.inference import loader  # noqa: E402
from jaxrestore.models import generator as generator_lib  # noqa: E402
from jaxrestore.training import state as state_lib  # noqa: E402
from jaxrestore.training.stages import ssim  # noqa: E402

WEIGHTS = "jaxrestore/weights/ssim_universal"


@pytest.fixture(scope="module")
def packaged():

    config, params = loader.read_params(ROOT / WEIGHTS)
    return config, params


def random_generator(seed, **fields):
    """The JAX generator with every parameter random, so that none of the zero-initialised
    layers (the output conv, FiLM) hides a mismatch."""
    model = generator_lib.Generator(**fields)
    example = generator_lib.example_inputs(16)
    params = jax.eval_shape(model.init, jax.random.key(seed), *example)  # shapes only
    rng = np.random.default_rng(seed)
    params = jax.tree.map(lambda x: 0.1 * rng.standard_normal(x.shape, np.float32), params)
    config = {"residual_scale": 1.0, "conditioned": False, "dtype": "float32", **fields}
    return model, params["params"], config


def torch_apply(model, image, quality=None):
    with torch.no_grad():
        q = None if quality is None else torch.from_numpy(quality)
        return model(torch.from_numpy(image), q).numpy()


@pytest.mark.parametrize("shape", [(2, 48, 64, 3), (1, 37, 53, 3)])
def test_packaged_weights_agree(packaged, shape):
    config, params = packaged
    model = generator_lib.make_generator(config.model)
    reference = tr.from_flax(params, config.model).eval()  # as the benchmark runs it
    rng = np.random.default_rng(sum(shape))
    image = rng.random(shape, dtype=np.float32)
    quality = rng.uniform(5, 95, shape[0]).astype(np.float32)
    expected = np.asarray(jax.jit(model.apply)({"params": params}, image, quality))
    got = torch_apply(reference, image, quality)
    assert got.shape == shape
    assert np.abs(expected - image).mean() > 1e-2  # the model does change the image
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    # Another quality changes the output, in both.
    other = torch_apply(reference, image, quality + 20)
    assert np.abs(other - got).max() > 1e-3
    with pytest.raises(ValueError, match="needs the input's quality"):
        reference(torch.from_numpy(image))


@pytest.mark.parametrize(
    "channels_last, mode, layout",
    [
        (None, "train", torch.contiguous_format),  # the train step's default
        (None, "eval", torch.channels_last),  # inference's default
        (True, "train", torch.channels_last),
        (False, "eval", torch.contiguous_format),
    ],
)
def test_unconditioned_random_generator_agrees(channels_last, mode, layout):
    fields = {"channels": 16, "num_blocks": 2, "residual_scale": 0.5}
    model, params, config = random_generator(3, **fields)
    reference = tr.from_flax(params, config, channels_last=channels_last)
    reference.train(mode == "train")
    assert reference.memory_format == layout
    assert reference.block0.conv1.weight.is_contiguous(memory_format=layout)
    assert not reference.conditioned
    image = np.random.default_rng(4).random((2, 21, 30, 3), dtype=np.float32)
    expected = np.asarray(jax.jit(model.apply)({"params": params}, image))
    assert np.abs(expected - image).mean() > 1e-2
    np.testing.assert_allclose(torch_apply(reference, image), expected, rtol=0, atol=1e-4)


def test_losses_agree():
    assert (tr.SSIM_WINDOW, tr.SSIM_SIGMA) == (losses.SSIM_WINDOW, losses.SSIM_SIGMA)
    rng = np.random.default_rng(5)
    target = rng.random((3, 40, 52, 3), dtype=np.float32)
    restored = np.clip(target + 0.1 * rng.standard_normal(target.shape, np.float32), 0, 1)
    restored[0] = rng.random(restored.shape[1:], dtype=np.float32)  # a very different one
    restored[2, :20] = 0.5  # flat regions: the variance clipping
    restored[1, :, :16], target[1, :, :16] = 0.25, 0.75
    a, b = torch.from_numpy(restored), torch.from_numpy(target)
    np.testing.assert_allclose(
        tr.ssim(a, b).numpy(), np.asarray(jax.jit(losses.ssim)(restored, target)), rtol=0, atol=1e-5
    )
    np.testing.assert_allclose(
        float(tr.ssim_loss(a, b)),
        float(jax.jit(losses.ssim_loss)(restored, target)),
        rtol=0,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        float(tr.l1_loss(a, b)), float(losses.l1_loss(restored, target)), rtol=0, atol=1e-5
    )


def jax_tree_of(reference, values):
    """Torch tensors named like `reference`'s parameters, in the flax params layout."""
    tree = {}
    for name, value in values.items():
        *module, kind = name.split(".")
        value = value.detach().numpy()
        if value.ndim == 4:
            value = value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
        elif value.ndim == 2:
            value = value.T
        node = tree
        for key in module:
            node = node.setdefault(key, {})
        node["kernel" if kind == "weight" else "bias"] = value
    return tree


def uint8_batch(seed, shape):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 256, shape, dtype=np.uint8)
    noise = rng.integers(-30, 31, shape)
    degraded = np.clip(target.astype(int) + noise, 0, 255).astype(np.uint8)
    quality = rng.uniform(5, 95, shape[0]).astype(np.float32)
    return {"degraded": degraded, "target": target, "quality": quality}


LOSS = ml_collections.ConfigDict({"ssim_weight": 1.0, "l1_weight": 8.0})


def test_loss_gradients_and_train_steps_agree():
    """The gradient of the stage-1 loss w.r.t. every parameter, then two optimizer steps
    (clipping and AdamW with weight decay), agree between JAX and PyTorch."""
    fields = {"channels": 16, "num_blocks": 2, "residual_scale": 0.5, "conditioned": True}
    model, params, config = random_generator(6, **fields)
    reference = tr.from_flax(params, config)
    batches = [uint8_batch(7, (2, 32, 32, 3)), uint8_batch(8, (2, 32, 32, 3))]

    def as_torch(batch):
        return [torch.from_numpy(batch[k]) for k in ("degraded", "target", "quality")]

    loss_and_grad = jax.value_and_grad(
        lambda p, batch: ssim.generator_loss(p, model.apply, batch, LOSS), has_aux=True
    )
    loss_and_grad = jax.jit(loss_and_grad)
    (loss, _), grads = loss_and_grad(params, batches[0])
    torch_loss = tr.generator_loss(reference, *as_torch(batches[0]), LOSS)
    torch_loss.backward()
    np.testing.assert_allclose(float(torch_loss.detach()), float(loss), rtol=1e-5)
    grads = jax.device_get(grads)
    torch_grads = jax_tree_of(reference, {n: p.grad for n, p in reference.named_parameters()})
    assert jax.tree.structure(torch_grads) == jax.tree.structure(grads)
    for (path, g), t in zip(*map(jax.tree_util.tree_leaves_with_path, (grads, torch_grads))):
        relative = np.linalg.norm(t[1] - g) / np.linalg.norm(g)
        assert relative < 1e-3, (jax.tree_util.keystr(path), relative)
    assert np.sqrt(sum(np.sum(np.square(g)) for g in jax.tree.leaves(grads))) > 1.0  # clipped

    # A constant learning rate in JAX's own optimizer: no warmup, cosine to 1× the peak.
    opt = ml_collections.ConfigDict(
        {
            "learning_rate": 1e-3,
            "warmup_steps": 0,
            "end_learning_rate_fraction": 1.0,
            "b1": 0.9,
            "b2": 0.99,
            "weight_decay": 0.05,
            "grad_clip_norm": 1.0,
        }
    )
    tx = state_lib.make_optimizer(opt, total_steps=10)
    state = jax.jit(lambda p: state_lib.TrainState.create(apply_fn=model.apply, params=p, tx=tx))(
        params
    )
    step = tr.make_train_step(reference, LOSS, opt)
    # ssim.train_step's update, with the gradient function compiled above (compiling
    # train_step itself would double this test's time).
    apply_gradients = jax.jit(lambda state, grads: state.apply_gradients(grads=grads))
    for batch in batches:
        (loss, _), grads = loss_and_grad(state.params, batch)
        state = apply_gradients(state, grads)
        torch_loss = step(*as_torch(batch))
        np.testing.assert_allclose(float(torch_loss), float(loss), rtol=1e-5)
    updated = jax_tree_of(reference, dict(reference.named_parameters()))
    moved = jax.tree.map(lambda new, old: np.asarray(new) - np.asarray(old), state.params, params)
    torch_moved = jax.tree.map(lambda new, old: new - np.asarray(old), updated, params)
    moved, torch_moved = jax.tree.leaves(moved), jax.tree.leaves(torch_moved)
    difference = np.sqrt(sum(np.sum(np.square(a - b)) for a, b in zip(moved, torch_moved)))
    assert difference < 1e-3 * np.sqrt(sum(np.sum(np.square(a)) for a in moved))
    assert max(np.abs(a - b).max() for a, b in zip(moved, torch_moved)) < 1e-4


def test_mismatched_params_raise():
    fields = {"channels": 16, "num_blocks": 2}
    _, params, config = random_generator(9, **fields)
    with pytest.raises(
        ValueError, match=r"wrong shape down/kernel \(4, 4, 3, 16\), expected \(4, 4, 3, 8\)"
    ):
        tr.from_flax(params, {**config, "channels": 8})
    with pytest.raises(ValueError, match="missing block2/conv1/kernel"):
        tr.from_flax(params, {**config, "num_blocks": 3})
    with pytest.raises(ValueError, match="not used block1/conv1/bias"):
        tr.from_flax(params, {**config, "num_blocks": 1})
    with pytest.raises(ValueError, match="missing embed1/kernel"):
        tr.from_flax(params, {**config, "conditioned": True})
    assert tr.from_flax({"params": params}, config).channels == 16  # a wrapper is fine
