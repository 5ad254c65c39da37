"""`train`: step time and patches/s of the SSIM step and of the full GAN iteration.

The discriminator update + generator update for GAN; `default` and `cpu` sizes,
float32 and bfloat16 compute; synthetic batches stay on the device, no host sync
inside a repeat. Every case runs in a fresh process with its config's CPU device
count (`run_cases`), which the pipeline and scaling benchmarks use too.
"""

from __future__ import annotations

import json
import time

from jaxrestore.bench.common import (
    device_name,
    emit,
    load_config,
    log,
    run_worker,
    summarise,
    synthetic_batch,
    time_repeats,
)


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
            "arch": config.model.get("arch", "residual"),
            "channels": config.model.channels,
            "num_blocks": config.model.num_blocks,
        }
        result["device"] = device_name()
        print(json.dumps(result), flush=True)


def run(args) -> list[dict]:
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
