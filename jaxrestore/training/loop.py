"""Training: the loop that drives the jitted steps, periodic evaluation, logging, checkpoints.

`config.stage` picks the stage (`stages`): 'ssim' (stage 1), 'gan' (stage 2, after
`config.warmup_steps` of stage 1 when no `config.init_from` generator is given) or
'quality' (the quality predictor). The stage gives the state, its jitted steps and
the held-out evaluator; this loop owns the data, logging, evaluation cadence,
checkpoints and faults, the same for every stage.

Faults (nothing is lost):
- SIGTERM (preemption) or Ctrl-C: the step in flight finishes, a checkpoint of it
  is written and waited for, and `Preempted` is raised (`jaxrestore.main` exits
  with status 75, EX_TEMPFAIL); rerunning the same command resumes from it. With
  several processes JAX's preemption service picks one step for all of them.
- SIGKILL at any moment: orbax writes each checkpoint to a temporary directory and
  renames it when complete, so the newest complete one survives; a checkpoint that
  cannot be read on resume is skipped for the one before it (with a warning).
- A step with a non-finite loss or gradient leaves the state untouched
  (`state.keep_finite`); `config.nonfinite='stop'` (default) ends the run with an
  error naming the step before any later checkpoint is written, 'skip' counts it
  (`skipped_steps` in metrics.jsonl) and stops once more than
  `config.max_skipped_steps` were skipped.
- An unwritable workdir fails before anything compiles; a checkpoint that cannot be
  written (full disk) ends the run with an error naming the last complete one.
- metrics.jsonl and the evaluation files are replaced atomically; a line cut short
  by a kill is dropped on resume.

Every logged metric also goes to TensorBoard event files (`events`, with a few
restored held-out crops at each evaluation of a generator).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import jax
import ml_collections
import numpy as np

from jaxrestore.data import pipeline, sources
from jaxrestore.inference import loader
from jaxrestore.training import checkpoint, events, sharding, stages
from jaxrestore.training import state as state_lib
from jaxrestore.training import workdir as workdir_lib
from jaxrestore.training.stages.base import Phase


class Preempted(Exception):
    """The run stopped on a signal after saving a checkpoint; rerun to resume."""

    def __init__(self, step: int, reason: str, directory):
        self.step = step
        super().__init__(
            f"{reason}: checkpoint saved at step {step} in {directory}; rerun the same "
            "command to resume"
        )


class NonFiniteError(FloatingPointError):
    """A step's loss or gradient was not finite (`config.nonfinite`)."""


class StopSignals:
    """SIGTERM and SIGINT ask the loop to checkpoint and stop after the current step.

    A second SIGINT interrupts at once. With several processes SIGTERM is left to
    JAX's preemption service (`multihost_utils.reached_preemption_sync_point`), which
    agrees on one step for all processes."""

    def __init__(self, multiprocess: bool):
        self.multiprocess = multiprocess
        self.received: str | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # else signals are not ours
            names = [signal.SIGINT] + ([] if self.multiprocess else [signal.SIGTERM])
            for signum in names:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame) -> None:
        if self.received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name
        print(
            f"{self.received} received: saving a checkpoint after this step",
            file=sys.stderr,
            flush=True,
        )

    def stop_at(self, step: int) -> str | None:
        """The reason to stop after `step`, or None to go on."""
        if self.multiprocess and checkpoint.reached_preemption(step):
            return "preempted (SIGTERM)"
        return self.received


def _format_duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def build(config: ml_collections.ConfigDict, mesh) -> tuple[object, list[Phase]]:
    """The initial state and the phases [(last step, jitted step)] of `config.stage`,
    every step wrapped by `state.keep_finite` and jitted over the mesh."""

    def jit(step_fn: Callable, **static) -> Callable:
        return sharding.jit_step(state_lib.keep_finite(step_fn), mesh, **static)

    return stages.get(config.stage).build(config, mesh, jit)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, float]:
    """Train (resuming from the newest checkpoint in WORKDIR) and return the last metrics.

    Raises `Preempted` after saving a checkpoint on SIGTERM/SIGINT, `NonFiniteError`
    on a non-finite step (see the module docstring), `checkpoint.CheckpointError`
    when a checkpoint cannot be written."""
    # From here on a stop signal waits for the first step after it (set-up included).
    with StopSignals(jax.process_count() > 1) as signals:
        return _train(config, workdir, signals)


