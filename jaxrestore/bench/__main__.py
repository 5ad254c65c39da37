"""Benchmarks: host pipeline, train steps, inference, device scaling, PyTorch, onnxruntime.

    python -m jaxrestore.bench [NAME ...] [--quick] [--repeats N]

NAME: pipeline, train, infer, scaling, reference, onnx (all when none is named). Each
measurement is one JSON object on stdout: `name`, `config`, `device`, `unit`,
`median`, `min`, `max` and `spread` ((max − min) / median) over `repeats`, plus
derived rates (patches/s, megapixels/s, frames/s) and, for the reference, the
JAX/PyTorch time ratio `jax_over_torch` (the onnxruntime/JAX one, `onnx_over_jax`,
for onnx). Progress goes to stderr.

`--quick` runs a small version of each (small patches, batches and frames) that
ends in a couple of minutes on a 2-core CPU; without it the sizes are the
configs' own and frames are 720p and 1080p, meant for a GPU.

- pipeline: patches/s of the grain input pipeline (JPEG and H.264 degradations)
  with 1 and N worker processes, against the patches/s the train step consumes on
  this device (`consumed_by_train_step`, `pipeline_over_step`).
- train: step time and patches/s of the SSIM step and of the full GAN iteration
  (discriminator update + generator update), `default` and `cpu` sizes, float32
  and bfloat16 compute; batches stay on the device, no host sync inside a repeat.
- infer: megapixels/s and frames/s of the packaged generator through the restore
  path (`jaxrestore.inference.Restorer`, blending on the device), whole frames
  and tiled (with `tiled_over_whole`), float32 and bfloat16, and the model alone
  on device-resident frames.
- scaling: SSIM step time with 1 and 8 devices at a fixed per-device batch
  (on CPU, 8 simulated devices; each count in its own process).
- reference: the generator in PyTorch (`jaxrestore.bench.torch_reference`, needs
  `pip install torch`) loaded with the same weights; its outputs are checked
  against JAX and the two are timed side by side (inference and a training step).
- onnx: the packaged generator exported to ONNX (`inference.onnx_export`) in
  onnxruntime (CPU) against JAX on the same frame, repeats interleaved: one JSON
  line with both timings, `onnx_over_jax` and the largest output difference.

One module a benchmark (`pipeline`, `train`, `infer`, `scaling`, `reference`,
`onnx_runtime`),
what they share in `common`; this module is the command line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from jaxrestore.bench import infer, onnx_runtime, pipeline, reference, scaling, train
from jaxrestore.bench.common import log

BENCHMARKS = {
    "pipeline": pipeline.run,
    "train": train.run,
    "infer": infer.run,
    "scaling": scaling.run,
    "reference": reference.run,
    "onnx": onnx_runtime.run,
}
NAMES = tuple(BENCHMARKS)


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jaxrestore.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"any of {', '.join(NAMES)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes: minutes on a CPU")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default 3/5)")
    args, extra = parser.parse_known_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.names[:1] == ["_reference"]:
        reference.worker(args)
        return 0
    if args.names[:1] == ["_cases"]:
        train.case_worker(json.loads(args.names[1]))
        return 0
    unknown = [name for name in args.names if name not in NAMES]
    if unknown or extra:
        parser.error(f"unknown benchmark(s) {' '.join(unknown + extra)}; choose from {NAMES}")
    for name in args.names or NAMES:
        start = time.perf_counter()
        BENCHMARKS[name](args)
        log(f"{name}: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run())
