"""One loader for trained models: a training workdir, an export, or a packaged name.

    model = load("ssim")                      # packaged: ssim, gan, quality
    model = load("runs/ssim_cpu", "generator")  # a training workdir's newest checkpoint
    model = load("exports/mine")             # an export (`jaxrestore.export`)

A training workdir gives the config saved with its newest checkpoint and the
params of the network its stage trains (`Stage.model_params`: the generator of
a GAN run). An export is `model.json` (the stage and model config, written by
`write_export`) beside `params/` (an orbax checkpoint of the params alone). The
flax module is rebuilt from the model config and the params are checked against
it. Anything damaged (model.json that is not JSON or lacks its keys, a model
config that builds no network, params/ missing, truncated, overwritten or of
another network) is one ValueError line naming the source, whatever orbax,
tensorstore or flax raised.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from jaxrestore.errors import reason
from jaxrestore.training import checkpoint, stages
from jaxrestore.training.workdir import as_dir

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
# The packaged models, by the name every command's --checkpoint/--predictor accepts.
PACKAGED = {
    "ssim": WEIGHTS / "ssim_universal",  # the default generator: fidelity (SSIM stage)
    "gan": WEIGHTS / "gan_universal",  # the same network fine-tuned adversarially
    "quality": WEIGHTS / "quality",  # the quality predictor
}
PACKAGED_GENERATORS = ("ssim", "gan")
DEFAULT_GENERATOR = "ssim"
DEFAULT_PREDICTOR = "quality"
BAD_CONFIG = "its model config does not build a network"


@dataclasses.dataclass
class Model:
    """A trained network ready to apply: `module.apply({"params": params}, ...)`."""

    module: Any  # the flax module
    params: Any
    kind: str = "generator"  # or "quality"
    config: ml_collections.ConfigDict | None = None  # at least `stage` and `model`
    source: str = ""  # as given (a packaged name, a workdir or an export); "" in memory
    path: Path | None = None  # where it was read; None for a network built in code

    @property
    def conditioned(self) -> bool:
        """Whether the (generator) network takes the input's quality."""
        return bool(getattr(self.module, "conditioned", False))

    @property
    def export_info(self) -> dict | None:
        """model.json of an export; None for a training workdir or a network in memory."""
        if self.path is None or not (self.path / "model.json").exists():
            return None
        return json.loads((self.path / "model.json").read_text())


def resolve(source: str | Path) -> Path:
    """A packaged model's name -> its folder; anything else is a path as given."""
    return Path(PACKAGED.get(str(source), source))


def _guarded(source: str | Path, what: str, call: Callable[..., Any], *args: Any) -> Any:
    """`call(*args)`, with any failure as one ValueError line naming `source` and saying
    `what` failed: a damaged checkpoint or model config makes orbax, tensorstore and
    flax raise many exception types."""
    try:
        return call(*args)
    except Exception as error:  # noqa: BLE001 - reported, with its type, as one line
        raise ValueError(f"{source}: {what} ({type(error).__name__}: {reason(error)})") from None


def _stage_of(config: ml_collections.ConfigDict, source: str | Path) -> stages.Stage:
    try:
        return stages.get(config.stage)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None


def read_params(
    source: str | Path, kind: str | None = None, step: int | None = None
) -> tuple[ml_collections.ConfigDict, Any]:
    """(config, params) of an export or of a training workdir's checkpoint of `step`
    (default the newest; the params of the network its stage trains); `kind`
    ('generator' or 'quality'), when given, is checked."""
    path = as_dir(resolve(source))
    exported = (path / "model.json").exists()
    if not exported and not (path / "checkpoints").is_dir():
        raise FileNotFoundError(
            f"{source}: neither a training workdir (checkpoints/) nor an export (model.json)"
        )
    if exported:
        try:
            info = json.loads((path / "model.json").read_text())
            if not isinstance(info["stage"], str) or not isinstance(info["model"], dict):
                raise TypeError("'stage' must be a string and 'model' an object")
            config = ml_collections.ConfigDict({"stage": info["stage"], "model": info["model"]})
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"{source}: model.json is not an export's description "
                f"({type(error).__name__}: {reason(error)})"
            ) from None
    else:
        config = _guarded(
            source, "cannot read the saved config", checkpoint.load_config, path, step
        )
    stage = _stage_of(config, source)
    if kind is not None and stage.kind != kind:
        what = "a quality predictor" if stage.kind == "quality" else f"a {config.stage!r} run"
        wanted = "a quality predictor" if kind == "quality" else "a generator"
        raise ValueError(f"{source}: {what}, not {wanted}")
    if exported:
        if step is not None:
            raise ValueError(f"{source}: an export has one set of params, not steps")
        if not (path / "params").is_dir():
            raise FileNotFoundError(f"{source}: model.json but no params/ beside it")
        params = _guarded(
            source, "cannot read params/", checkpoint.restore_on_one_device, path / "params"
        )
        return config, params
    what = "cannot read its newest checkpoint" if step is None else f"cannot read step {step}"
    tree = _guarded(source, what, checkpoint.load_state_tree, path, step)
    return config, stage.model_params(tree)


def check_params(module, params: Any, example: tuple, source: str | Path) -> None:
    """Raise a one-line ValueError when `params` are not the ones `module` (built from
    the saved model config) expects: another size, or a different network."""
    init = functools.partial(jax.eval_shape, module.init, jax.random.key(0))
    expected = _guarded(source, BAD_CONFIG, init, *example)["params"]
    shapes = jax.tree.map(lambda x: tuple(x.shape), expected)
    found = jax.tree.map(lambda x: tuple(np.shape(x)), params)
    if shapes != found:
        described = ", ".join(
            f"{k}={v}"
            for k, v in sorted(vars(module).items())
            if k
            in (
                "channels",
                "num_blocks",
                "channel_mults",
                "scale_blocks",
                "conditioned",
                "features",
            )
        )
        raise ValueError(
            f"{source}: the saved weights do not match its model config ({described}); "
            "the export or checkpoint is damaged or was written by a different model"
        )


def load(source: str | Path, kind: str | None = None) -> Model:
    """The model of a packaged name, an export or a training workdir (see the module
    docstring), its params on the default device."""
    config, params = read_params(source, kind)
    stage = _stage_of(config, source)
    module = _guarded(source, BAD_CONFIG, stage.make_model, config.model)
    check_params(module, params, stage.example_inputs(64), source)
    path = Path(str(resolve(source)))
    return Model(module, jax.device_put(params), stage.kind, config, str(source), path)


def load_params_like(source: str | Path, kind: str, like: Any) -> Any:
    """The params of `source` (as `read_params`), checked against the shapes of `like`
    and placed with its shardings: what `config.init_from` starts a run from."""
    _, params = read_params(source, kind)
    expected = jax.tree.map(lambda x: tuple(x.shape), like)
    found = jax.tree.map(lambda x: tuple(np.shape(x)), params)
    if expected != found:
        raise ValueError(
            f"{source}: its {kind} does not match config.model (checkpoint layers/shapes "
            "differ); use the same model config as the run that wrote it"
        )
    return jax.tree.map(lambda x, ref: jax.device_put(x, ref.sharding), params, like)


def write_export(out: str | Path, params: Any, info: dict) -> None:
    """`out`/params (orbax, params only) and `out`/model.json, replaced atomically.
    `info` needs at least "stage" and "model" (a model config dict)."""
    out = Path(out).resolve()
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(staging / "params", params)
    checkpointer.wait_until_finished()
    (staging / "model.json").write_text(json.dumps(info, indent=1) + "\n")
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
