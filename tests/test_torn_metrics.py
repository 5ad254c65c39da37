"""The commands that read a run's metrics.jsonl take a last line cut short by a kill
(as `training.workdir.read_metrics` leaves it out) instead of failing on it."""

import json

import pytest

from jaxrestore import export, plot_run
from jaxrestore.inference import loader

ROWS = [
    {"step": 2, "loss": 0.5},
    {"step": 4, "loss": 0.4, "eval/psnr_gain_q10": 0.3, "eval/lpips_restored_q10": 0.30},
    {"step": 6, "loss": 0.3},
    {"step": 8, "loss": 0.2, "eval/psnr_gain_q10": 0.5, "eval/lpips_restored_q10": 0.20},
]
# Killed while writing a row that, whole, would have been the best pick.
TORN = '{"step": 8, "loss": 0.1, "eval/psnr_gain_q10": 0.9, "eval/lpips_restored_q1'


def write_metrics(workdir, rows, torn=TORN):
    text = "".join(json.dumps(row) + "\n" for row in rows) + torn
    (workdir / "metrics.jsonl").write_text(text)


def test_plot_run_leaves_out_a_line_cut_short(tmp_path, capsys):
    write_metrics(tmp_path, ROWS)
    out = tmp_path / "curves.png"
    assert plot_run.run([str(tmp_path), "--out", str(out)]) == 0, capsys.readouterr().err
    assert out.stat().st_size > 0
    # No metrics.jsonl at all is still one line and status 1.
    (tmp_path / "empty").mkdir()
    assert plot_run.run([str(tmp_path / "empty"), "--out", str(out)]) == 1
    assert "no metrics.jsonl" in capsys.readouterr().err


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A workdir with checkpoints at steps 4 and 8 of the tiny SSIM config (the initial
    state, saved as the train loop saves it; nothing is trained)."""
    from jaxrestore.data import pipeline
    from jaxrestore.training import checkpoint, configs, loop, sharding

    config = configs.load("ssim:tiny")
    workdir = tmp_path_factory.mktemp("torn") / "run"
    state, _ = loop.build(config, sharding.make_mesh(config.mesh))
    manager = checkpoint.make_manager(workdir, config)
    data_iterator = iter(pipeline.make_train_dataset(config))
    for step in (4, 8):
        checkpoint.save(manager, step, state, data_iterator, config)
        manager.wait_until_finished()
    checkpoint.finish(manager, 8)
    return workdir


def test_export_best_lpips_leaves_out_a_line_cut_short(saved_run, tmp_path, capsys):
    write_metrics(saved_run, ROWS)
    out = tmp_path / "best"
    status = export.run([str(saved_run), str(out), "--best-lpips", "10"])
    printed = capsys.readouterr()
    assert status == 0, printed.err
    assert "step 8, eval/lpips_restored_q10 0.2000" in printed.out
    info = json.loads((out / "model.json").read_text())
    assert info["steps"] == 8 and info["evaluation"]["eval/lpips_restored_q10"] == 0.20
    assert loader.load(out, "generator").conditioned is False
