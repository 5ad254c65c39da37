"""launch/colab_demo.ipynb runs top to bottom (headless, CPU) and shows what it claims."""

import json
import math
import time
from pathlib import Path

import pytest
from helpers import ROOT

NOTEBOOK = ROOT / "launch" / "colab_demo.ipynb"
CELL_TIMEOUT_S = 600


def test_stored_notebook_has_no_outputs():
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [], f"stored outputs in cell {cell.id}"
        assert cell.execution_count is None, f"stored execution count in cell {cell.id}"


def test_notebook_runs_and_restores(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    av = pytest.importorskip("av")

    # The kernel inherits this environment (conftest: JAX on 8 CPU devices).
    monkeypatch.setenv("JAXRESTORE_SKIP_INSTALL", "1")
    monkeypatch.setenv("JAXRESTORE_DEMO_STEPS", "8")
    monkeypatch.setenv("JAXRESTORE_DEMO_VARIANT", "tiny")
    monkeypatch.setenv("JAXRESTORE_DEMO_FRAMES", "24")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # importing configs/ writes nothing
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    began = time.perf_counter()
    client.execute()
    print(f"notebook executed in {time.perf_counter() - began:.0f} s")

    last = [cell for cell in notebook.cells if cell.cell_type == "code"][-1]
    text = "".join(o.get("text", "") for o in last.outputs if o.output_type == "stream")
    results = json.loads(text)

    table = results["metrics"]
    assert results["quality"] == 10
    assert table["ssim"]["psnr"] > table["JPEG"]["psnr"] + 0.5
    assert table["ssim"]["ssim"] > table["JPEG"]["ssim"]
    assert table["gan"]["lpips"] < table["JPEG"]["lpips"]

    unknown = results["unknown"]
    assert unknown["tables"] == unknown["true"]
    assert abs(unknown["network"] - unknown["true"]) <= 2

    clip = results["video"]
    restored = Path(clip["path"])
    assert restored.is_file() and restored.is_relative_to(tmp_path)
    assert clip["frames"] == 24
    with av.open(str(restored)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (320, 240)
        assert sum(1 for _ in container.decode(stream)) == 24
    assert 1 <= clip["quality"] <= 100

    tune = results["fine_tune"]
    assert tune["steps"] == 8 and tune["logged"] >= 2
    assert math.isfinite(tune["final_loss"])
    assert math.isfinite(tune["psnr"])
    assert (tmp_path / "finetune_run" / "metrics.jsonl").is_file()