def _train(config: ml_collections.ConfigDict, workdir, signals: StopSignals) -> dict[str, float]:
    workdir = workdir_lib.as_dir(workdir)
    workdir_lib.check_writable(workdir)
    stage = stages.get(config.stage)
    is_chief = jax.process_index() == 0
    mesh = sharding.make_mesh(config.mesh)
    sharding.check_batch_size(config.batch_size, mesh)

    splits = sources.resolve(config.data)
    dataset = pipeline.make_train_dataset(
        config, jax.process_index(), jax.process_count(), splits["train"]
    )
    num_images = len(splits["train"])
    shard = pipeline.process_shard(num_images, jax.process_index(), jax.process_count())
    workdir_lib.record_data_shard(workdir, config.data.source, num_images, shard)
    data_iterator = iter(dataset)
    state, phases = build(config, mesh)
    manager = checkpoint.make_manager(workdir, config)
    restored = checkpoint.restore_latest(manager, state, data_iterator, config)
    start_step, loop = 0, {"skipped_steps": 0}
    if restored is not None:
        state, start_step, loop = restored
        _log(is_chief, f"resumed from checkpoint at step {start_step} in {workdir}")
    elif config.get("init_from"):
        model_state = stage.model_state(state)
        params = loader.load_params_like(config.init_from, stage.kind, model_state.params)
        state = stage.with_model(state, state_lib.with_params(model_state, params))
        _log(is_chief, f"{stage.kind} initialised from {config.init_from}")
        if is_chief:
            workdir_lib.record_overlap(workdir, loader.resolve(config.init_from))
    metrics_log = workdir_lib.MetricsLog(workdir, start_step, is_chief)
    event_log = events.EventLog(workdir, start_step, is_chief)
    evaluator = stage.make_evaluator(config, splits["heldout"], stage.model_state(state).apply_fn)

    def log_metrics(step: int, metrics: dict[str, float]) -> None:
        metrics_log.write(step, metrics)
        event_log.scalars(step, metrics)

    def evaluate(step: int) -> dict[str, float]:
        params = stage.model_state(state).params
        eval_metrics, per_image = evaluator.evaluate(params)
        log_metrics(step, eval_metrics)
        if is_chief:
            workdir_lib.write_eval(workdir, step, per_image)
            event_log.images(step, evaluator.samples(params))
        _log(is_chief, evaluator.summary(step, eval_metrics))
        return eval_metrics

    if start_step == 0 and config.eval.at_start:
        evaluate(0)

    total = stage.run_length(config)[1]
    pending: list[tuple[int, dict[str, jax.Array]]] = []
    last: dict[str, float] = {}
    saved_step = start_step
    interval_start, interval_steps = time.time(), 0

    def save(step: int) -> None:
        # The steps since the last check are read first: a non-finite one stops the run
        # (config.nonfinite='stop') before a checkpoint after it exists.
        check_pending()
        checkpoint.save(manager, step, state, data_iterator, config, loop)

    def check_pending() -> dict[str, float]:
        nonlocal pending
        fetched = jax.device_get(pending)
        pending = []
        bad = [(s, m) for s, m in fetched if m["nonfinite"]]
        for bad_step, bad_metrics in bad:
            values = ", ".join(f"{k} {v:.4g}" for k, v in bad_metrics.items() if k != "nonfinite")
            if config.nonfinite == "stop":
                raise NonFiniteError(
                    f"non-finite loss or gradient at step {bad_step} ({values}); the state "
                    f"was not updated and no checkpoint after step {saved_step} was written; "
                    "rerun resumes from it, --config.nonfinite=skip skips such steps"
                )
            loop["skipped_steps"] += 1
            _log(is_chief, f"step {bad_step} skipped: non-finite ({values})")
            if loop["skipped_steps"] > config.max_skipped_steps:
                raise NonFiniteError(
                    f"{loop['skipped_steps']} steps skipped for non-finite values (the last "
                    f"at step {bad_step}), more than config.max_skipped_steps="
                    f"{config.max_skipped_steps}; the last checkpoint is step {saved_step}"
                )
        good = [
            {k: v for k, v in m.items() if k != "nonfinite"}
            for _, m in fetched
            if not m["nonfinite"]
        ]
        return _mean_metrics(good) if good else {}

    try:
        for step in range(start_step + 1, total + 1):
            step_fn = next(fn for last_step, fn in phases if step <= last_step)
            batch = sharding.to_global(next(data_iterator), mesh)
            state, step_metrics = step_fn(state, batch)
            pending.append((step, step_metrics))
            interval_steps += 1

            if step % config.log_every_steps == 0 or step == total:
                last = check_pending()
                rate = interval_steps / max(time.time() - interval_start, 1e-9)
                last["steps_per_second"] = rate
                last["patches_per_second"] = rate * config.batch_size
                last["skipped_steps"] = loop["skipped_steps"]
                log_metrics(step, last)
                if "loss" in last:
                    _log(is_chief, _format_progress(step, total, last, rate))
                interval_start, interval_steps = time.time(), 0

            if step % config.eval.every_steps == 0 or step == total:
                last.update(evaluate(step))
                interval_start = time.time()

            if step % config.checkpoint_every_steps == 0 or step == total:
                save(step)
                saved_step = step

            if (reason := signals.stop_at(step)) is not None and step < total:
                if saved_step != step:
                    save(step)
                    saved_step = step
                checkpoint.finish(manager, saved_step)
                raise Preempted(step, reason, workdir)
    except BaseException:
        # Whatever stops the run, a checkpoint still being written is completed first.
        checkpoint.settle(manager)
        raise
    finally:
        event_log.close()

    checkpoint.finish(manager, saved_step)
    return last


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
