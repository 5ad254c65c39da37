"""The run's TensorBoard events: read back as TensorBoard reads them, purged on
resume, and a write error ends them with one warning instead of hanging the run."""

from __future__ import annotations

import subprocess
import threading

import numpy as np
import pytest

from jaxrestore.training import events


def read_scalars(directory) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(
        str(directory), size_guidance={"scalars": 0, "images": 0}
    ).Reload()
    return {
        tag: [(e.step, e.value) for e in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["scalars"]
    }


def test_a_resumed_run_replaces_the_steps_it_runs_again(tmp_path):
    log = events.EventLog(tmp_path, 0, enabled=True)
    for step in range(1, 11):
        log.scalars(step, {"loss": float(step)})
    log.close()
    # Resumed from a checkpoint at step 5: steps 6-8 are run again with new values.
    log = events.EventLog(tmp_path, 5, enabled=True)
    for step in range(6, 9):
        log.scalars(step, {"loss": 100.0 + step})
    log.images(8, {"heldout/a/q10": np.full((4, 6, 3), 200, np.uint8)})
    log.close()
    scalars = read_scalars(tmp_path / events.EVENTS_DIR)
    kept, rerun = [(s, float(s)) for s in range(1, 6)], [(6, 106.0), (7, 107.0), (8, 108.0)]
    assert scalars == {"loss": kept + rerun}


def test_other_processes_write_nothing(tmp_path):
    log = events.EventLog(tmp_path, 0, enabled=False)
    log.scalars(1, {"loss": 1.0})
    log.close()
    assert not (tmp_path / events.EVENTS_DIR).exists()


def test_a_full_disk_ends_the_events_with_one_warning(tmp_path, capsys):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()})")
    try:
        threads = threading.active_count()
        log = events.EventLog(disk, 0, enabled=True)
        crop = np.random.default_rng(0).integers(0, 256, (128, 384, 3), np.uint8)
        for step in range(1, 200):  # incompressible images: the 256 KiB fill within a few
            log.scalars(step, {"loss": 1.0 / step})
            log.images(step, {"heldout/noise/q10": crop})
        log.close()
        assert log.writer is None and threading.active_count() == threads
        warnings = capsys.readouterr().err.strip().splitlines()
        assert len(warnings) == 1, warnings
        assert warnings[0].startswith(f"warning: TensorBoard events in {disk / 'tensorboard'}")
        assert "No space left on device" in warnings[0]
        written = read_scalars(disk / events.EVENTS_DIR).get("loss", [])
        assert [s for s, _ in written] == list(range(1, len(written) + 1))  # a whole prefix
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
