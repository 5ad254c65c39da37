"""`onnx`: the packaged generator in onnxruntime next to JAX, timed in one run.

The ONNX file is written by `inference.onnx_export` from the same weights; its
output is checked against JAX's and the two are timed on the same frames, their
repeats interleaved so both see the same machine load: the model alone (JAX on a
device-resident frame, onnxruntime on the host array), one frame at a time.
"""

from __future__ import annotations

import importlib.util
import tempfile
import time
from pathlib import Path

import numpy as np

from jaxrestore.bench.common import device_name, emit, log, summarise, synthetic_frames
from jaxrestore.inference import loader, onnx_export

QUALITY = 30.0


def frame_size(quick: bool) -> tuple[str, int, int]:
    return ("360p", 360, 640) if quick else ("720p", 720, 1280)


def run(args) -> list[dict]:
    import jax
    import jax.numpy as jnp

    if importlib.util.find_spec("onnxruntime") is None:
        log("onnx: skipped, onnxruntime is not installed (pip install 'jaxrestore[onnx]')")
        return []
    import onnxruntime

    packaged = loader.load("ssim", "generator")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ssim.onnx"
        onnx_export.write(packaged, path)
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    label, height, width = frame_size(args.quick)
    frame = synthetic_frames(height, width, 1).astype(np.float32) / 255.0
    quality = np.full((1,), QUALITY, np.float32)
    apply = jax.jit(packaged.module.apply)
    on_device = jax.device_put(jnp.asarray(frame))
    nchw = np.ascontiguousarray(frame.transpose(0, 3, 1, 2))
    feeds = {"image": nchw, "quality": quality}

    def run_jax():
        return apply({"params": packaged.params}, on_device, quality).block_until_ready()

    def run_onnx():
        return session.run(None, feeds)[0]

    log(f"onnx {label}: JAX and onnxruntime …")
    difference = float(np.abs(np.asarray(run_jax()) - run_onnx().transpose(0, 2, 3, 1)).max())
    samples: dict[str, list[float]] = {"jax": [], "onnxruntime": []}
    for _ in range(args.repeats):  # interleaved: both see the same load
        for name, call in (("jax", run_jax), ("onnxruntime", run_onnx)):
            start = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - start)
    jax_stats, ort_stats = summarise(samples["jax"]), summarise(samples["onnxruntime"])
    record = {
        "name": "onnx/infer",
        "config": {
            "frame": label,
            "height": height,
            "width": width,
            "batch": 1,
            "onnxruntime": onnxruntime.__version__,
            "provider": session.get_providers()[0],
        },
        "device": device_name(),
        **jax_stats,
        "unit": "s/frame",
        "onnxruntime": ort_stats,
        "onnx_over_jax": ort_stats["median"] / jax_stats["median"],
        "max_abs_diff": difference,
        "megapixels_per_s": height * width / 1e6 / jax_stats["median"],
        "onnx_megapixels_per_s": height * width / 1e6 / ort_stats["median"],
    }
    emit(record)
    return [record]
