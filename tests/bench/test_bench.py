"""The benchmark command's machinery (the figures themselves come from running it)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from jaxrestore.bench import common, train


def test_summary_of_repeats():
    stats = common.summarise([2.0, 1.0, 4.0])
    assert stats == {"median": 2.0, "min": 1.0, "max": 4.0, "spread": 1.5, "repeats": 3}


def test_a_train_case_runs_in_its_own_process_with_the_configs_devices():
    spec = {"stage": "ssim", "size": "cpu", "dtype": "float32", "quick": True, "repeats": 2}
    result = train.run_case({**spec, "steps_per_repeat": 1})
    assert result["device"].endswith("x8")  # configs/ssim.py:cpu trains on 8 CPU devices
    assert result["config"]["batch_size"] == 8 and result["config"]["channels"] == 32
    assert result["repeats"] == 2 and result["unit"] == "s/step"
    assert 0 < result["min"] <= result["median"] <= result["max"]
    assert result["patches_per_s"] == pytest.approx(8 / result["median"])
    assert result["compile_s"] > 0


def test_synthetic_batches_have_the_pipeline_layout():
    batch = common.synthetic_batch(4, 32)
    assert batch["degraded"].shape == batch["target"].shape == (4, 32, 32, 3)
    assert batch["degraded"].dtype == np.uint8 and batch["quality"].dtype == np.int32
    assert 0 < np.abs(batch["degraded"].astype(int) - batch["target"]).mean() < 12


def test_unknown_benchmark_is_refused():
    done = subprocess.run(
        [sys.executable, "-m", "jaxrestore.bench", "nonsense"], capture_output=True, text=True
    )
    assert done.returncode == 2 and "nonsense" in done.stderr
    assert not [line for line in done.stdout.splitlines() if line.startswith("{")]


def test_reference_records_compare_jax_and_torch():
    pytest.importorskip("torch", reason="PyTorch (the reference) is not installed")
    done = subprocess.run(
        [sys.executable, "-m", "jaxrestore.bench", "reference", "--quick", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["name"] for r in records] == ["reference/infer", "reference/train_step"]
    infer, step = records
    assert infer["max_abs_diff"] <= 1e-4
    assert step["loss_jax"] == pytest.approx(step["loss_torch"], rel=1e-5)
    for record in records:
        ratio = record["median"] / record["torch"]["median"]
        assert record["jax_over_torch"] == pytest.approx(ratio)


def test_onnx_record_times_onnxruntime_beside_jax(monkeypatch, capsys):
    pytest.importorskip("onnxruntime")
    from types import SimpleNamespace

    from jaxrestore.bench import onnx_runtime

    monkeypatch.setattr(onnx_runtime, "frame_size", lambda quick: ("tiny", 24, 40))
    (record,) = onnx_runtime.run(SimpleNamespace(quick=True, repeats=2))
    assert json.loads(capsys.readouterr().out) == record
    assert record["name"] == "onnx/infer" and record["max_abs_diff"] < 1e-3
    ratio = record["onnxruntime"]["median"] / record["median"]
    assert record["onnx_over_jax"] == pytest.approx(ratio)
    assert record["repeats"] == record["onnxruntime"]["repeats"] == 2
