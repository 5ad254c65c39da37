"""Training: the loop that drives the jitted steps, periodic evaluation, logging, checkpoints.

`config.stage` picks the steps: 'ssim' (stage 1, `steps.train_step`), 'gan'
(stage 2, `gan.gan_iteration`, after `config.warmup_steps` of stage 1 when no
`config.init_from` generator is given) or 'quality' (the quality predictor,
`steps.quality_train_step`).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import ml_collections
import numpy as np
from etils import epath

from jaxrestore import checkpoint, gan, sharding, steps
from jaxrestore.data import pipeline, sources
from jaxrestore.heldout import HeldOutEvaluator, QualityEvaluator


class MetricsLog:
    """WORKDIR/metrics.jsonl: one JSON object per logged step (process 0 only).

    Appended to locally; rewritten whole on object stores, which cannot append."""

    def __init__(self, workdir: epath.Path, resume_step: int, enabled: bool):
        self.path = workdir / "metrics.jsonl"
        self.enabled = enabled
        self.appendable = "://" not in str(self.path)
        self.lines: list[str] = []
        if enabled and self.path.exists():
            # Steps after the restored checkpoint are about to be run again.
            self.lines = [
                line
                for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line)["step"] <= resume_step
            ]
            self.path.write_text("".join(line + "\n" for line in self.lines))

    def write(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        line = json.dumps({"step": step, **metrics})
        self.lines.append(line)
        if self.appendable:
            with open(self.path, "a") as f:
                f.write(line + "\n")
        else:
            self.path.write_text("".join(line + "\n" for line in self.lines))


def _format_duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def generator_state(state) -> steps.TrainState:
    return state.generator if isinstance(state, gan.GanState) else state


def run_length(config: ml_collections.ConfigDict) -> tuple[int, int]:
    """(stage-1 warmup steps, total steps) of the run `config` describes."""
    if config.stage in ("ssim", "quality"):
        return 0, config.total_steps
    if config.stage == "gan":
        warmup = 0 if config.init_from else config.warmup_steps
        return warmup, warmup + config.adversarial_steps
    raise ValueError(f"config.stage={config.stage!r}: expected 'ssim', 'gan' or 'quality'")


def build(config: ml_collections.ConfigDict, mesh) -> tuple[object, list[tuple[int, Callable]]]:
    """The initial state and the phases [(last step, jitted step)] of `config.stage`."""
    warmup, total = run_length(config)
    if config.stage == "quality":
        state = steps.create_quality_state(config, mesh)
        return state, [(total, sharding.jit_step(steps.quality_train_step, mesh))]
    if config.stage == "ssim":
        state = steps.create_train_state(config, mesh)
        return state, [(total, sharding.jit_step(steps.train_step, mesh, loss_config=config.loss))]
    state = gan.create_gan_state(config, mesh, total)
    phases = [(total, sharding.jit_step(gan.gan_iteration, mesh, gan=config.gan))]
    if warmup:
        warmup_step = sharding.jit_step(gan.warmup_step, mesh, loss_config=config.loss)
        phases.insert(0, (warmup, warmup_step))
    return state, phases


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, float]:
    """Train (resuming from the newest checkpoint in WORKDIR) and return the last metrics."""
    workdir = checkpoint.as_dir(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    is_chief = jax.process_index() == 0
    mesh = sharding.make_mesh(config.mesh)
    sharding.check_batch_size(config.batch_size, mesh)

    splits = sources.resolve(config.data)
    dataset = pipeline.make_train_dataset(
        config, jax.process_index(), jax.process_count(), splits["train"]
    )
    _record_data_shard(workdir, config, len(splits["train"]))
    data_iterator = iter(dataset)
    state, phases = build(config, mesh)
    manager = checkpoint.make_manager(workdir, config)
    restored = checkpoint.restore_latest(manager, state, data_iterator, config)
    start_step = 0
    if restored is not None:
        state, start_step = restored
        _log(is_chief, f"resumed from checkpoint at step {start_step} in {workdir}")
    elif config.get("init_from"):
        params = checkpoint.load_generator_params(config.init_from, generator_state(state).params)
        state = gan.with_generator_params(state, params)
        _log(is_chief, f"generator initialised from {config.init_from}")
    metrics_log = MetricsLog(workdir, start_step, is_chief)
    evaluator_class = QualityEvaluator if config.stage == "quality" else HeldOutEvaluator
    evaluator = evaluator_class(config, splits["heldout"], generator_state(state).apply_fn)

    def evaluate(step: int) -> dict[str, float]:
        eval_metrics, per_image = evaluator.evaluate(generator_state(state).params)
        metrics_log.write(step, eval_metrics)
        if is_chief:
            (workdir / "eval").mkdir(parents=True, exist_ok=True)
            (workdir / "eval" / f"step_{step}.json").write_text(json.dumps(per_image, indent=1))
        _log(is_chief, evaluator.summary(step, eval_metrics))
        return eval_metrics

    if start_step == 0 and config.eval.at_start:
        evaluate(0)

    total = run_length(config)[1]
    pending: list[dict[str, jax.Array]] = []
    last: dict[str, float] = {}
    interval_start, interval_steps = time.time(), 0
    for step in range(start_step + 1, total + 1):
        step_fn = next(fn for last_step, fn in phases if step <= last_step)
        batch = sharding.to_global(next(data_iterator), mesh)
        state, step_metrics = step_fn(state, batch)
        pending.append(step_metrics)
        interval_steps += 1

        if step % config.log_every_steps == 0 or step == total:
            last = _mean_metrics(jax.device_get(pending))
            if not all(math.isfinite(v) for v in last.values()):
                raise FloatingPointError(f"non-finite training metrics at step {step}: {last}")
            rate = interval_steps / max(time.time() - interval_start, 1e-9)
            last["steps_per_second"] = rate
            last["patches_per_second"] = rate * config.batch_size
            metrics_log.write(step, last)
            _log(is_chief, _format_progress(step, total, last, rate))
            pending, interval_start, interval_steps = [], time.time(), 0

        if step % config.eval.every_steps == 0 or step == total:
            last.update(evaluate(step))
            interval_start = time.time()

        if step % config.checkpoint_every_steps == 0 or step == total:
            checkpoint.save(manager, step, state, data_iterator, config)

    manager.wait_until_finished()
    manager.close()
    return last


def _record_data_shard(
    workdir: epath.Path, config: ml_collections.ConfigDict, num_images: int
) -> None:
    """WORKDIR/data_shards/process_I-of-N.json: the training images this process reads."""
    index, count = jax.process_index(), jax.process_count()
    record = {
        "source": config.data.source,
        "process_index": index,
        "process_count": count,
        "num_images": num_images,
        "indices": pipeline.process_shard(num_images, index, count),
    }
    directory = workdir / "data_shards"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"process_{index}-of-{count}.json").write_text(json.dumps(record))


def _mean_metrics(history: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Mean of each metric over the steps that reported it (phases report different keys)."""
    keys = dict.fromkeys(k for m in history for k in m)
    return {k: float(np.mean([m[k] for m in history if k in m])) for k in keys}


def _format_progress(step: int, total: int, metrics: dict[str, float], rate: float) -> str:
    text = f"step {step}/{total}  loss {metrics['loss']:.4f}"
    if "d_loss" in metrics:
        text += (
            f"  d_loss {metrics['d_loss']:.3f} (real acc {metrics['d_real_acc']:.2f}, "
            f"fake acc {metrics['d_fake_acc']:.2f})  g_adv {metrics['g_adv']:.3f}"
        )
    if "psnr_restored" in metrics:
        text += f"  psnr {metrics['psnr_restored']:.2f} (jpeg {metrics['psnr_degraded']:.2f})"
    if "within_2" in metrics:
        text += f"  within ±2 QF {metrics['within_2']:.2f}"
    text += f"  {rate:.2f} steps/s  ETA {_format_duration((total - step) / max(rate, 1e-9))}"
    return text


def _log(enabled: bool, message: str) -> None:
    if enabled:
        print(message, file=sys.stderr, flush=True)
