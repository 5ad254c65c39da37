"""The quality predictor: L1 between the predicted and the labelled QF of each patch,
evaluated by its error on the held-out photos saved as JPEG at each evaluated QF."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxrestore.data import degrade, sources
from jaxrestore.models import quality as quality_lib
from jaxrestore.training import heldout
from jaxrestore.training import state as state_lib
from jaxrestore.training.stages.base import Phase, Stage, total_steps_only
from jaxrestore.training.state import TrainState, to_unit


class QualityEvaluator:
    """Held-out error of the quality predictor: each held-out image, whole, saved as
    JPEG at each QF of `config.eval.qualities`; mean absolute error per QF."""

    def __init__(self, config: ml_collections.ConfigDict, images: sources.ImageSet, apply_fn):
        self.qualities = tuple(int(q) for q in config.eval.qualities)
        self.names, self.mine = heldout.heldout_share(config, images)
        # Judged as the restore path does: on a centre crop on the 8×8 grid.
        self.compressed = [
            np.stack(
                [
                    quality_lib.grid_crop(degrade.jpeg_roundtrip(images.load(i), q))
                    for q in self.qualities
                ]
            )
            for i in self.mine
        ]
        self._predict = jax.jit(lambda params, x: apply_fn({"params": params}, to_unit(x)))

    def evaluate(self, params: Any) -> tuple[dict[str, float], dict[str, Any]]:
        device = jax.local_devices()[0]
        local = heldout.local_params(params, device)
        predictions = [
            self._predict(local, jax.device_put(stack, device)) for stack in self.compressed
        ]
        rows = [np.asarray(p)[:, None] for p in jax.device_get(predictions)]
        table = heldout.gather_rows(rows, self.mine, (len(self.names), len(self.qualities), 1))[
            ..., 0
        ]
        errors = np.abs(table - np.asarray(self.qualities, np.float32))
        scores = {
            f"eval/quality_mae_q{q}": float(errors[:, j].mean())
            for j, q in enumerate(self.qualities)
        }
        scores["eval/quality_mae"] = float(errors.mean())
        scores["eval/quality_max_error"] = float(errors.max())
        per_image = {
            name: {str(q): float(table[i, j]) for j, q in enumerate(self.qualities)}
            for i, name in enumerate(self.names)
        }
        return scores, per_image

    def samples(self, params: Any) -> dict[str, np.ndarray]:
        """No images to show: the predictor's output is a number."""
        return {}

    def summary(self, step: int, metrics: dict[str, float]) -> str:
        parts = [f"q{q}: {metrics[f'eval/quality_mae_q{q}']:.2f}" for q in self.qualities]
        return (
            f"eval step {step}: held-out QF error {metrics['eval/quality_mae']:.2f} "
            f"(max {metrics['eval/quality_max_error']:.1f}; " + ", ".join(parts) + ")"
        )


def create_state(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> TrainState:
    """Initialise the quality predictor's params and optimizer state, replicated over the mesh."""
    model = quality_lib.make_quality_net(config.model)
    return state_lib.create_state(
        model, quality_lib.example_inputs(config.data.patch_size), config, mesh
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
    make_evaluator=QualityEvaluator,
    config_problems=config_problems,
)
