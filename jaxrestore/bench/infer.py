"""`infer`: megapixels/s and frames/s of the packaged generator.

Through the restore path (`jaxrestore.inference.Restorer`: upload, blending on
the device, uint8 back), whole frames and tiled, float32 and bfloat16, and the
model alone on device-resident frames. A tiled record carries `tiled_over_whole`,
its frames/s over the whole frames' at the same size and dtype: the goal on a
GPU is 0.5 or more. 512² tiles with their overlap cover 1.9 × a 1080p frame's
pixels (256² tiles 2.3 × a 360p one), so where the network is all the time, as
on a CPU, about 0.53 (0.44) is the most.
"""

from __future__ import annotations

from jaxrestore.bench.common import (
    device_name,
    emit,
    log,
    summarise,
    synthetic_frames,
    time_repeats,
)
from jaxrestore.inference import loader
from jaxrestore.inference import restorer as restorer_lib


def frame_sizes(quick: bool) -> list[tuple[str, int, int]]:
    if quick:
        return [("360p", 360, 640)]
    return [("720p", 720, 1280), ("1080p", 1080, 1920)]


def run(args) -> list[dict]:
    import jax
    import jax.numpy as jnp

    packaged = loader.load("ssim", "generator")  # its params already on the device
    params, model = packaged.params, packaged.module
    batch = 1 if jax.default_backend() == "cpu" else 4
    records = []
    for label, height, width in frame_sizes(args.quick):
        frames = synthetic_frames(height, width, batch)
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
                restorer = restorer_lib.Restorer(packaged, None, tiling, dtype)
                if tiling_name == "whole":  # the video path: the batch of frames at once

                    def restore_all(r=restorer, f=frames):
                        r.restore_frames(f, 30.0)
                else:  # the image path, one frame at a time

                    def restore_all(r=restorer, f=frames):
                        for frame in f:
                            r.restore(frame, 30.0)

                log(f"infer restore {tiling_name} {label} {dtype} …")
                samples = time_repeats(restore_all, args.repeats, warmup=1)
                config_ = {**common, "tiling": tiling_name, "tile": tiling.tile}
                config_["overlap"] = tiling.overlap
                whole = records[-1]["frames_per_s"] if tiling_name == "tiled" else None
                records.append(
                    infer_record("infer/restore", config_, samples, batch, megapixels, whole)
                )
    return records


def infer_record(name, config, samples, frames, megapixels, whole=None) -> dict:
    """The record of `samples` (seconds for `frames` frames); `whole`: the whole
    frames' frames/s, for a tiled record's `tiled_over_whole`."""
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
    if whole is not None:
        record["tiled_over_whole"] = record["frames_per_s"] / whole
    emit(record)
    return record
