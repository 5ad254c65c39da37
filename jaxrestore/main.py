"""Train a jaxrestore model.

    python -m jaxrestore.main --config configs/ssim.py[:variant] [--workdir DIR]
        [--config.<field>=value ...]

Rerunning the same command resumes from the newest checkpoint in DIR.

The config is checked before anything is built (`jaxrestore.training.config_check`): an
unknown field, an impossible size or a value out of range is a one-line error.
Exit status: 0 done; 1 an error (bad config, data or workdir, a non-finite step, a
checkpoint that could not be written: the newest complete one is kept); 75
(EX_TEMPFAIL) stopped by SIGTERM/SIGINT after saving a checkpoint: rerun to resume.

Multi-host (one process per host or per GPU): add --distributed (or set
JAXRESTORE_DISTRIBUTED=1). On Cloud TPU, Slurm, Open MPI and Kubernetes JAX
finds the coordinator itself; elsewhere set JAX_COORDINATOR_ADDRESS=host:port,
JAX_NUM_PROCESSES and JAX_PROCESS_ID (launch/local_multiprocess.sh does so on
localhost). Every process runs the same command with the same shared --workdir.
"""

import gc
import logging as stdlib_logging
import os
import sys
import threading
from pathlib import Path

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from jaxrestore.training import checkpoint, config_check, configs, loop, sharding
from jaxrestore.training import workdir as workdir_lib

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
PREEMPTED_EXIT = 75  # EX_TEMPFAIL: try again (the run resumes)


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


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing with every failure as one line (an unknown --config.field
    otherwise ends in a KeyError traceback, an error in a config file in its traceback)."""
    if any(arg in ("--help", "-h", "-?", "--helpshort") for arg in argv[1:]):
        app.usage(shorthelp=True, writeto_stdout=True, exitcode=0)  # absl's own exits 1
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        text = str(error)
        if "Traceback" in text:  # a config file raised: its last line says why
            head = text.split(":", 1)[0]
            text = f"{head}: {text.strip().splitlines()[-1].strip()}"
        sys.exit(f"jaxrestore.main: {' '.join(text.split())}")
    except (KeyError, AttributeError) as error:
        detail = error
        while isinstance(detail, BaseException) and detail.args:
            detail = detail.args[0]
        name, _, hint = str(detail).partition("\n")
        hint = f" ({hint.strip()})" if hint.strip() else ""
        sys.exit(f"jaxrestore.main: --config: no field {name.strip()}{hint}")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)  # library chatter; progress is printed by train
    logging.get_absl_handler().addFilter(_without_library_tracebacks)
    config = _CONFIG.value
    config_file = Path(flags.FLAGS["config"].config_filename.split(":")[0])
    try:
        config_check.validate(config, configs.reference(config.get("stage"), config_file))
    except config_check.ConfigError as error:
        sys.exit(f"jaxrestore.main: {config_file}: {error}")
    sharding.configure_cpu_devices(config.mesh)
    if _DISTRIBUTED.value:
        try:
            initialize_distributed()
        except (ValueError, RuntimeError) as error:
            raise SystemExit(f"jaxrestore.main: --distributed: {error}") from None
    workdir = _WORKDIR.value or workdir_lib.default_workdir(
        flags.FLAGS["config"].config_filename, config.variant
    )
    try:
        loop.train_and_evaluate(config, workdir)
    except loop.Preempted as stopped:
        _quiet_background()
        print(f"jaxrestore.main: {stopped}", file=sys.stderr)
        sys.exit(PREEMPTED_EXIT)
    except (
        ValueError,
        FileNotFoundError,
        loop.NonFiniteError,
        checkpoint.CheckpointError,
    ) as error:
        _quiet_background()
        sys.exit(f"jaxrestore.main: {error}")
    except OSError as error:  # a write into the workdir failed: full disk, permissions
        where, reason = error.filename or workdir, error.strerror or str(error)
        kept = checkpoint.newest_complete(workdir)
        _quiet_background()
        print(f"jaxrestore.main: {where}: could not be written: {reason}; {kept}", file=sys.stderr)
        sys.stderr.flush()
        # Leave now: at interpreter exit the failed save's threads (tensorstore's
        # callbacks into a closed event loop, TensorBoard's flush) print tracebacks
        # after the line. The newest complete checkpoint is already settled on disk.
        os._exit(1)


def _without_library_tracebacks(record: stdlib_logging.LogRecord) -> bool:
    """Log a library's error as its one line: a failed checkpoint write makes orbax log
    each of its save threads' tracebacks (dozens of lines), while the run's own error
    says what failed and which checkpoint is kept."""
    if record.exc_info and f"{os.sep}site-packages{os.sep}" in record.pathname:
        record.exc_info, record.exc_text = None, None
    return True


def _quiet_background() -> None:
    """Before the one line that ends a failed or stopped run: silence library logging,
    then collect garbage, so the save threads' own reports of the same failure (orbax
    logs every failed write with a traceback; asyncio logs each of its tasks' unread
    errors when they are collected, at exit) do not follow the line that explains it."""
    stdlib_logging.disable(stdlib_logging.CRITICAL)
    # A background writer (TensorBoard's event thread on a full disk) that fails from
    # now on would print its traceback after the line; the line already says it.
    threading.excepthook = lambda args: None
    gc.collect()
    sys.stdout.flush()


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
