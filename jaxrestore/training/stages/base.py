"""What a training stage is: everything the loop, the checkpoints, the config checks
and the model loader need to know of it, in one record (`Stage`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import jax
import ml_collections

from jaxrestore.training.state import TrainState

# Fields that fix the shapes of the saved state or the layout of the saved data
# stream in every stage: a run cannot continue from a checkpoint written with other
# values. A stage adds its own (`Stage.resume_fields`).
COMMON_RESUME_FIELDS = (
    "stage",
    "seed",
    "batch_size",
    "model",
    "data.source",
    "data.patch_size",
    "data.workers",
)

# A phase of a run: (its last step, the jitted `(state, batch) -> (state, metrics)`).
Phase = tuple[int, Callable]


@dataclasses.dataclass(frozen=True)
class Stage:
    """One training stage (`config.stage`).

    - kind: what the trained network is, "generator" or "quality" (the predictor);
    - make_model(model_config): the flax module of that network;
    - example_inputs(size): inputs its `init` takes, for a square of `size` pixels;
    - run_length(config): (warm-up steps, total steps) of a run;
    - build(config, mesh, jit): the initial state and its phases; `jit(step_fn,
      **static)` jits a step with the loop's guard and shardings;
    - model_state(state): the TrainState of the network that is evaluated, exported
      and restored from (the generator of a GAN state);
    - with_model(state, model_state): `state` with that TrainState replaced;
    - model_params(tree): that network's params in a saved state, as a plain tree;
    - make_evaluator(config, images, apply_fn): its held-out evaluator;
    - resume_fields: config fields beyond COMMON_RESUME_FIELDS that a resumed run
      must share with its checkpoint;
    - config_problems(config, checks): the stage's own config checks (see
      `config_check.Checks`), one phrase per problem.
    """

    name: str
    kind: str
    make_model: Callable[[ml_collections.ConfigDict], Any]
    example_inputs: Callable[[int], tuple]
    run_length: Callable[[ml_collections.ConfigDict], tuple[int, int]]
    build: Callable[[ml_collections.ConfigDict, jax.sharding.Mesh, Callable], tuple[Any, list]]
    make_evaluator: Callable[..., Any]
    config_problems: Callable[[ml_collections.ConfigDict, Any], Iterator[str]]
    model_state: Callable[[Any], TrainState] = lambda state: state
    with_model: Callable[[Any, TrainState], Any] = lambda state, model_state: model_state
    model_params: Callable[[dict], Any] = lambda tree: tree["params"]
    resume_fields: tuple[str, ...] = ()

    @property
    def all_resume_fields(self) -> tuple[str, ...]:
        return COMMON_RESUME_FIELDS + self.resume_fields


def total_steps_only(config: ml_collections.ConfigDict) -> tuple[int, int]:
    """The run length of a one-phase stage: no warm-up, `config.total_steps`."""
    return 0, config.total_steps
