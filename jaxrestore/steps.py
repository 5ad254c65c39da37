"""The train state and the stage-1 (SSIM) generator step, shared by both stages."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax.training import train_state

from jaxrestore import losses, sharding
from jaxrestore.models import generator as generator_lib
from jaxrestore.models import quality as quality_lib


class TrainState(train_state.TrainState):
    """Params, optimizer state and step of one network."""


def make_optimizer(
    opt: ml_collections.ConfigDict, total_steps: int
) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=opt.learning_rate / max(opt.warmup_steps, 1),  # step 0 already learns
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
        image = jnp.zeros((1, patch, patch, 3), jnp.float32)
        params = model.init(rng, image, jnp.full((1,), 50.0))["params"]
        return TrainState.create(apply_fn=model.apply, params=params, tx=tx)

    init = jax.jit(init, out_shardings=sharding.replicated(mesh))
    return init(jax.random.key(config.seed))


def to_unit(image: jax.Array) -> jax.Array:
    return image.astype(jnp.float32) / 255.0


def generator_loss(
    params: Any, apply_fn, batch: dict[str, jax.Array], loss_config: ml_collections.ConfigDict
) -> tuple[jax.Array, dict[str, jax.Array]]:
    degraded, target = to_unit(batch["degraded"]), to_unit(batch["target"])
    restored = apply_fn({"params": params}, degraded, batch["quality"])
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


def create_quality_state(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> TrainState:
    """Initialise the quality predictor's params and optimizer state, replicated."""
    model = quality_lib.make_quality_net(config.model)
    tx = make_optimizer(config.optimizer, config.total_steps)
    patch = config.data.patch_size

    def init(rng):
        params = model.init(rng, jnp.zeros((1, patch, patch, 3), jnp.float32))["params"]
        return TrainState.create(apply_fn=model.apply, params=params, tx=tx)

    init = jax.jit(init, out_shardings=sharding.replicated(mesh))
    return init(jax.random.key(config.seed))


def quality_train_step(
    state: TrainState, batch: dict[str, jax.Array]
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One predictor update: L1 between the predicted and the labelled QF."""
    degraded = to_unit(batch["degraded"])
    label = batch["quality"].astype(jnp.float32)

    def loss_fn(params):
        predicted = state.apply_fn({"params": params}, degraded)
        return jnp.mean(jnp.abs(predicted - label)), predicted

    (loss, predicted), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    metrics = {
        "loss": loss,
        "within_2": jnp.mean(jnp.abs(predicted - label) <= 2.0),
        "grad_norm": optax.tree.norm(grads),
    }
    return state.apply_gradients(grads=grads), metrics


def keep_finite(step_fn: Callable) -> Callable:
    """Wrap a `(state, batch) -> (state, metrics)` step so that a step whose metrics
    (loss, gradient norms) are not all finite leaves the state untouched.

    The returned metrics carry `nonfinite` (1.0 for such a step). The train loop
    reads it with the other metrics, without a device sync per step, and stops or
    counts the step (`config.nonfinite`); either way no NaN reaches the params, the
    optimizer moments or a checkpoint."""

    @functools.wraps(step_fn)
    def guarded(state, batch, **static):
        new_state, metrics = step_fn(state, batch, **static)
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in metrics.values()]))
        new_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old), new_state, state)
        return new_state, {**metrics, "nonfinite": 1.0 - finite.astype(jnp.float32)}

    return guarded
