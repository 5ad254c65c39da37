"""What every benchmark shares: timing, records, synthetic inputs, worker processes.

Each measurement is one JSON object on stdout (`emit`); progress goes to stderr
(`log`). Repeats are summarised by their median, extremes and relative spread
(`summarise`). A case that needs its own CPU device count runs in a fresh
`python -m jaxrestore.bench` process (`run_worker`). Configs are loaded only
through `training.configs.load` (`load_config`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np


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


def synthetic_frames(height: int, width: int, count: int) -> np.ndarray:
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
