"""Config validation before anything is built or compiled: one line lists every problem.

    validate(config, reference)

`reference` is a config with every field the stage knows (the stage's file in
configs/, default variant): a field it lacks is unknown (a typo, or a field of
another stage), a field only it has is missing. Then sizes, ranges and choices
are checked (the checks every stage shares here, a stage's own in its module's
`config_problems`), and the relations between them (a sub-patch that tiles the patch, a
QF range inside 1–100 with min ≤ max, ...). Checks that need the devices (the
batch over the mesh's data axis) run in `training.loop` as soon as the mesh exists, still
before the first compilation.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ml_collections

from jaxrestore.data import degrade
from jaxrestore.training import stages


class ConfigError(ValueError):
    """The config cannot describe a run; the message lists every problem on one line."""


def validate(
    config: ml_collections.ConfigDict, reference: ml_collections.ConfigDict | None
) -> None:
    """Raise ConfigError naming every problem of `config` (see the module docstring)."""
    found = problems(config, reference)
    if found:
        raise ConfigError(f"invalid config: {'; '.join(found)}")


def problems(
    config: ml_collections.ConfigDict, reference: ml_collections.ConfigDict | None
) -> list[str]:
    """Every problem of `config`, one short phrase each (empty when it is valid)."""
    stage = config.get("stage")
    if stage not in stages.STAGES:
        return [f"stage={stage!r} is not one of {', '.join(stages.STAGES)}"]
    found = []
    if reference is not None:
        have, want = set(_fields(config)), set(_fields(reference))
        found += [f"unknown field {name}" for name in sorted(have - want)]
        found += [f"missing field {name}" for name in sorted(want - have)]
        if found:  # the value checks below would only repeat them
            return found
    checks = Checks(config)
    return list(_common_problems(config, checks)) + list(
        stages.get(stage).config_problems(config, checks)
    )


def _fields(config: ml_collections.ConfigDict, prefix: str = "") -> Iterator[str]:
    for key, value in config.items():
        if isinstance(value, ml_collections.ConfigDict):
            yield from _fields(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


_ABSENT = object()


class Checks:
    """Checks of one config's fields by dotted name, each yielding a phrase per problem;
    a field the config lacks (another stage's) yields nothing."""

    def __init__(self, config: ml_collections.ConfigDict):
        self.config = config

    def get(self, name: str) -> Any:
        """The value at dotted `name`, or _ABSENT."""
        value = self.config
        for key in name.split("."):
            if not isinstance(value, ml_collections.ConfigDict) or key not in value:
                return _ABSENT
            value = value[key]
        return value

    def has(self, name: str) -> bool:
        """Whether the config has the dotted field `name`."""
        return self.get(name) is not _ABSENT

    def at_least(self, name: str, low: float, integer: bool = True) -> Iterator[str]:
        value = self.get(name)
        if value is _ABSENT:
            return
        if integer and (isinstance(value, bool) or not isinstance(value, int)):
            yield f"{name}={value!r} must be an integer"
        elif not isinstance(value, int | float) or value < low:
            yield f"{name}={value!r} must be ≥ {low}"

    def within(self, name: str, low: float, high: float) -> Iterator[str]:
        value = self.get(name)
        if value is _ABSENT:
            return
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            yield f"{name}={value!r} is outside {low}..{high}"

    def ordered_range(self, low_name: str, high_name: str, low: int, high: int) -> Iterator[str]:
        bad = list(self.within(low_name, low, high)) + list(self.within(high_name, low, high))
        yield from bad
        low_value, high_value = self.get(low_name), self.get(high_name)
        if not bad and _ABSENT not in (low_value, high_value) and low_value > high_value:
            yield f"{low_name}={low_value} is above {high_name}={high_value}"

    def one_of(self, name: str, choices: tuple) -> Iterator[str]:
        value = self.get(name)
        if value is not _ABSENT and value not in choices:
            yield f"{name}={value!r} is not one of {', '.join(map(str, choices))}"

    def positive(self, name: str) -> Iterator[str]:
        value = self.get(name)
        if value is not _ABSENT and (not isinstance(value, int | float) or value <= 0):
            yield f"{name}={value!r} must be > 0"

    def optimizer(self, opt: str) -> Iterator[str]:
        """The fields of an optimizer block (`state.make_optimizer`)."""
        yield from self.positive(f"{opt}.learning_rate")
        yield from self.at_least(f"{opt}.warmup_steps", 0)
        yield from self.within(f"{opt}.end_learning_rate_fraction", 0.0, 1.0)
        yield from self.within(f"{opt}.b1", 0.0, 0.999999)
        yield from self.within(f"{opt}.b2", 0.0, 0.999999)
        yield from self.at_least(f"{opt}.weight_decay", 0.0, integer=False)
        yield from self.positive(f"{opt}.grad_clip_norm")


def _common_problems(config: ml_collections.ConfigDict, checks: Checks) -> Iterator[str]:
    """The checks of the fields every stage has: loop, data, mesh, evaluation."""
    yield from checks.at_least("batch_size", 1)
    for name in ("log_every_steps", "checkpoint_every_steps", "keep_checkpoints"):
        yield from checks.at_least(name, 1)
    yield from checks.one_of("nonfinite", ("stop", "skip"))
    yield from checks.at_least("max_skipped_steps", 0)
    if config.get("init_from") and "://" not in config.init_from:
        if not Path(config.init_from).exists():
            yield f"init_from={config.init_from!r} does not exist"

    # Data: sizes, codec ranges, the degradation mix.
    yield from checks.at_least("data.patch_size", 16)
    patch = config.data.patch_size
    if isinstance(patch, int) and patch >= 16 and patch % 8:
        yield f"data.patch_size={patch} must be a multiple of 8 (JPEG blocks, stride-2 trunk)"
    yield from checks.ordered_range("data.quality_min", "data.quality_max", 1, 100)
    yield from checks.ordered_range(
        "data.crf_min", "data.crf_max", *degrade.STRENGTH_RANGES["h264"]
    )
    yield from checks.ordered_range(
        "data.mpeg2_min", "data.mpeg2_max", *degrade.STRENGTH_RANGES["mpeg2"]
    )
    yield from checks.at_least("data.clip_frames", 2)
    yield from checks.within("data.scale_min", 0.25, 1.0)
    yield from checks.at_least("data.workers", 0)
    yield from checks.at_least("data.cache_images", 0)
    try:
        mix = degrade.parse_mix(config.data.degradations)
        if not mix or sum(weight for _, weight in mix) <= 0:
            yield f"data.degradations={config.data.degradations!r} has no kind with weight > 0"
        video = sorted({kind for kind, weight in mix if weight > 0 and kind in degrade.VIDEO_KINDS})
        if video and importlib.util.find_spec("av") is None:
            # Found here, not by a worker's traceback once the first video sample is drawn.
            yield (
                f"data.degradations has {', '.join(video)}, which need PyAV (FFmpeg's codecs), "
                "not installed here: pip install av, or leave the video kinds out"
            )
    except ValueError as error:
        yield str(error).removeprefix("config.")

    # Mesh and evaluation.
    mesh_data = config.mesh.data
    if not isinstance(mesh_data, int) or (mesh_data != -1 and mesh_data < 1):
        yield f"mesh.data={mesh_data!r} must be -1 (all devices) or ≥ 1"
    yield from checks.at_least("mesh.cpu_devices", 0)
    if isinstance(mesh_data, int) and mesh_data >= 1 and isinstance(config.batch_size, int):
        if config.batch_size % mesh_data:
            yield f"batch_size={config.batch_size} does not divide over mesh.data={mesh_data}"
    qualities = tuple(config.eval.qualities)
    if not qualities:
        yield "eval.qualities is empty"
    for q in qualities:
        if isinstance(q, bool) or not isinstance(q, int | float) or not 1 <= q <= 100:
            yield f"eval.qualities has {q!r}, outside 1..100"
    yield from checks.at_least("eval.every_steps", 1)
    yield from checks.at_least("eval.max_images", 0)
