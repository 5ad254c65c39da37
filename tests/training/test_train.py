import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, restore_run

from jaxrestore.data import pipeline
from jaxrestore.evaluation import curves
from jaxrestore.training import checkpoint, sharding
from jaxrestore.training import workdir as workdir_lib
from jaxrestore.training.stages import ssim


@pytest.mark.parametrize("arch", ["residual", "unet"])
def test_loss_falls_over_a_tiny_run(tiny_config, arch):
    tiny_config.model.arch = arch
    tiny_config.optimizer.learning_rate = 2e-3
    tiny_config.total_steps = 40  # the schedule decays to its floor at total_steps
    mesh = sharding.make_mesh(tiny_config.mesh)
    state = ssim.create_state(tiny_config, mesh)
    step = sharding.jit_step(ssim.train_step, mesh, loss_config=tiny_config.loss)
    batch = sharding.to_global(next(iter(pipeline.make_train_dataset(tiny_config))), mesh)
    history = []
    for _ in range(40):
        state, metrics = step(state, batch)
        history.append({k: float(v) for k, v in metrics.items()})
    losses = [m["loss"] for m in history]
    assert all(np.isfinite(losses))
    assert int(state.step) == 40
    # The generator starts as the identity: its first output is the JPEG itself.
    assert history[0]["psnr_restored"] == history[0]["psnr_degraded"]
    assert np.mean(losses[-5:]) < 0.96 * losses[0]
    assert history[-1]["psnr_restored"] > history[-1]["psnr_degraded"] + 0.03


def run_main(workdir: Path, *overrides: str, config: str = "configs/ssim.py:tiny"):
    command = [
        sys.executable,
        "-m",
        "jaxrestore.main",
        "--config",
        config,
        "--workdir",
        str(workdir),
        *overrides,
    ]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=600)
    text = output.decode()
    assert process.returncode == 0, text[-3000:]
    return text


def read_metrics(workdir: Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def finished_checkpoints(workdir: Path) -> list[int]:
    directory = workdir / "checkpoints"
    if not directory.exists():
        return []
    return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())


def check_events(workdir: Path, rows: list[dict], evaluated: list[int]) -> None:
    """WORKDIR/tensorboard, read back as TensorBoard reads it: every metric of every
    metrics.jsonl row as a scalar, and held-out crops at each evaluated step."""
    from tensorboard.backend.event_processing import event_accumulator

    events = event_accumulator.EventAccumulator(
        str(workdir / "tensorboard"), size_guidance={"scalars": 0, "images": 0}
    ).Reload()
    logged = {(k, r["step"]): v for r in rows for k, v in r.items() if k != "step"}
    tags = events.Tags()
    written = {(tag, e.step): e.value for tag in tags["scalars"] for e in events.Scalars(tag)}
    assert written.keys() == logged.keys()
    for key, value in logged.items():
        assert written[key] == pytest.approx(value, rel=1e-6, abs=1e-7), key
    assert sorted(tags["images"]) == ["heldout/coffee/q10", "heldout/rocket/q10"]
    for tag in tags["images"]:  # JPEG | restored | original, 128-pixel crops
        shown = events.Images(tag)
        assert [image.step for image in shown] == evaluated
        assert (shown[0].width, shown[0].height) == (3 * 128, 128)


def test_main_writes_metrics_and_held_out_evaluation(tmp_path, tiny_config, capsys):
    finish(run_main(tmp_path))
    rows = read_metrics(tmp_path)
    check_events(tmp_path, rows, evaluated=[12])
    train_rows = [r for r in rows if "loss" in r]
    assert [r["step"] for r in train_rows] == list(range(2, 13, 2))
    for key in ("loss", "ssim_loss", "l1", "grad_norm", "steps_per_second"):
        assert all(np.isfinite(r[key]) for r in train_rows), key
    evaluation = [r for r in rows if "eval/psnr_jpeg_q10" in r]
    assert len(evaluation) == 1 and evaluation[0]["step"] == 12
    row = evaluation[0]
    for q in tiny_config.eval.qualities:
        assert 20 < row[f"eval/psnr_jpeg_q{q}"] < 45
        assert 0 < row[f"eval/lpips_jpeg_q{q}"] < 1
        assert np.isfinite(row[f"eval/lpips_restored_q{q}"])
        assert 0 < row[f"eval/ssim_restored_q{q}"] <= 1
        assert np.isfinite(row[f"eval/psnr_restored_q{q}"])
    assert row["eval/psnr_jpeg_q40"] > row["eval/psnr_jpeg_q10"] + 2
    assert row["eval/lpips_jpeg_q40"] < row["eval/lpips_jpeg_q10"]
    per_image = json.loads((tmp_path / "eval" / "step_12.json").read_text())
    assert set(per_image) == {"coffee", "rocket"}
    # The run's curves, as the training record plots them.
    drawn = curves.plot([tmp_path], tmp_path / "curves.png")[str(tmp_path)]
    assert [step for step, _ in drawn["loss"]["loss"]] == list(range(2, 13, 2))
    assert drawn["gain"]["q10"] == [(12, row["eval/psnr_gain_q10"])]
    lpips_ratio = row["eval/lpips_restored_q40"] / row["eval/lpips_jpeg_q40"]
    assert drawn["lpips"]["q40"] == [(12, pytest.approx(lpips_ratio))]
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert checkpoint.load_config(tmp_path).model.channels == tiny_config.model.channels
    assert finished_checkpoints(tmp_path) == [4, 8, 12]

    # Continuing with settings that change the saved state or data stream is refused
    # in one line, before anything is trained or written.
    process = run_main(tmp_path, "--config.total_steps=16", "--config.data.workers=1")
    output = process.communicate(timeout=300)[0].decode()
    assert process.returncode != 0
    assert "cannot resume with a different data.workers (checkpoint 0, now 1)" in output
    assert "Traceback" not in output
    assert finished_checkpoints(tmp_path) == [4, 8, 12]

    # A checkpoint damaged on disk after it was written is skipped for the one before.
    rng = np.random.default_rng(0)
    for path in (tmp_path / "checkpoints" / "12" / "state").rglob("*"):
        if path.is_file():
            path.write_bytes(rng.bytes(path.stat().st_size or 16))
    _, step, loop = restore_run(tmp_path, tiny_config)
    assert step == 8 and loop == {"skipped_steps": 0}
    assert "unreadable checkpoint skipped (step 12:" in capsys.readouterr().err


def test_metrics_log_drops_rows_to_rerun_and_a_line_cut_short(tmp_path):
    rows = [{"step": s, "loss": 1.0 / s} for s in (2, 4, 6)]
    text = "".join(json.dumps(r) + "\n" for r in rows) + '{"step": 8, "lo'  # killed mid-write
    (tmp_path / "metrics.jsonl").write_text(text)
    # The one reader of metrics.jsonl (export, plot_run, resume) leaves the torn line out.
    assert workdir_lib.read_metrics(tmp_path) == rows
    assert workdir_lib.eval_rows(tmp_path) == []
    log = workdir_lib.MetricsLog(workdir_lib.as_dir(tmp_path), resume_step=4, enabled=True)
    assert read_metrics(tmp_path) == rows[:2]
    log.write(6, {"loss": 0.5})
    assert read_metrics(tmp_path) == [*rows[:2], {"step": 6, "loss": 0.5}]
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]  # no temporary left
