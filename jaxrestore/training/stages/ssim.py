"""Stage 1: the generator alone, trained for 1 − SSIM (+ optionally L1).

Also the generator-only step the adversarial stage warms up with."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxrestore import losses
from jaxrestore.metrics import psnr
from jaxrestore.models import generator as generator_lib
from jaxrestore.training import heldout
from jaxrestore.training import state as state_lib
from jaxrestore.training.stages.base import Phase, Stage, total_steps_only
from jaxrestore.training.state import TrainState, to_unit


def create_state(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> TrainState:
    """Initialise the generator's params and optimizer state, replicated over the mesh."""
    model = generator_lib.make_generator(config.model)
    return state_lib.create_state(
        model, generator_lib.example_inputs(config.data.patch_size), config, mesh
    )


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
        "psnr_restored": jnp.mean(psnr(jnp.clip(restored, 0, 1), target, 1.0)),
        "psnr_degraded": jnp.mean(psnr(degraded, target, 1.0)),
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


def build(config: ml_collections.ConfigDict, mesh, jit) -> tuple[TrainState, list[Phase]]:
    return create_state(config, mesh), [
        (config.total_steps, jit(train_step, loss_config=config.loss))
    ]


def generator_model_problems(config: ml_collections.ConfigDict, checks) -> Iterator[str]:
    """Checks of `config.model` for a generator (both stages train one)."""
    yield from checks.at_least("model.channels", 1)
    yield from checks.at_least("model.num_blocks", 1)
    yield from checks.one_of("model.arch", generator_lib.ARCHITECTURES)
    if checks.get("model.arch") == "unet":
        mults = checks.get("model.channel_mults")
        if not (_counts(mults) and 1 <= len(mults) <= 5):
            yield f"model.channel_mults={mults!r} must be 1 to 5 integers ≥ 1"
        blocks = checks.get("model.scale_blocks")
        if checks.has("model.scale_blocks") and not (
            _counts(blocks)
            and (not blocks or isinstance(mults, tuple | list) and len(blocks) == len(mults))
        ):
            yield (
                f"model.scale_blocks={blocks!r} must be empty (num_blocks at every scale) "
                f"or one integer ≥ 1 per scale of model.channel_mults={mults!r}"
            )
    yield from checks.one_of("model.dtype", ("float32", "bfloat16"))


def _counts(values: Any) -> bool:
    """Whether `values` is a tuple or list of integers ≥ 1 (not bools)."""
    return isinstance(values, tuple | list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values
    )


def config_problems(config: ml_collections.ConfigDict, checks) -> Iterator[str]:
    yield from checks.at_least("total_steps", 1)
    yield from generator_model_problems(config, checks)
    yield from checks.optimizer("optimizer")


STAGE = Stage(
    name="ssim",
    kind="generator",
    make_model=generator_lib.make_generator,
    example_inputs=generator_lib.example_inputs,
    run_length=total_steps_only,
    build=build,
    make_evaluator=heldout.HeldOutEvaluator,
    config_problems=config_problems,
)
