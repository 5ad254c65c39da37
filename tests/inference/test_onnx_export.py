"""The ONNX export against the JAX generator, run by onnxruntime on CPU."""

import jax
import numpy as np
import pytest

from jaxrestore.inference import loader, onnx_export
from jaxrestore.models import generator as generator_lib

ort = pytest.importorskip("onnxruntime")

# Two sizes that neither architecture's multiple divides (odd, and odd in one side).
SIZES = ((31, 45), (18, 27))


def random_generator(module) -> loader.Model:
    """`module` with every weight random (its zero-initialised layers too)."""
    shapes = jax.eval_shape(module.init, jax.random.key(1), *generator_lib.example_inputs(32))
    rng = np.random.default_rng(2)
    params = jax.tree.map(lambda x: 0.1 * rng.standard_normal(x.shape, np.float32), shapes)
    params = params["params"]
    return loader.Model(module, params, "generator")


@pytest.mark.parametrize(
    "module",
    [
        generator_lib.Generator(channels=8, num_blocks=2, conditioned=True),
        generator_lib.Generator(channels=8, num_blocks=1, residual_scale=0.5),
        generator_lib.UNetGenerator(
            channels=4, num_blocks=1, channel_mults=(1, 2, 2), conditioned=True
        ),
        generator_lib.UNetGenerator(
            channels=4, channel_mults=(1, 1, 1), scale_blocks=(2, 1, 1), conditioned=True
        ),
    ],
    ids=["residual", "residual-unconditioned", "unet", "unet-scale-blocks"],
)
def test_onnx_matches_jax_at_odd_sizes(module, tmp_path):
    model = random_generator(module)
    path = tmp_path / "generator.onnx"
    onnx_export.write(model, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names == (["image", "quality"] if module.conditioned else ["image"])
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["opset"] == str(onnx_export.OPSET) and meta["layout"] == "NCHW"
    apply = jax.jit(module.apply)
    rng = np.random.default_rng(0)
    for height, width in SIZES:
        image = rng.random((2, height, width, 3), np.float32)
        quality = np.array([20.0, 75.0], np.float32)
        expected = np.asarray(apply({"params": model.params}, image, quality))
        feeds = {"image": image.transpose(0, 3, 1, 2)}
        if module.conditioned:
            feeds["quality"] = quality
        (restored,) = session.run(None, feeds)
        assert restored.shape == (2, 3, height, width)
        difference = np.abs(restored.transpose(0, 2, 3, 1) - expected).max()
        # The network must change its input, or the test would pass on the skip alone.
        assert np.abs(expected - image).max() > 0.05
        assert difference < 1e-3, (height, width, difference)


def test_export_command_writes_the_packaged_generator(tmp_path, photo):
    from jaxrestore import export

    model = loader.load("ssim", "generator")
    image = photo[None, :41, :67].astype(np.float32) / 255.0
    quality = np.array([25.0], np.float32)
    expected = np.asarray(jax.jit(model.module.apply)({"params": model.params}, image, quality))
    nchw = image.transpose(0, 3, 1, 2)
    # The quality as an input, and built in (the image alone in: vs-mlrt, chaiNNer).
    for arguments, feeds in (
        ([], {"image": nchw, "quality": quality}),
        (["--quality", "25"], {"image": nchw}),
    ):
        out = tmp_path / f"ssim{len(arguments)}.onnx"
        assert export.run(["ssim", str(out), *arguments]) == 0
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == list(feeds)
        (restored,) = session.run(None, feeds)
        assert np.abs(restored.transpose(0, 2, 3, 1) - expected).max() < 1e-3
    assert "built in" in session.get_modelmeta().custom_metadata_map["quality_input"]
