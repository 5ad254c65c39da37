"""A generator as an ONNX model, for onnxruntime, TensorRT, vs-mlrt or chaiNNer.

    session = onnxruntime.InferenceSession("ssim.onnx")
    restored = session.run(None, {"image": nchw, "quality": np.array([30], np.float32)})[0]

The graph is written layer by layer from the flax params, the same operations in
the same order as `models.generator` (both architectures), with standard ONNX
operators only (opset `OPSET`): Conv, ConvTranspose, Gemm, LeakyRelu, DepthToSpace,
edge Pad and Slice. Nothing is traced, so height and width stay symbolic: the
padding to the generator's multiple (2, or 2^len(channel_mults)) and the crop back
are computed in the graph from the input's shape.

Inputs (`LAYOUT`, also in the file's metadata): `image` float32 [N, 3, H, W], RGB
in [0, 1], any H and W; `quality` float32 [N], the JPEG quality factor 1–100, only
when the generator is quality-conditioned and no fixed quality is built in (`quality=`
at export: one input, for tools that feed the image alone, e.g. vs-mlrt and
chaiNNer). Output `restored` float32 [N, 3, H, W]
in [0, 1] before clipping (clip and round as the restore command does). The graph
computes in float32 whatever `model.dtype` the network was trained with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxrestore import __version__
from jaxrestore.inference.loader import Model
from jaxrestore.models import generator as generator_lib

OPSET = 17  # what TensorRT 8.6+, onnxruntime 1.14+ and vs-mlrt all read
LAYOUT = "NCHW"
LEAKY_SLOPE = 0.2  # models.generator's leaky_relu slope


class _Graph:
    """Nodes and initializers under construction; every method returns its output's name."""

    def __init__(self):
        self.nodes: list = []
        self.initializers: list = []
        self._names: set[str] = set()

    def _fresh(self, name: str) -> str:
        base, count = name, 1
        while name in self._names:
            count += 1
            name = f"{base}_{count}"
        self._names.add(name)
        return name

    def constant(self, name: str, value) -> str:
        """A new initializer (float values as float32, integers as int64)."""
        from onnx import numpy_helper

        value = np.asarray(value)
        value = value.astype(np.int64 if value.dtype.kind in "iu" else np.float32)
        name = self._fresh(name)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def shared(self, name: str, value) -> str:
        """The one initializer `name` of a small constant many nodes take."""
        return name if name in self._names else self.constant(name, value)

    def op(self, op_type: str, inputs: list[str], name: str, **attributes) -> str:
        from onnx import helper

        output = self._fresh(name)
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attributes))
        return output


def _array(value) -> np.ndarray:
    return np.asarray(value, np.float32)


SPATIAL = ("axes23", [2, 3])  # the H and W axes of NCHW


def _conv(graph: _Graph, x: str, layer: dict, name: str, stride: int = 1, pad: int = 1) -> str:
    """flax `nn.Conv` (HWIO kernel, 'SAME'): on the even sizes the graph pads to, 'SAME'
    is a fixed padding (1 for 3×3 and 4×4 stride 2, 0 for 2×2 stride 2)."""
    kernel = _array(layer["kernel"]).transpose(3, 2, 0, 1)  # HWIO -> OIHW
    inputs = [x, graph.constant(f"{name}.weight", kernel)]
    inputs.append(graph.constant(f"{name}.bias", _array(layer["bias"])))
    return graph.op(
        "Conv",
        inputs,
        name,
        kernel_shape=list(kernel.shape[2:]),
        strides=[stride, stride],
        pads=[pad] * 4,
    )


def _conv_transpose(graph: _Graph, x: str, layer: dict, name: str) -> str:
    """flax `nn.ConvTranspose` 2×2 stride 2: lax's transposed convolution correlates with
    the kernel as stored, ONNX's scatters it, so the kernel is flipped."""
    kernel = np.flip(_array(layer["kernel"]), (0, 1)).transpose(2, 3, 0, 1)  # -> (in, out, kh, kw)
    inputs = [x, graph.constant(f"{name}.weight", kernel)]
    inputs.append(graph.constant(f"{name}.bias", _array(layer["bias"])))
    return graph.op("ConvTranspose", inputs, name, kernel_shape=[2, 2], strides=[2, 2])


