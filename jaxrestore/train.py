"""Training: the train state, the jitted step, the loop, periodic evaluation and logging."""

from __future__ import annotations

import functools
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax.training import train_state

from jaxrestore import checkpoint, losses, sharding
from jaxrestore.data import degrade, pipeline, sources
from jaxrestore.models import generator as generator_lib


class TrainState(train_state.TrainState):
    pass


def make_optimizer(
    opt: ml_collections.ConfigDict, total_steps: int
) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=opt.learning_rate,
        warmup_steps=opt.warmup_steps,
        decay_steps=max(total_steps, opt.warmup_steps + 1),
        end_value=opt.learning_rate * opt.end_learning_rate_fraction,
    )
    return optax.chain(
        optax.clip_by_global_norm(opt.grad_clip_norm),
        optax.adamw(schedule, b1=opt.b1, b2=opt.b2, weight_decay=opt.weight_decay),
    )


def create_train_state(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> TrainState:
    """Initialise generator params and optimizer state, replicated over the mesh."""
    model = generator_lib.make_generator(config.model)
    tx = make_optimizer(config.optimizer, config.total_steps)
    patch = config.data.patch_size

    def init(rng):
        params = model.init(rng, jnp.zeros((1, patch, patch, 3), jnp.float32))["params"]
        return TrainState.create(apply_fn=model.apply, params=params, tx=tx)

    init = jax.jit(init, out_shardings=sharding.replicated(mesh))
    return init(jax.random.key(config.seed))


def to_unit(image: jax.Array) -> jax.Array:
    return image.astype(jnp.float32) / 255.0


def generator_loss(
    params: Any, apply_fn, batch: dict[str, jax.Array], loss_config: ml_collections.ConfigDict
) -> tuple[jax.Array, dict[str, jax.Array]]:
    degraded, target = to_unit(batch["degraded"]), to_unit(batch["target"])
    restored = apply_fn({"params": params}, degraded)
    ssim_term = losses.ssim_loss(restored, target)
    l1_term = losses.l1_loss(restored, target)
    loss = loss_config.ssim_weight * ssim_term + loss_config.l1_weight * l1_term
    metrics = {
        "loss": loss,
        "ssim_loss": ssim_term,
        "l1": l1_term,
        "psnr_restored": jnp.mean(losses.psnr(jnp.clip(restored, 0, 1), target)),
        "psnr_degraded": jnp.mean(losses.psnr(degraded, target)),
    }
    return loss, metrics


def train_step(
    state: TrainState, batch: dict[str, jax.Array], loss_config: ml_collections.ConfigDict
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One SSIM-stage update: (state, batch) -> (state, metrics)."""
    grad_fn = jax.value_and_grad(generator_loss, has_aux=True)
    (_, metrics), grads = grad_fn(state.params, state.apply_fn, batch, loss_config)
    metrics["grad_norm"] = optax.tree.norm(grads)
    return state.apply_gradients(grads=grads), metrics


def make_jitted_train_step(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh):
    replicated = sharding.replicated(mesh)
    return jax.jit(
        functools.partial(train_step, loss_config=config.loss),
        in_shardings=(replicated, sharding.batch_sharding(mesh)),
        out_shardings=(replicated, replicated),
        donate_argnums=0,
    )


class HeldOutEvaluator:
    """PSNR and SSIM of JPEG and of the restoration on held-out images, per quality.

    Outputs are clipped and rounded to 8 bits before scoring, as a saved result
    would be; SSIM uses the skimage Gaussian convention (see `losses.ssim`).
    The JPEG versions and their scores are computed once, on the host codec.
    """

    def __init__(self, config: ml_collections.ConfigDict, paths: list[str], apply_fn):
        if config.eval.max_images:
            paths = paths[: config.eval.max_images]
        self.qualities = tuple(int(q) for q in config.eval.qualities)
        self.names = [Path(p).stem for p in paths]
        self.originals = [sources.read_image(p) for p in paths]
        self.compressed = [
            np.stack([degrade.jpeg_roundtrip(image, q) for q in self.qualities])
            for image in self.originals
        ]
        self._restore = jax.jit(lambda params, x: losses.quantize(apply_fn({"params": params}, x)))
        self._jpeg_scores: list[dict[str, np.ndarray]] | None = None

    def evaluate(self, state: TrainState) -> tuple[dict[str, float], dict[str, Any]]:
        """Returns (aggregate metrics for metrics.jsonl, per-image details)."""
        if self._jpeg_scores is None:
            self._jpeg_scores = [
                jax.device_get(_fidelity(to_unit(c), o))
                for c, o in zip(self.compressed, self.originals)
            ]
        per_image = {}
        for name, original, compressed, jpeg in zip(
            self.names, self.originals, self.compressed, self._jpeg_scores
        ):
            restored = self._restore(state.params, to_unit(compressed))
            scores = {
                **{f"{k}_jpeg": v for k, v in jpeg.items()},
                **{
                    f"{k}_restored": v
                    for k, v in jax.device_get(_fidelity(restored, original)).items()
                },
            }
            per_image[name] = {
                str(q): {key: float(value[i]) for key, value in scores.items()}
                for i, q in enumerate(self.qualities)
            }
        metrics = {}
        for q in self.qualities:
            rows = [image[str(q)] for image in per_image.values()]
            for key in rows[0]:
                metrics[f"eval/{key}_q{q}"] = float(np.mean([r[key] for r in rows]))
            gains = [r["psnr_restored"] - r["psnr_jpeg"] for r in rows]
            metrics[f"eval/psnr_gain_q{q}"] = float(np.mean(gains))
            metrics[f"eval/worst_psnr_gain_q{q}"] = float(np.min(gains))
        return metrics, per_image


@jax.jit
def _fidelity(candidate: jax.Array, original: jax.Array) -> dict[str, jax.Array]:
    """PSNR and SSIM of a [B, H, W, 3] candidate in [0, 1] against one uint8 original."""
    target = jnp.broadcast_to(to_unit(original), candidate.shape)
    return {"psnr": losses.psnr(candidate, target), "ssim": losses.ssim(candidate, target)}


class MetricsLog:
    """WORKDIR/metrics.jsonl: one JSON object per logged step (process 0 only)."""

    def __init__(self, workdir: Path, resume_step: int, enabled: bool):
        self.path = workdir / "metrics.jsonl"
        self.enabled = enabled
        if enabled and self.path.exists():
            # Steps after the restored checkpoint are about to be run again.
            kept = [
                line
                for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line)["step"] <= resume_step
            ]
            self.path.write_text("".join(line + "\n" for line in kept))

    def write(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")


def _format_duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, float]:
    """Train (resuming from the newest checkpoint in WORKDIR) and return the last metrics."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    is_chief = jax.process_index() == 0
    mesh = sharding.make_mesh(config.mesh)
    sharding.check_batch_size(config.batch_size, mesh)

    dataset = pipeline.make_train_dataset(config, jax.process_index(), jax.process_count())
    data_iterator = iter(dataset)
    state = create_train_state(config, mesh)
    manager = checkpoint.make_manager(workdir, config)
    restored = checkpoint.restore_latest(manager, state, data_iterator)
    start_step = 0
    if restored is not None:
        state, start_step = restored
        _log(is_chief, f"resumed from checkpoint at step {start_step} in {workdir}")
    metrics_log = MetricsLog(workdir, start_step, is_chief)
    evaluator = HeldOutEvaluator(config, sources.resolve(config.data)["heldout"], state.apply_fn)
    step_fn = make_jitted_train_step(config, mesh)

    total = config.total_steps
    pending: list[dict[str, jax.Array]] = []
    last: dict[str, float] = {}
    interval_start, interval_steps = time.time(), 0
    for step in range(start_step + 1, total + 1):
        batch = sharding.to_global(next(data_iterator), mesh)
        state, step_metrics = step_fn(state, batch)
        pending.append(step_metrics)
        interval_steps += 1

        if step % config.log_every_steps == 0 or step == total:
            host = jax.device_get(pending)
            last = {k: float(np.mean([m[k] for m in host])) for k in host[0]}
            if not all(math.isfinite(v) for v in last.values()):
                raise FloatingPointError(f"non-finite training metrics at step {step}: {last}")
            elapsed = time.time() - interval_start
            rate = interval_steps / max(elapsed, 1e-9)
            last["steps_per_second"] = rate
            last["patches_per_second"] = rate * config.batch_size
            metrics_log.write(step, last)
            _log(
                is_chief,
                f"step {step}/{total}  loss {last['loss']:.4f}  "
                f"psnr {last['psnr_restored']:.2f} (jpeg {last['psnr_degraded']:.2f})  "
                f"{rate:.2f} steps/s  ETA {_format_duration((total - step) / max(rate, 1e-9))}",
            )
            pending, interval_start, interval_steps = [], time.time(), 0

        if step % config.eval.every_steps == 0 or step == total:
            eval_metrics, per_image = evaluator.evaluate(state)
            metrics_log.write(step, eval_metrics)
            if is_chief:
                eval_dir = workdir / "eval"
                eval_dir.mkdir(exist_ok=True)
                (eval_dir / f"step_{step}.json").write_text(json.dumps(per_image, indent=1))
            _log(is_chief, _format_eval(step, eval_metrics, evaluator.qualities))
            last.update(eval_metrics)
            interval_start = time.time()

        if step % config.checkpoint_every_steps == 0 or step == total:
            checkpoint.save(manager, step, state, data_iterator, config)

    manager.wait_until_finished()
    manager.close()
    return last


def _format_eval(step: int, metrics: dict[str, float], qualities: tuple[int, ...]) -> str:
    parts = [
        f"q{q}: {metrics[f'eval/psnr_restored_q{q}']:.2f} dB "
        f"(jpeg {metrics[f'eval/psnr_jpeg_q{q}']:.2f}, "
        f"{metrics[f'eval/psnr_gain_q{q}']:+.2f})"
        for q in qualities
    ]
    return f"eval step {step}: held-out PSNR " + "; ".join(parts)


def _log(enabled: bool, message: str) -> None:
    if enabled:
        print(message, file=sys.stderr, flush=True)
