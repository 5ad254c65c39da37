"""Benchmarks: host pipeline, train steps, inference, device scaling, PyTorch reference.

    python -m jaxrestore.bench [NAME ...] [--quick] [--repeats N]

NAME: pipeline, train, infer, scaling, reference (all when none is named). Each
measurement is one JSON object on stdout: `name`, `config`, `device`, `unit`,
`median`, `min`, `max` and `spread` ((max − min) / median) over `repeats`, plus
derived rates (patches/s, megapixels/s, frames/s) and, for the reference, the
JAX/PyTorch time ratio `jax_over_torch`. Progress goes to stderr.

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
  path (`jaxrestore.restorer_lib.Restorer`, host blending included), whole frames
  and tiled, float32 and bfloat16, and the model alone on device-resident frames.
- scaling: SSIM step time with 1 and 8 devices at a fixed per-device batch
  (on CPU, 8 simulated devices; each count in its own process).
- reference: the generator in PyTorch (`jaxrestore.bench.torch_reference`, needs
  `pip install torch`) loaded with the same weights; its outputs are checked
  against JAX and the two are timed side by side (inference and a training step).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

from jaxrestore.inference import loader
from jaxrestore.inference import restorer as restorer_lib
from jaxrestore.inference.loader import Model

NAMES = ("pipeline", "train", "infer", "scaling", "reference")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def device_name() -> str:
    import jax

    devices = jax.devices()
    kind = devices[0].device_kind
    return f"{devices[0].platform}:{kind} x{len(devices)}"


def summarise(samples: list[float]) -> dict[str, float]:
    """Median, extremes and relative spread of repeated timings."""
    values = np.asarray(samples, np.float64)
    median = float(np.median(values))
    return {
        "median": median,
        "min": float(values.min()),
        "max": float(values.max()),
        "spread": float((values.max() - values.min()) / median) if median else 0.0,
        "repeats": len(samples),
    }


def time_repeats(run: Callable[[], None], repeats: int, warmup: int = 1) -> list[float]:
    """Wall time of `run()` (which must block until its work is done), `repeats` times
    after `warmup` untimed calls."""
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return samples


def load_config(name: str, variant: str | None = None):
    """`configs/NAME.py[:variant]` as a ConfigDict, unlocked: the cases resize it."""
    from jaxrestore.training import configs

    config = configs.load(f"{name}:{variant}" if variant else name)
    config.unlock()
    return config


def photo_source(config) -> None:
    """Point `config.data` at the assembled photos, or at the embedded ones without them."""
    from jaxrestore.data import sources

    try:
        sources.resolve(config.data)
    except (FileNotFoundError, ValueError):
        config.data.source = "embedded"


def synthetic_batch(batch: int, patch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A training batch of smooth random images and a noisier 'degraded' copy."""
    rng = np.random.default_rng(seed)
    base = rng.random((batch, patch // 8 + 1, patch // 8 + 1, 3))
    target = np.repeat(np.repeat(base, 8, axis=1), 8, axis=2)[:, :patch, :patch]
    target = (target * 255).astype(np.uint8)
    noise = rng.integers(-12, 13, target.shape)
    degraded = np.clip(target.astype(int) + noise, 0, 255).astype(np.uint8)
    return {
        "degraded": degraded,
        "target": target,
        "quality": rng.integers(10, 60, (batch,)).astype(np.int32),
        "kind": np.zeros((batch,), np.int32),
    }


# ---------------------------------------------------------------------------- train


def train_case(config, steps_per_repeat: int, repeats: int) -> dict:
    """Time `config`'s step (SSIM step or GAN iteration), in this process, on synthetic
    batches that stay on the device."""
    import jax

    from jaxrestore.training import loop, sharding

    mesh = sharding.make_mesh(config.mesh)
    state, phases = loop.build(config, mesh)
    step_fn = phases[-1][1]
    batch = sharding.to_global(synthetic_batch(config.batch_size, config.data.patch_size), mesh)
    holder = {"state": state}

    def run():
        state = holder["state"]
        metrics = None
        for _ in range(steps_per_repeat):
            state, metrics = step_fn(state, batch)
        jax.block_until_ready((state, metrics))
        holder["state"] = state

    start = time.perf_counter()
    run()  # compiles
    compile_s = time.perf_counter() - start
    samples = [t / steps_per_repeat for t in time_repeats(run, repeats, warmup=0)]
    stats = summarise(samples)
    return {
        **stats,
        "unit": "s/step",
        "compile_s": compile_s,
        "patches_per_s": config.batch_size / stats["median"],
    }


def case_config(spec: dict):
    """The config of one train case: configs/STAGE.py:SIZE with the spec's overrides."""
    config = load_config(spec["stage"], spec["size"])
    if spec["stage"] == "gan":
        config.init_from = "given"  # the adversarial iteration alone, no stage-1 phase
        config.discriminator.dtype = spec["dtype"]
    config.model.dtype = spec["dtype"]
    if spec.get("quick"):
        config.batch_size, config.data.patch_size = 8, 64
        if spec["stage"] == "gan":
            config.discriminator.sub_patch = 16
    if spec.get("devices"):
        config.mesh.data = spec["devices"]
        config.batch_size = spec["per_device_batch"] * spec["devices"]
    return config


def case_devices(spec: dict) -> int:
    """How many CPU devices the case's process gets: the config's own (training uses
    `config.mesh.cpu_devices`), or the spec's."""
    if spec.get("devices"):
        return spec["devices"]
    return load_config(spec["stage"], spec["size"]).mesh.cpu_devices or 1


def run_worker(arguments: list[str], cpu_devices: int, what: str) -> list[dict]:
    """`python -m jaxrestore.bench ARGUMENTS` in a fresh process (the CPU device count is
    fixed per process; an explicit $JAX_NUM_CPU_DEVICES wins); its JSON lines."""
    import jax

    env = dict(os.environ)
    if jax.default_backend() == "cpu" and "JAX_NUM_CPU_DEVICES" not in os.environ:
        env["JAX_NUM_CPU_DEVICES"] = str(cpu_devices)
    command = [sys.executable, "-m", "jaxrestore.bench", *arguments]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-3000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def run_cases(specs: list[dict]) -> list[dict]:
    """Run train cases in fresh processes, one per CPU device count (fixed per process),
    and return their measurements in order."""
    results: dict[int, dict] = {}
    groups: dict[int, list[int]] = {}
    for index, spec in enumerate(specs):
        groups.setdefault(case_devices(spec), []).append(index)
    for devices, indices in groups.items():
        batch = json.dumps([specs[i] for i in indices])
        results.update(zip(indices, run_worker(["_cases", batch], devices, f"train cases {batch}")))
    return [results[i] for i in range(len(specs))]


def run_case(spec: dict) -> dict:
    return run_cases([spec])[0]


def case_worker(specs: list[dict]) -> None:
    for spec in specs:
        log(f"train case {spec['stage']}/{spec['size']} {spec['dtype']} …")
        config = case_config(spec)
        steps = spec.get("steps_per_repeat", 2 if spec.get("quick") else 10)
        result = train_case(config, steps, spec["repeats"])
        result["config"] = {
            "stage": spec["stage"],
            "size": spec["size"],
            "dtype": spec["dtype"],
            "batch_size": config.batch_size,
            "patch_size": config.data.patch_size,
            "channels": config.model.channels,
            "num_blocks": config.model.num_blocks,
        }
        result["device"] = device_name()
        print(json.dumps(result), flush=True)


def bench_train(args) -> list[dict]:
    specs = []
    for stage in ("ssim", "gan"):
        for size in ("default", "cpu"):
            for dtype in ("float32", "bfloat16"):
                if args.quick and size == "default" and dtype == "bfloat16":
                    continue  # --quick: bfloat16 for the small size only
                specs.append({"stage": stage, "size": size, "dtype": dtype, "quick": args.quick})
                specs[-1]["repeats"] = args.repeats
    records = []
    for spec, result in zip(specs, run_cases(specs)):
        record = {"name": f"train/{spec['stage']}/{spec['size']}", **result}
        emit(record)
        records.append(record)
    return records


# ------------------------------------------------------------------------- pipeline


def pipeline_rate(config, batches: int, repeats: int) -> dict:
    """Steady-state patches/s: grain reads ahead (threads, or worker processes), so
    first drain what it buffered while starting, then time what it produces."""
    from jaxrestore.data import pipeline

    iterator = iter(pipeline.make_train_dataset(config))
    for _ in range(-(-PIPELINE_WARMUP_PATCHES // config.batch_size)):
        next(iterator)

    def run():
        for _ in range(batches):
            next(iterator)

    samples = [t / (batches * config.batch_size) for t in time_repeats(run, repeats, warmup=0)]
    stats = summarise(samples)
    return {**stats, "unit": "s/patch", "patches_per_s": 1.0 / stats["median"]}


# More than grain's read-ahead buffer (500 elements by default) plus the workers' own.
PIPELINE_WARMUP_PATCHES = 1024


def bench_pipeline(args) -> list[dict]:
    import jax

    records = []
    size = "cpu" if jax.default_backend() == "cpu" else "default"
    log(f"pipeline: the {size} SSIM step's consumption …")
    spec = {"stage": "ssim", "size": size, "dtype": "float32", "quick": args.quick}
    consumed = run_case({**spec, "repeats": args.repeats})["patches_per_s"]
    # One worker, the step config's own count (0 = in the training process) and a pool.
    pool = 2 if args.quick else load_config("ssim").data.workers
    workers_list = sorted({1, load_config("ssim", size).data.workers, pool})
    for degradation in ("jpeg", "h264"):
        for workers in workers_list:
            config = load_config("ssim", size)
            photo_source(config)
            config.data.degradations = degradation
            config.data.workers = workers
            config.data.quality_min, config.data.quality_max = 10, 60
            if args.quick:
                config.batch_size, config.data.patch_size = 8, 64
            log(f"pipeline {degradation} with {workers} workers …")
            result = pipeline_rate(config, 8 if args.quick else 20, args.repeats)
            record = {
                "name": f"pipeline/{degradation}",
                "config": {
                    "workers": workers,
                    "batch_size": config.batch_size,
                    "patch_size": config.data.patch_size,
                    "source": config.data.source,
                    "step_size": size,
                },
                "device": device_name(),
                **result,
                "consumed_by_train_step": consumed,
                "pipeline_over_step": result["patches_per_s"] / consumed,
            }
            emit(record)
            records.append(record)
    return records


# ---------------------------------------------------------------------------- infer


def frame_sizes(quick: bool) -> list[tuple[str, int, int]]:
    if quick:
        return [("360p", 360, 640)]
    return [("720p", 720, 1280), ("1080p", 1080, 1920)]


def test_frames(height: int, width: int, count: int) -> np.ndarray:
    """Video-like frames: a photo-sized gradient with texture, compressed at QF 30."""
    from jaxrestore.data import degrade

    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for i in range(count):
        base = np.stack(
            [
                128 + 100 * np.sin((x + 7 * i) / 37.0),
                128 + 100 * np.cos((y - 5 * i) / 23.0),
                128 + 60 * np.sin((x + y) / 11.0),
            ],
            axis=-1,
        )
        frames.append(degrade.jpeg_roundtrip(base.clip(0, 255).astype(np.uint8), 30))
    return np.stack(frames)


def bench_infer(args) -> list[dict]:
    import jax
    import jax.numpy as jnp

    from jaxrestore.models import generator as generator_lib

    config, params = loader.read_params("ssim", "generator")
    model = generator_lib.make_generator(config.model)
    params = jax.device_put(params)
    batch = 1 if jax.default_backend() == "cpu" else 4
    records = []
    for label, height, width in frame_sizes(args.quick):
        frames = test_frames(height, width, batch)
        megapixels = height * width / 1e6
        for dtype in ("float32", "bfloat16"):
            common = {"frame": label, "height": height, "width": width, "dtype": dtype}
            common["batch"] = batch
            # The model alone: frames already on the device, output left there.
            typed = model.clone(dtype=jnp.dtype(dtype))
            apply = jax.jit(lambda p, x, q, m=typed: m.apply({"params": p}, x, q))
            x = jax.device_put(jnp.asarray(frames, jnp.float32) / 255.0)
            q = jnp.full((batch,), 30.0)
            log(f"infer model {label} {dtype} …")
            samples = time_repeats(
                lambda f=apply, x=x, q=q: f(params, x, q).block_until_ready(),
                args.repeats,
                warmup=1,
            )
            records.append(infer_record("infer/model", common, samples, batch, megapixels))
            # The restore path: whole frames (video) and tiles (large images).
            for tiling_name, tiling in (
                ("whole", restorer_lib.Tiling(tile=2048, overlap=0, batch=batch)),
                ("tiled", restorer_lib.Tiling(tile=256 if args.quick else 512, batch=batch)),
            ):
                restorer = restorer_lib.Restorer(Model(model, params), None, tiling, dtype)
                if tiling_name == "whole":  # the video path: the batch of frames at once

                    def run(r=restorer, f=frames):
                        r.restore_frames(f, 30.0)
                else:  # the image path, one frame at a time

                    def run(r=restorer, f=frames):
                        for frame in f:
                            r.restore(frame, 30.0)

                log(f"infer restore {tiling_name} {label} {dtype} …")
                samples = time_repeats(run, args.repeats, warmup=1)
                config_ = {**common, "tiling": tiling_name, "tile": tiling.tile}
                config_["overlap"] = tiling.overlap
                records.append(infer_record("infer/restore", config_, samples, batch, megapixels))
    return records


def infer_record(name, config, samples, frames, megapixels) -> dict:
    per_frame = [t / frames for t in samples]
    stats = summarise(per_frame)
    record = {
        "name": name,
        "config": config,
        "device": device_name(),
        **stats,
        "unit": "s/frame",
        "frames_per_s": 1.0 / stats["median"],
        "megapixels_per_s": megapixels / stats["median"],
    }
    emit(record)
    return record


# -------------------------------------------------------------------------- scaling


def bench_scaling(args) -> list[dict]:
    import jax

    if jax.default_backend() != "cpu" and len(jax.devices()) == 1:
        log("scaling: skipped, one accelerator (on CPU it simulates 8 devices)")
        return []
    counts = (1, 8) if jax.default_backend() == "cpu" else (1, len(jax.devices()))
    records = []
    base = None
    for count in counts:
        log(f"scaling: {count} device(s) …")
        spec = {"stage": "ssim", "size": "cpu", "dtype": "float32", "quick": args.quick}
        spec.update(devices=count, per_device_batch=2 if args.quick else 4, repeats=args.repeats)
        result = run_case(spec)
        result["config"]["devices"] = count
        result["config"]["per_device_batch"] = spec["per_device_batch"]
        base = base or result
        record = {
            "name": "scaling/ssim_cpu",
            **result,
            "speedup_over_1": result["patches_per_s"] / base["patches_per_s"],
        }
        emit(record)
        records.append(record)
    return records


# ------------------------------------------------------------------------ reference


def bench_reference(args) -> list[dict]:
    """On CPU the JAX side runs in its own process with one JAX device per core and
    the batch split over them (data parallel, as the project trains on CPU: XLA runs
    one device's convolution on about one core); PyTorch uses its default threads."""

    if importlib.util.find_spec("torch") is None:
        log("reference: skipped, PyTorch is not installed (pip install torch==2.13.0)")
        return []
    arguments = ["_reference", "--repeats", str(args.repeats)] + (["--quick"] if args.quick else [])
    records = run_worker(arguments, os.cpu_count() or 1, "reference benchmark")
    for record in records:
        emit(record)
    return records


def reference_worker(args) -> None:
    import jax
    import torch

    from jaxrestore.bench import torch_reference
    from jaxrestore.models import generator as generator_lib
    from jaxrestore.training import loop, sharding
    from jaxrestore.training.stages import ssim

    on_gpu = jax.default_backend() == "gpu" and torch.cuda.is_available()
    torch_device = torch.device("cuda" if on_gpu else "cpu")

    def sync():
        if on_gpu:
            torch.cuda.synchronize()

    config, params = loader.read_params("ssim", "generator")
    model = generator_lib.make_generator(config.model)
    reference = torch_reference.from_flax(params, config.model).to(torch_device).eval()
    threads = f"{torch.get_num_threads()} threads" if not on_gpu else torch.cuda.get_device_name()
    device = device_name() + f" | torch {torch.__version__} ({threads})"
    mesh = sharding.make_mesh(load_config("ssim").mesh)  # all devices, data axis
    devices = mesh.shape[sharding.DATA_AXIS]
    batched = sharding.batch_sharding(mesh)
    replicated = sharding.replicated(mesh)
    params_on_mesh = jax.device_put(params, replicated)

    # Inference: the same frames through both, outputs compared.
    height, width = (256, 256) if args.quick else (720, 1280)
    batch = max(2, devices) if jax.default_backend() == "cpu" else 4
    frames = test_frames(height, width, batch).astype(np.float32) / 255.0
    quality = np.full((batch,), 30.0, np.float32)
    apply = jax.jit(
        lambda p, x, q: model.apply({"params": p}, x, q),
        in_shardings=(replicated, batched, batched),
        out_shardings=batched,
    )
    x, q = jax.device_put(frames, batched), jax.device_put(quality, batched)
    tx = torch.from_numpy(frames).to(torch_device)
    tq = torch.from_numpy(quality).to(torch_device)
    ours = np.asarray(apply(params_on_mesh, x, q))
    with torch.inference_mode():
        theirs = reference(tx, tq).cpu().numpy()
    max_diff = float(np.abs(ours - theirs).max())
    # float32 on CPU agrees to 1e-4; on a GPU both frameworks may use TF32 convolutions.
    if max_diff > (1e-2 if on_gpu else 1e-4):
        raise AssertionError(f"reference: JAX and PyTorch outputs differ by {max_diff:.2e}")

    def torch_infer():
        with torch.inference_mode():
            reference(tx, tq)
        sync()

    log("reference: inference …")
    jax_samples = time_repeats(
        lambda: apply(params_on_mesh, x, q).block_until_ready(), args.repeats
    )
    torch_samples = time_repeats(torch_infer, args.repeats)
    reference_record(
        "reference/infer",
        {"height": height, "width": width, "batch": batch, "jax_devices": devices},
        {"max_abs_diff": max_diff},
        device,
        jax_samples,
        torch_samples,
        batch * height * width / 1e6,
        "megapixels_per_s",
    )

    # A training step of the SSIM stage: same model, loss, optimizer and batch.
    train_config = load_config("ssim", "universal")
    train_config.model.update(config.model.to_dict())
    train_config.batch_size, train_config.data.patch_size = (8, 64) if args.quick else (16, 96)
    if not args.quick and jax.default_backend() != "cpu":
        train_config.batch_size, train_config.data.patch_size = 32, 128
    train_config.loss.l1_weight = 8.0
    state, phases = loop.build(train_config, mesh)
    state = state.replace(params=params_on_mesh)
    step_fn = phases[-1][1]
    host_batch = synthetic_batch(train_config.batch_size, train_config.data.patch_size)
    device_batch = sharding.to_global(host_batch, mesh)
    holder = {"state": state}
    steps_per_repeat = 2 if args.quick else 5

    def jax_steps():
        state = holder["state"]
        for _ in range(steps_per_repeat):
            state, metrics = step_fn(state, device_batch)
        jax.block_until_ready((state, metrics))
        holder["state"] = state

    def torch_trainer():
        trainable = torch_reference.from_flax(params, config.model).to(torch_device)
        return torch_reference.make_train_step(trainable, train_config.loss, train_config.optimizer)

    torch_batch = [
        torch.from_numpy(host_batch[k]).to(torch_device) for k in ("degraded", "target", "quality")
    ]
    torch_step = torch_trainer()

    def torch_steps():
        for _ in range(steps_per_repeat):
            torch_step(*torch_batch)
        sync()

    # Both start from the same weights: their first losses are the same computation.
    jax_loss = float(ssim.generator_loss(params, model.apply, host_batch, train_config.loss)[0])
    torch_loss = float(torch_trainer()(*torch_batch))
    log("reference: train step …")
    jax_samples = [t / steps_per_repeat for t in time_repeats(jax_steps, args.repeats)]
    torch_samples = [t / steps_per_repeat for t in time_repeats(torch_steps, args.repeats)]
    reference_record(
        "reference/train_step",
        {
            "batch_size": train_config.batch_size,
            "patch_size": train_config.data.patch_size,
            "jax_devices": devices,
        },
        {"loss_jax": jax_loss, "loss_torch": torch_loss},
        device,
        jax_samples,
        torch_samples,
        train_config.batch_size,
        "patches_per_s",
    )


def reference_record(
    name, config, checks, device, jax_samples, torch_samples, work, rate_name
) -> dict:
    ours, theirs = summarise(jax_samples), summarise(torch_samples)
    record = {
        "name": name,
        "config": {**config, "channels": 64, "num_blocks": 8, "dtype": "float32"},
        "device": device,
        **checks,
        **ours,
        "unit": "s",
        rate_name: work / ours["median"],
        "torch": {**theirs, rate_name: work / theirs["median"]},
        "jax_over_torch": ours["median"] / theirs["median"],
    }
    emit(record)
    return record


# ----------------------------------------------------------------------------- main

BENCHMARKS = {
    "pipeline": bench_pipeline,
    "train": bench_train,
    "infer": bench_infer,
    "scaling": bench_scaling,
    "reference": bench_reference,
}


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jaxrestore.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"any of {', '.join(NAMES)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes: minutes on a CPU")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default 3/5)")
    args, extra = parser.parse_known_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.names[:1] == ["_reference"]:
        reference_worker(args)
        return 0
    if args.names[:1] == ["_cases"]:
        case_worker(json.loads(args.names[1]))
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
