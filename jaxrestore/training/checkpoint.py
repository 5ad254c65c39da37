"""Orbax checkpoints: train state + grain iterator state + config + loop counters, in
WORKDIR/checkpoints (see `workdir` for the rest of a run's directory).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grain
import jax
import ml_collections
import orbax.checkpoint as ocp
from etils import epath

from jaxrestore.errors import one_line
from jaxrestore.training import stages
from jaxrestore.training.workdir import METRICS_FILE, as_dir, read_metrics


class CheckpointError(RuntimeError):
    """A checkpoint could not be written (full disk, lost permissions, ...)."""


def reached_preemption(step: int) -> bool:
    """Whether all processes agreed to stop after `step` (JAX's preemption service)."""
    from orbax.checkpoint._src.multihost import multihost

    return multihost.reached_preemption(step)


def make_manager(workdir: str | Path, config: ml_collections.ConfigDict) -> ocp.CheckpointManager:
    """Keeps the last `config.keep_checkpoints`; saves are written to a temporary
    directory and renamed when complete, so a crash never leaves a half checkpoint."""
    options = ocp.CheckpointManagerOptions(
        max_to_keep=config.keep_checkpoints,
        create=True,
        enable_async_checkpointing=True,
        cleanup_tmp_directories=True,  # remove what a killed save left behind
    )
    return ocp.CheckpointManager(as_dir(workdir) / "checkpoints", options=options)


def save(
    manager: ocp.CheckpointManager,
    step: int,
    state: Any,
    data_iterator: grain.DatasetIterator,
    config: ml_collections.ConfigDict,
    loop: dict | None = None,
) -> None:
    """Start writing the checkpoint of `step` (asynchronously); `loop` holds the train
    loop's own counters. Raises CheckpointError for this save or the previous one."""
    with _write_errors(manager, step):
        manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                data=grain.checkpoint.CheckpointSave(data_iterator),
                config=ocp.args.JsonSave(config.to_dict()),
                loop=ocp.args.JsonSave(dict(loop or {})),
            ),
        )


def finish(manager: ocp.CheckpointManager, step: int) -> None:
    """Wait for the checkpoint of `step` to be complete, then close the manager."""
    with _write_errors(manager, step):
        manager.wait_until_finished()
    manager.close()


def newest_complete(workdir: str | Path | epath.Path) -> str:
    """'step N is the newest complete one' for WORKDIR's checkpoints (orbax gives a step
    its plain number only once it is complete), for error messages."""
    directory = as_dir(workdir) / "checkpoints"
    try:
        steps = [int(p.name) for p in directory.iterdir() if p.name.isdigit()]
    except OSError:
        steps = []
    return f"step {max(steps)} is the newest complete one" if steps else "no checkpoint is complete"


def settle(manager: ocp.CheckpointManager) -> None:
    """On the way out after an error: let a save in flight complete (its own failure
    was or will be reported elsewhere), so no checkpoint is cut short by the exit."""
    try:
        manager.wait_until_finished()
    except Exception:  # noqa: BLE001 - the error being raised matters more
        pass


@contextlib.contextmanager
def _write_errors(manager: ocp.CheckpointManager, step: int) -> Iterator[None]:
    """Turn a failed (possibly asynchronous) save into one CheckpointError line."""
    try:
        yield
    except CheckpointError:
        raise
    except Exception as error:  # noqa: BLE001 - orbax/tensorstore raise many kinds
        reason = one_line(error, 300)
        kept = newest_complete(manager.directory.parent)
        raise CheckpointError(
            f"{manager.directory}: a checkpoint (step {step} or the one before) could not "
            f"be written: {reason}; {kept}"
        ) from None


def check_resumable(saved: dict, config: ml_collections.ConfigDict, directory: Any) -> None:
    """Raise a one-line error naming the fields that differ from the checkpoint's config
    (the stage's `all_resume_fields`: they fix the state's shapes or the data stream)."""
    current = config.to_dict()
    differing = []
    fields = stages.base.COMMON_RESUME_FIELDS
    if config.get("stage") in stages.STAGES:
        fields = stages.get(config.stage).all_resume_fields
    for field in fields:
        old, new = saved, current
        for key in field.split("."):
            old, new = (old or {}).get(key), (new or {}).get(key)
        if json.dumps(old, sort_keys=True) != json.dumps(new, sort_keys=True):
            differing.append(f"{field} (checkpoint {old}, now {new})")
    if differing:
        raise ValueError(
            f"{directory}: cannot resume with a different "
            + "; ".join(differing)
            + " — keep the checkpoint's values or use another --workdir"
        )


