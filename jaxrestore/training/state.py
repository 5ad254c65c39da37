"""What every stage's train state shares: the state of one network, its optimizer,
its initialisation on the mesh, and the guard that keeps non-finite steps out."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax.training import train_state

from jaxrestore.training import sharding


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


def new_state(
    model, example: tuple, optimizer: optax.GradientTransformation, rng: jax.Array
) -> TrainState:
    """A fresh TrainState of `model`, initialised on the `example` inputs (traceable)."""
    params = model.init(rng, *example)["params"]
    return TrainState.create(apply_fn=model.apply, params=params, tx=optimizer)


def init_on_mesh(init: Callable[[jax.Array], Any], seed: int, mesh: jax.sharding.Mesh) -> Any:
    """`init(rng)` jitted with every output replicated over the mesh."""
    return jax.jit(init, out_shardings=sharding.replicated(mesh))(jax.random.key(seed))


def create_state(
    model, example: tuple, config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh
) -> TrainState:
    """The state of a one-network stage (`model`, its `example` init inputs), its
    optimizer over `config.total_steps`, initialised from `config.seed` and replicated."""
    optimizer = make_optimizer(config.optimizer, config.total_steps)
    return init_on_mesh(lambda rng: new_state(model, example, optimizer, rng), config.seed, mesh)


def to_unit(image: jax.Array) -> jax.Array:
    return image.astype(jnp.float32) / 255.0


def with_params(state: TrainState, params: Any) -> TrainState:
    """`state` starting from `params` (e.g. an earlier run's), with a fresh optimizer state."""
    return state.replace(params=params, opt_state=state.tx.init(params))


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
