"""The LIVE1 / Classic5 benchmark: OpenCV JPEGs restored by the restore path, scored
whole, with the peers' published row beside ours."""

import io
import json
import shutil

import ml_collections
import numpy as np
from PIL import Image

from jaxrestore import export, metrics
from jaxrestore.data import assemble
from jaxrestore.evaluation import benchmark
from jaxrestore.inference import loader
from jaxrestore.training import workdir


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


def test_images_the_weights_saw_get_a_table_without_them(tmp_path, photo, capsys):
    live1 = tmp_path / "live1"
    live1.mkdir()
    Image.fromarray(photo[:160, :224]).save(live1 / "a.bmp")
    Image.fromarray(photo[140:300, 200:424]).save(live1 / "b.bmp")
    # The packaged weights, told that they trained on b (as a renamed copy would be).
    weights = tmp_path / "weights"
    shutil.copytree(loader.resolve("ssim"), weights)
    info = json.loads((weights / "model.json").read_text())
    with Image.open(live1 / "b.bmp") as image:
        code = f"{assemble.difference_hash(image):032x}"
    info["evaluation_overlap"] = [{"image": "LIVE1 b", "dhash": code, "trained_as": "x.png"}]
    (weights / "model.json").write_text(json.dumps(info))
    out = tmp_path / "bench.json"
    args = ["--live1", str(live1), "--sets", "live1", "--qualities", "10"]
    assert benchmark.run([*args, "--checkpoint", str(weights), "--json", str(out)]) == 0
    table = capsys.readouterr().out
    result = json.loads(out.read_text())["results"][0]
    assert result["trained_on"] == ["b.bmp"]
    row = result["rows"][0]
    a, b = row["images"]
    assert (a["trained_on"], b["trained_on"]) == (False, True)
    # Over the unseen images: a's numbers alone; over all: the mean of both.
    assert row["unseen"]["restored"]["psnr"] == a["restored"]["psnr"]
    both = (a["restored"]["psnr"] + b["restored"]["psnr"]) / 2
    assert abs(row["restored"]["psnr"] - both) < 1e-9
    gain = a["restored"]["psnr"] - a["jpeg"]["psnr"]
    assert f"1 of these 2 images (b.bmp) was in {weights}'s training data" in table
    assert f"| 10 | {a['jpeg']['psnr']:.2f} / " in table and f"| {gain:+.2f} |" in table
    # A fine-tune started from such weights inherits the record in its export.
    config = ml_collections.ConfigDict({"init_from": str(weights)})
    assert export.inherited_overlap(config) == info["evaluation_overlap"]
    assert export.inherited_overlap(ml_collections.ConfigDict({"init_from": ""})) == []
    # The packaged weights say what they saw.
    packaged = json.loads((loader.resolve("ssim") / "model.json").read_text())
    assert [e["image"] for e in packaged["evaluation_overlap"]] == [
        "LIVE1 parrots",
        "LIVE1 monarch",
        "Classic5 barbara",
    ]


def test_the_record_of_seen_images_follows_fine_tunes_and_is_said_when_total(tmp_path):
    record = [{"image": "LIVE1 b", "dhash": "0" * 32, "trained_as": "x.png"}]
    export_dir, first, second = tmp_path / "export", tmp_path / "run1", tmp_path / "run2"
    for folder in (export_dir, first, second):
        folder.mkdir()
    (export_dir / "model.json").write_text(json.dumps({"evaluation_overlap": record}))
    # A run started from the export records it; a run started from that run, too.
    workdir.record_overlap(first, export_dir)
    workdir.record_overlap(second, first)
    assert workdir.read_overlap(first) == workdir.read_overlap(second) == record
    workdir.record_overlap(tmp_path / "export", tmp_path / "nothing-here")  # no record: no file
    assert workdir.read_overlap(tmp_path / "nothing-here") == []
    # Every image seen: said in one line instead of an empty table.
    means = {k: {s: 1.0 for s in benchmark.SCORES} for k in ("jpeg", "restored")}
    result = {"set": "Classic5", "grey": True, "count": 2, "trained_on": ["1.bmp", "2.bmp"]}
    result["rows"] = [{"quality": 10, **means}]
    table = benchmark.markdown([result], "gan")
    assert "All 2 of these images were in gan's training data: no row over unseen" in table
