"""`python -m jaxrestore.main` with faults injected, for tests/test_faults.py.

    python tests/fault_run.py [--nan-at STEP] [--kill-in-save] -- MAIN_ARGS...

--nan-at STEP: the batch of training step STEP carries a NaN pixel (the step's
    loss and gradient are then NaN).
--kill-in-save: the process SIGKILLs itself in the middle of its first checkpoint
    save, after every file of the checkpoint is written and before orbax renames
    the temporary directory into place (the commit).

Everything else is the real command: the same flags, config checks, loop and
checkpoints.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys
from pathlib import Path

import numpy as np


def newest_checkpoint(workdir: Path) -> int:
    directory = workdir / "checkpoints"
    steps = (
        [int(p.name) for p in directory.iterdir() if p.name.isdigit()] if directory.exists() else []
    )
    return max(steps, default=0)


def inject_nan(step: int, workdir: Path) -> None:
    """Patch the loop's host-to-device call so that training step `step` gets a NaN."""
    from jaxrestore.training import sharding

    to_global = sharding.to_global
    calls = {"step": newest_checkpoint(workdir)}  # the loop resumes after the newest one

    @functools.wraps(to_global)
    def with_nan(batch, mesh):
        calls["step"] += 1
        if calls["step"] == step:
            degraded = batch["degraded"].astype(np.float32)
            degraded[0, 0, 0, 0] = np.nan
            batch = {**batch, "degraded": degraded}
        return to_global(batch, mesh)

    sharding.to_global = with_nan


def kill_in_first_save() -> None:
    """SIGKILL this process when orbax is about to commit its first checkpoint."""
    from orbax.checkpoint._src.path import atomicity

    async def finalize(self, *args, **kwargs):
        print(f"fault_run: SIGKILL before committing {self._final_path}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    atomicity.AtomicRenameTemporaryPath.finalize = finalize


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nan-at", type=int)
    parser.add_argument("--kill-in-save", action="store_true")
    own, main_args = (
        parser.parse_args(sys.argv[1 : sys.argv.index("--")]),
        sys.argv[sys.argv.index("--") + 1 :],
    )
    workdir = Path(main_args[main_args.index("--workdir") + 1])
    if own.nan_at is not None:
        inject_nan(own.nan_at, workdir)
    if own.kill_in_save:
        kill_in_first_save()

    from absl import app

    from jaxrestore import main as main_module

    sys.argv = ["jaxrestore.main", *main_args]
    app.run(main_module.main, flags_parser=main_module.parse_flags)


if __name__ == "__main__":
    main()