def _dense(graph: _Graph, x: str, kernel: np.ndarray, bias: np.ndarray, name: str) -> str:
    weight = graph.constant(f"{name}.weight", _array(kernel))
    return graph.op("Gemm", [x, weight, graph.constant(f"{name}.bias", _array(bias))], name)


def _leaky(graph: _Graph, x: str, name: str) -> str:
    return graph.op("LeakyRelu", [x], name, alpha=LEAKY_SLOPE)


def _quality_embedding(graph: _Graph, quality: str, params: dict) -> str:
    """[N] QF -> [N, E]: `generator.quality_embedding`."""
    column = graph.op("Unsqueeze", [quality, graph.constant("axis1", [1])], "qf")
    scaled = graph.op("Div", [column, graph.constant("hundred", 100.0)], "qf_over_100")
    hidden = scaled
    for layer in ("embed1", "embed2"):
        dense = _dense(graph, hidden, params[layer]["kernel"], params[layer]["bias"], layer)
        hidden = _leaky(graph, dense, f"{layer}.act")
    return hidden


def _residual_block(
    graph: _Graph, x: str, params: dict, name: str, scale: float, embedding: str | None
) -> str:
    """`generator.ResidualBlock`: conv, FiLM by the quality embedding, leaky ReLU, conv, skip."""
    y = _conv(graph, x, params["conv1"], f"{name}.conv1")
    if embedding is not None:
        kernel, bias = _array(params["film"]["kernel"]), _array(params["film"]["bias"])
        channels = kernel.shape[1] // 2
        spatial = graph.shared(*SPATIAL)
        # y · (1 + scale) + shift, with the 1 folded into the scale's bias.
        factor = _dense(
            graph, embedding, kernel[:, :channels], bias[:channels] + 1, f"{name}.scale"
        )
        shift = _dense(graph, embedding, kernel[:, channels:], bias[channels:], f"{name}.shift")
        factor = graph.op("Unsqueeze", [factor, spatial], f"{name}.scale4d")
        shift = graph.op("Unsqueeze", [shift, spatial], f"{name}.shift4d")
        y = graph.op("Add", [graph.op("Mul", [y, factor], f"{name}.film"), shift], f"{name}.filmed")
    y = _conv(graph, _leaky(graph, y, f"{name}.act"), params["conv2"], f"{name}.conv2")
    if scale != 1.0:
        y = graph.op("Mul", [y, graph.constant(f"{name}.scale", scale)], f"{name}.scaled")
    return graph.op("Add", [x, y], f"{name}.out")


def _residual_trunk(graph: _Graph, h: str, module, params: dict, embedding: str | None) -> str:
    """`Generator` between its entry convolution and its trunk_out skip."""
    for i in range(module.num_blocks):
        h = _residual_block(
            graph, h, params[f"block{i}"], f"block{i}", module.residual_scale, embedding
        )
    return h


def _unet_trunk(graph: _Graph, h: str, module, params: dict, embedding: str | None) -> str:
    """`UNetGenerator`'s encoder–decoder between its entry convolution and trunk_out."""
    levels = len(module.channel_mults)
    skips = []
    for level in range(levels):
        if level:
            h = _conv(graph, h, params[f"pool{level}"], f"pool{level}", stride=2, pad=0)
        blocks = module.blocks_at(level) * (2 if level == levels - 1 else 1)
        for i in range(blocks):
            name = f"enc{level}_{i}"
            h = _residual_block(graph, h, params[name], name, module.residual_scale, embedding)
        skips.append(h)
    for level in range(levels - 2, -1, -1):
        up = _conv_transpose(graph, h, params[f"unpool{level}"], f"unpool{level}")
        h = graph.op("Add", [up, skips[level]], f"skip{level}")
        for i in range(module.blocks_at(level)):
            name = f"dec{level}_{i}"
            h = _residual_block(graph, h, params[name], name, module.residual_scale, embedding)
    return h


def _architecture(module) -> tuple[str, int]:
    """(arch, the multiple its input sides are padded to)."""
    if isinstance(module, generator_lib.UNetGenerator):
        return "unet", module.multiple
    if isinstance(module, generator_lib.Generator):
        return "residual", 2
    raise ValueError(f"ONNX export covers the generators, not {type(module).__name__}")


