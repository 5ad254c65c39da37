"""Train a jaxrestore model.

    python -m jaxrestore.main --config configs/ssim.py[:variant] [--workdir DIR]
        [--config.<field>=value ...]

Rerunning the same command resumes from the newest checkpoint in DIR.

Multi-host (one process per host or per GPU): add --distributed (or set
JAXRESTORE_DISTRIBUTED=1). On Cloud TPU, Slurm, Open MPI and Kubernetes JAX
finds the coordinator itself; elsewhere set JAX_COORDINATOR_ADDRESS=host:port,
JAX_NUM_PROCESSES and JAX_PROCESS_ID (launch/local_multiprocess.sh does so on
localhost). Every process runs the same command with the same shared --workdir.
"""

import os
from pathlib import Path

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from jaxrestore import sharding, train

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/ssim.py:cpu.")
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Run directory (checkpoints, metrics.jsonl). Default: runs/<config>_<variant>."
)
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed",
    os.environ.get("JAXRESTORE_DISTRIBUTED", "") == "1",
    "Call jax.distributed.initialize() (multi-host; coordinator from the environment).",
)
flags.mark_flags_as_required(["config"])


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


def initialize_distributed() -> None:
    """`jax.distributed.initialize`, with the process count and id from the environment
    when set (JAX_NUM_PROCESSES, JAX_PROCESS_ID), else detected by JAX."""
    jax.distributed.initialize(
        coordinator_address=os.environ.get("JAX_COORDINATOR_ADDRESS") or None,
        num_processes=_env_int("JAX_NUM_PROCESSES"),
        process_id=_env_int("JAX_PROCESS_ID"),
    )


def default_workdir(config_path: str, variant: str) -> Path:
    return Path("runs") / f"{Path(config_path.split(':')[0]).stem}_{variant}"


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)  # library chatter; progress is printed by train
    config = _CONFIG.value
    sharding.configure_cpu_devices(config.mesh)
    if _DISTRIBUTED.value:
        try:
            initialize_distributed()
        except (ValueError, RuntimeError) as error:
            raise SystemExit(f"jaxrestore.main: --distributed: {error}") from None
    workdir = _WORKDIR.value or default_workdir(
        flags.FLAGS["config"].config_filename, config.variant
    )
    try:
        train.train_and_evaluate(config, workdir)
    except (ValueError, FileNotFoundError) as error:  # bad config, data or workdir
        raise SystemExit(f"jaxrestore.main: {error}") from None


if __name__ == "__main__":
    app.run(main)
