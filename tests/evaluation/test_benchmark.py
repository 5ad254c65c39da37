"""The LIVE1 / Classic5 benchmark: OpenCV JPEGs restored by the restore path, scored
whole, with the peers' published row beside ours."""

import io
import json

import numpy as np
from PIL import Image

from jaxrestore import metrics
from jaxrestore.evaluation import benchmark


def test_benchmark_scores_the_restore_path_on_colour_and_grey(tmp_path, photo, capsys):
    live1, classic5 = tmp_path / "live1", tmp_path / "classic5"
    live1.mkdir(), classic5.mkdir()
    for i, (top, left) in enumerate(((0, 0),)):
        crop = photo[top : top + 160, left : left + 224]
        Image.fromarray(crop).save(live1 / f"{i}.bmp")
        Image.fromarray(crop).convert("L").save(classic5 / f"{i}.bmp")
    out = tmp_path / "bench.json"
    args = ["--live1", str(live1), "--classic5", str(classic5), "--qualities", "10,30"]
    assert benchmark.run([*args, "--json", str(out), "--markdown", str(tmp_path / "t.md")]) == 0
    table = capsys.readouterr().out
    results = json.loads(out.read_text())["results"]
    assert [r["set"] for r in results] == ["LIVE1", "Classic5"]
    for result in results:
        for row in result["rows"]:
            # The restore path read each file's QF from its tables, and restored it.
            assert row["qf_used_median"] == row["quality"]
            assert row["restored"]["psnr"] > row["jpeg"]["psnr"] + 0.3, row
            assert row["restored"]["psnr_b"] > row["jpeg"]["psnr_b"]
    # The JPEG column is OpenCV's file scored directly.
    original = np.asarray(Image.open(live1 / "0.bmp"))
    jpeg = np.asarray(Image.open(io.BytesIO(benchmark.encode(original, 10))))
    first = results[0]["rows"][0]["images"][0]
    assert first["image"] == "0.bmp"
    assert abs(first["jpeg"]["psnr"] - float(metrics.psnr(original, jpeg))) < 1e-4
    with Image.open(io.BytesIO(benchmark.encode(original[..., 0], 10))) as grey:
        assert grey.mode == "L"
    assert "FBCNN (ICCV'21) | 27.77 | 31.43 |" in table and "**Classic5** (1 image, grey)" in table
    # Bad arguments: one line, exit 2, before any model loads.
    for bad, message in (
        (["--sets", "bsds"], "choose from live1, classic5"),
        (["--qualities", "0"], "QFs in 1..100"),
        (["--live1", str(tmp_path / "none"), "--sets", "live1"], "no LIVE1 images here"),
    ):
        assert benchmark.run(bad) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
