"""`scaling`: SSIM step time with 1 and 8 devices at a fixed per-device batch.

On CPU, 8 simulated devices; each count in its own process (`train.run_case`).
"""

from __future__ import annotations

from jaxrestore.bench import train
from jaxrestore.bench.common import emit, log


def run(args) -> list[dict]:
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
        result = train.run_case(spec)
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