def generator_graph(model: Model, quality: float | None = None):
    """The `onnx.ModelProto` of a loaded generator (`loader.load(source, 'generator')`);
    a conditioned one takes the quality as an input, or has `quality` built in."""
    from onnx import TensorProto, checker, helper

    module, params = model.module, model.params
    arch, multiple = _architecture(module)
    params = _host(params)
    graph = _Graph()
    image = "image"
    inputs = [helper.make_tensor_value_info(image, TensorProto.FLOAT, ["N", 3, "H", "W"])]
    embedding = None
    if model.conditioned:
        if quality is None:
            inputs.append(helper.make_tensor_value_info("quality", TensorProto.FLOAT, ["N"]))
            given = "quality"
        else:  # a [1] constant: its embedding broadcasts over the batch
            given = graph.constant("fixed_quality", [float(quality)])
        embedding = _quality_embedding(graph, given, params)

    # Edge-pad H and W up to the multiple ((m - size % m) % m at the end), crop at the end.
    shape = graph.op("Shape", [image], "shape")
    sides = graph.op(
        "Slice", [shape, graph.constant("from2", [2]), graph.constant("to4", [4])], "sides"
    )
    m = graph.constant("multiple", [multiple])
    remainder = graph.op("Mod", [sides, m], "remainder")
    extra = graph.op("Mod", [graph.op("Sub", [m, remainder], "short"), m], "extra")
    pads = graph.op("Concat", [graph.constant("no_pad", [0] * 6), extra], "pads", axis=0)
    x = graph.op("Pad", [image, pads], "padded", mode="edge")
    centred = graph.op("Sub", [x, graph.constant("half", 0.5)], "centred")
    h = graph.op("Mul", [centred, graph.constant("two", 2.0)], "scaled")

    down = _conv(graph, h, params["down"], "down", stride=2, pad=1)
    entry = _leaky(graph, down, "down.act")
    trunk = (_unet_trunk if arch == "unet" else _residual_trunk)(
        graph, entry, module, params, embedding
    )
    trunk = graph.op("Add", [_conv(graph, trunk, params["trunk_out"], "trunk_out"), entry], "trunk")
    correction = _conv(graph, trunk, params["upsample"], "upsample")
    full = graph.op("DepthToSpace", [correction], "subpixel", blocksize=2, mode="DCR")
    restored = graph.op("Add", [x, full], "sum")
    cropped = graph.op(
        "Slice",
        [restored, graph.constant("zeros2", [0, 0]), sides, graph.shared(*SPATIAL)],
        "restored",
    )
    outputs = [helper.make_tensor_value_info(cropped, TensorProto.FLOAT, ["N", 3, "H", "W"])]
    onnx_graph = helper.make_graph(
        graph.nodes, "jaxrestore_generator", inputs, outputs, graph.initializers
    )
    proto = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="jaxrestore",
        producer_version=__version__,
        doc_string=__doc__.split("\n\n")[0],
    )
    proto.ir_version = 8  # onnxruntime ≥ 1.14 and TensorRT 8.6 read IR 8 (opset 17)
    helper.set_model_props(proto, metadata(model, arch, quality))
    checker.check_model(proto, full_check=True)
    return proto


def _host(params) -> dict:
    """The params tree as nested dicts of numpy arrays (off the device)."""
    if hasattr(params, "items"):
        return {key: _host(value) for key, value in params.items()}
    return np.asarray(params)


def metadata(model: Model, arch: str, quality: float | None = None) -> dict[str, str]:
    """What the file says about itself (ONNX metadata_props)."""
    if not model.conditioned:
        given = "none (the generator is not quality-conditioned)"
    elif quality is None:
        given = "quality: float32 [N], JPEG quality factor 1-100 of each image"
    else:
        given = f"none (built in: JPEG quality factor {quality:g})"
    return {
        "opset": str(OPSET),
        "layout": LAYOUT,
        "input": "image: float32 [N, 3, H, W] RGB in [0, 1], any H and W",
        "quality_input": given,
        "output": "restored: float32 [N, 3, H, W] RGB, clip to [0, 1]",
        "arch": arch,
        "source": str(model.source),
        "jaxrestore_version": __version__,
    }


def write(model: Model, out: str | Path, quality: float | None = None) -> int:
    """Write `model`'s generator (`quality`: built in, see `generator_graph`) to `out`
    (.onnx) atomically; returns its size in bytes."""
    from jaxrestore import files

    proto = generator_graph(model, quality)
    out = Path(out)
    with files.atomic_output(out, overwrite=True) as temporary:
        Path(temporary).write_bytes(proto.SerializeToString())
    return out.stat().st_size
