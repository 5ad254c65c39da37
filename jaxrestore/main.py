"""Train a jaxrestore model.

    python -m jaxrestore.main --config configs/ssim.py[:variant] [--workdir DIR]
        [--config.<field>=value ...]

Rerunning the same command resumes from the newest checkpoint in DIR.
"""

import os
from pathlib import Path

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from jaxrestore import train

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


def default_workdir(config_path: str, variant: str) -> Path:
    return Path("runs") / f"{Path(config_path.split(':')[0]).stem}_{variant}"


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)  # library chatter; progress is printed by train
    if _DISTRIBUTED.value:
        jax.distributed.initialize()
    config = _CONFIG.value
    workdir = _WORKDIR.value or default_workdir(
        flags.FLAGS["config"].config_filename, config.variant
    )
    try:
        train.train_and_evaluate(config, workdir)
    except (ValueError, FileNotFoundError) as error:  # bad config, data or workdir
        raise SystemExit(f"jaxrestore.main: {error}") from None


if __name__ == "__main__":
    app.run(main)
