"""The quality predictor: L1 between the predicted and the labelled QF of each patch."""

from __future__ import annotations

from collections.abc import Iterator

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxrestore.models import quality as quality_lib
from jaxrestore.training import heldout
from jaxrestore.training import state as state_lib
from jaxrestore.training.stages.base import Phase, Stage, total_steps_only
from jaxrestore.training.state import TrainState, to_unit


def create_state(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> TrainState:
    """Initialise the quality predictor's params and optimizer state, replicated."""
    model = quality_lib.make_quality_net(config.model)
    optimizer = state_lib.make_optimizer(config.optimizer, config.total_steps)
    example = quality_lib.example_inputs(config.data.patch_size)
    return state_lib.init_on_mesh(
        lambda rng: state_lib.new_state(model, example, optimizer, rng), config.seed, mesh
    )


def train_step(
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


def build(config: ml_collections.ConfigDict, mesh, jit) -> tuple[TrainState, list[Phase]]:
    return create_state(config, mesh), [(config.total_steps, jit(train_step))]


def config_problems(config: ml_collections.ConfigDict, checks) -> Iterator[str]:
    yield from checks.at_least("total_steps", 1)
    yield from checks.at_least("model.features", 1)
    yield from checks.at_least("model.hidden", 1)
    yield from checks.optimizer("optimizer")


STAGE = Stage(
    name="quality",
    kind="quality",
    make_model=quality_lib.make_quality_net,
    example_inputs=quality_lib.example_inputs,
    run_length=total_steps_only,
    build=build,
    make_evaluator=heldout.QualityEvaluator,
    config_problems=config_problems,
)
