"""The tiled restore path before and after blending moved to the device, side by side.

    PYTHONPATH=. python docs/bench/tiles_side_by_side.py OLD_RESTORER_PY [ssim|small] [REPEATS]

OLD_RESTORER_PY: the restorer.py of the commit before (`git show
196e92b:jaxrestore/inference/restorer.py > /tmp/restorer_main.py`), loaded beside
this checkout's in one process. The cases' repeats are interleaved, forwards and
backwards in turn, so that both see the same load on a shared machine. A 1080p
frame (`synthetic_frames`), float32, 512² tiles (`restore_pixels`) and the whole
frame (`restore_frames`), at batch 1 and 4; `ssim`: the packaged generator
(64 × 8), `small`: 8 channels × 2 blocks, so that the path around the network
shows. One JSON line a batch size: seconds per frame (median, min, max; and the
median of this process's CPU seconds, less sensitive to other jobs) and the
largest difference between the two tiled outputs, in uint8 levels.
"""

import importlib.util
import json
import sys
import time

import jax
import numpy as np

spec = importlib.util.spec_from_file_location("restorer_old", sys.argv[1])
old = importlib.util.module_from_spec(spec)
sys.modules["restorer_old"] = old
spec.loader.exec_module(old)

from jaxrestore.bench.common import synthetic_frames  # noqa: E402
from jaxrestore.inference import loader  # noqa: E402
from jaxrestore.inference import restorer as new  # noqa: E402
from jaxrestore.models import generator as generator_lib  # noqa: E402

MODEL = sys.argv[2] if len(sys.argv) > 2 else "ssim"
REPEATS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
if MODEL == "ssim":
    packaged = loader.load("ssim", "generator")
else:
    module = generator_lib.Generator(channels=8, num_blocks=2, conditioned=True)
    params = module.init(jax.random.key(1), *generator_lib.example_inputs(32))["params"]
    packaged = loader.Model(module, params)
frames = synthetic_frames(1080, 1920, 4)
for batch in (1, 4):
    cases = {}
    for name, lib in (("before", old), ("after", new)):
        tiled = lib.Restorer(packaged, None, lib.Tiling(tile=512, batch=batch))
        whole = lib.Restorer(packaged, None, lib.Tiling(tile=2048, overlap=0, batch=batch))
        cases[f"tiled {name}"] = (lambda r=tiled: r.restore_pixels(frames[0], 30.0), 1)
        cases[f"whole {name}"] = (
            lambda r=whole, f=frames[:batch]: r.restore_frames(f, 30.0),
            batch,
        )
    outputs = {label: run() for label, (run, _) in cases.items()}  # compiled here
    diff = np.abs(outputs["tiled before"].astype(int) - outputs["tiled after"]).max()
    samples = {label: [] for label in cases}
    busy = {label: [] for label in cases}
    for repeat in range(REPEATS):
        order = list(cases.items())
        for label, (run, count) in order[::-1] if repeat % 2 else order:  # no side first
            start, cpu = time.perf_counter(), time.process_time()
            run()
            samples[label].append((time.perf_counter() - start) / count)
            busy[label].append((time.process_time() - cpu) / count)
    record = {"model": MODEL, "batch": batch, "frame": "1080p", "tile": 512}
    record["tiled_max_diff"] = int(diff)
    for label, s in samples.items():
        record[label] = {"median": float(np.median(s)), "min": min(s), "max": max(s)}
        record[label]["cpu_median"] = float(np.median(busy[label]))
    print(json.dumps(record), flush=True)