def restore_latest(
    manager: ocp.CheckpointManager,
    abstract_state: Any,
    data_iterator: grain.DatasetIterator,
    config: ml_collections.ConfigDict,
) -> tuple[Any, int, dict] | None:
    """Restore the newest readable checkpoint into the shapes/shardings of `abstract_state`.

    The data iterator is moved to the saved position in place. Returns (state, step,
    loop counters), or None when the directory holds no checkpoint. A checkpoint that
    cannot be read (damaged on disk) is skipped, with a warning, for the one before;
    one written with an incompatible config is an error."""
    found = sorted(manager.all_steps(), reverse=True)
    failures = []
    for step in found:
        step_dir = epath.Path(manager.directory) / str(step)
        try:
            saved = manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
        except Exception as error:  # noqa: BLE001 - any damage: fall back to an older step
            failures.append(_skip_damaged(step_dir, error))
            continue
        check_resumable(saved["config"], config, manager.directory)
        _check_data_state(step_dir / "data", manager.directory)
        items = {
            "state": ocp.args.StandardRestore(abstract_state),
            "data": grain.checkpoint.CheckpointRestore(data_iterator),
        }
        if (step_dir / "loop").exists():  # checkpoints before the loop counters had none
            items["loop"] = ocp.args.JsonRestore()
        try:
            restored = manager.restore(step, args=ocp.args.Composite(**items))
        except Exception as error:  # noqa: BLE001
            failures.append(_skip_damaged(step_dir, error))
            continue
        loop = {"skipped_steps": 0, **(restored.get("loop") or {})}
        return restored["state"], step, loop
    if failures:
        raise ValueError(
            f"{manager.directory}: no checkpoint could be read ({'; '.join(failures)}); "
            "move the directory away to start afresh"
        )
    return None


def _skip_damaged(step_dir: epath.Path, error: Exception) -> str:
    reason = f"step {step_dir.name}: {one_line(error, 200)}"
    print(f"warning: {step_dir}: unreadable checkpoint skipped ({reason})", file=sys.stderr)
    return reason


def _check_data_state(data_dir: epath.Path, directory: Any) -> None:
    """Each process resumes its own data stream: the checkpoint must have one for it."""
    index, count = jax.process_index(), jax.process_count()
    if (data_dir / f"process_{index}-of-{count}.json").exists():
        return
    written = sorted(p.name for p in data_dir.glob("process_*-of-*.json"))
    counts = {name.split("-of-")[1].removesuffix(".json") for name in written}
    raise ValueError(
        f"{directory}: the checkpoint's data stream was written by "
        f"{' or '.join(sorted(counts)) or 'no'} process(es), this run has {count}; "
        "resume with the same number of processes, or start a new --workdir with "
        "--config.init_from pointing here"
    )


def load_config(workdir: str | Path, step: int | None = None) -> ml_collections.ConfigDict:
    """The config saved with a checkpoint (the newest when `step` is None)."""
    checkpointer = ocp.Checkpointer(ocp.JsonCheckpointHandler())
    return ml_collections.ConfigDict(checkpointer.restore(_step_dir(workdir, step) / "config"))


def load_state_tree(workdir: str | Path, step: int | None = None) -> dict:
    """The saved train state as a plain tree of numpy arrays (no model needed).

    Works whatever mesh, device count or process count wrote the checkpoint: every
    array is read whole onto this process's first device."""
    return restore_on_one_device(_step_dir(workdir, step) / "state")


def restore_on_one_device(directory: epath.Path) -> Any:
    """An orbax (standard) checkpoint as a tree of numpy arrays, whatever wrote it."""
    checkpointer = ocp.StandardCheckpointer()
    metadata = checkpointer.metadata(directory).item_metadata
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    abstract = jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device),
        metadata,
        is_leaf=lambda leaf: hasattr(leaf, "shape"),
    )
    return jax.device_get(checkpointer.restore(directory, abstract))


def kept_steps(workdir: str | Path) -> list[int]:
    """The steps of WORKDIR's complete checkpoints, oldest first."""
    with ocp.CheckpointManager(as_dir(workdir) / "checkpoints") as manager:
        return sorted(manager.all_steps())


def newest_step(workdir: str | Path) -> int:
    """The step of WORKDIR's newest complete checkpoint; FileNotFoundError without one."""
    steps = kept_steps(workdir)
    if not steps:
        raise FileNotFoundError(f"{workdir}: no checkpoint")
    return steps[-1]


def best_lpips_step(workdir: str | Path, quality: int) -> tuple[int, dict]:
    """(step, its eval record) of the kept checkpoint with the lowest held-out LPIPS at
    QF `quality` whose PSNR gain over JPEG is positive at every evaluated QF."""
    run = as_dir(workdir)
    key = f"eval/lpips_restored_q{quality}"
    if not (run / METRICS_FILE).exists():
        raise FileNotFoundError(f"{run}: no metrics.jsonl to choose a checkpoint from")
    kept = set(kept_steps(run))
    candidates = []
    for record in read_metrics(run):
        if key not in record or record["step"] not in kept:
            continue
        gains = [v for k, v in record.items() if k.startswith("eval/psnr_gain_q")]
        if gains and min(gains) > 0:
            candidates.append(record)
    if not candidates:
        raise ValueError(
            f"{run}: no kept checkpoint has {key} and a PSNR gain at every evaluated QF"
        )
    best = min(candidates, key=lambda record: record[key])
    return int(best["step"]), best


def _step_dir(workdir: str | Path, step: int | None) -> epath.Path:
    step = newest_step(workdir) if step is None else step
    return as_dir(workdir) / "checkpoints" / str(step)
