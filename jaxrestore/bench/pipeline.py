"""`pipeline`: patches/s of the grain input pipeline against what the train step consumes.

JPEG and H.264 degradations, with 1 and N worker processes; each record carries
the patches/s the SSIM train step consumes on this device
(`consumed_by_train_step`) and the ratio (`pipeline_over_step`).
"""

from __future__ import annotations

from jaxrestore.bench import train
from jaxrestore.bench.common import device_name, emit, load_config, log, summarise, time_repeats


def photo_source(config) -> None:
    """Point `config.data` at the assembled photos, or at the embedded ones without them."""
    from jaxrestore.data import sources

    try:
        sources.resolve(config.data)
    except (FileNotFoundError, ValueError):
        config.data.source = "embedded"


# More than grain's read-ahead buffer (500 elements by default) plus the workers' own.
PIPELINE_WARMUP_PATCHES = 1024


def pipeline_rate(config, batches: int, repeats: int) -> dict:
    """Steady-state patches/s: grain reads ahead (threads, or worker processes), so
    first drain what it buffered while starting, then time what it produces."""
    from jaxrestore.data import pipeline as data_pipeline

    iterator = iter(data_pipeline.make_train_dataset(config))
    for _ in range(-(-PIPELINE_WARMUP_PATCHES // config.batch_size)):
        next(iterator)

    def run():
        for _ in range(batches):
            next(iterator)

    samples = [t / (batches * config.batch_size) for t in time_repeats(run, repeats, warmup=0)]
    stats = summarise(samples)
    return {**stats, "unit": "s/patch", "patches_per_s": 1.0 / stats["median"]}


def run(args) -> list[dict]:
    import jax

    records = []
    size = "cpu" if jax.default_backend() == "cpu" else "default"
    log(f"pipeline: the {size} SSIM step's consumption …")
    spec = {"stage": "ssim", "size": size, "dtype": "float32", "quick": args.quick}
    consumed = train.run_case({**spec, "repeats": args.repeats})["patches_per_s"]
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
