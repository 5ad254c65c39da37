"""Quality: the quantisation-table reader, the predictor, the estimate_quality command
and the QF-conditioned generator."""

import io
import json
import subprocess
import sys
from fractions import Fraction

import av
import imagecodecs
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import ROOT
from PIL import Image

from jaxrestore import estimate_quality, inference, metrics
from jaxrestore.data import degrade, sources
from jaxrestore.inference.quality import Choice
from jaxrestore.media import image as image_io
from jaxrestore.media import jpeg_tables
from jaxrestore.models import generator as generator_lib
from jaxrestore.models import quality as quality_lib


@pytest.fixture(scope="module")
def photo():
    return image_io.read_image(str(sources.embedded_dir() / "coffee.png"))


def pillow_jpeg(image, quality, **options):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality, **options)
    return buffer.getvalue()


def ffmpeg_mjpeg(image, qscale):
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = image.shape[1], image.shape[0]
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    encoder.options = {"qmin": str(qscale), "qmax": str(qscale)}
    frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuvj420p")
    return bytes(encoder.encode(frame)[0])


def test_every_libjpeg_quality_has_its_own_tables():
    assert len({t.tobytes() for t in jpeg_tables.LIBJPEG_TABLES}) == 100
    np.testing.assert_array_equal(
        jpeg_tables.scaled_table(jpeg_tables.ANNEX_K_LUMINANCE, 50), jpeg_tables.ANNEX_K_LUMINANCE
    )


def test_table_reader_is_exact_for_two_libjpeg_encoders(photo, tmp_path):
    small = photo[:64, :64]
    for quality in range(1, 101):
        for name, data in (
            ("pillow", pillow_jpeg(small, quality)),
            ("imagecodecs444", imagecodecs.jpeg8_encode(small, level=quality, subsampling="444")),
            ("pillow_gray", pillow_jpeg(small[..., 0], quality)),
        ):
            found = jpeg_tables.quality_from_tables(jpeg_tables.read_tables(io.BytesIO(data)))
            assert (found.quality, found.exact) == (quality, True), (name, quality)


def test_table_reader_approximates_other_encoders_monotonically(photo):
    # FFmpeg's MJPEG encoder scales MPEG-style tables, not libjpeg's: the nearest
    # libjpeg QF is reported, flagged inexact, falling as the quantiser scale rises.
    found = [
        jpeg_tables.quality_from_tables(jpeg_tables.read_tables(io.BytesIO(ffmpeg_mjpeg(photo, q))))
        for q in (2, 4, 8, 16, 31)
    ]
    assert not any(f.exact for f in found)
    qualities = [f.quality for f in found]
    assert qualities == sorted(qualities, reverse=True) and qualities[0] > 80 > 30 > qualities[-1]


def test_table_reader_rejects_what_is_not_a_readable_jpeg(tmp_path, photo):
    png = tmp_path / "a.png"
    Image.fromarray(photo).save(png)
    assert jpeg_tables.read_tables(png) is None
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ValueError, match="broken.jpg"):
        jpeg_tables.read_tables(broken)


def test_lattice_profile_peaks_at_the_true_quality(photo):
    for quality in (15, 50, 85):
        pixels = jnp.asarray(degrade.jpeg_roundtrip(photo, quality)[None] / 255.0)
        stats = quality_lib.lattice_statistics(quality_lib.block_dct_luma(pixels))
        assert int(jnp.argmax(stats["profile"][0])) + 1 == quality


@pytest.fixture(scope="module")
def predictor_run(tmp_path_factory):
    """A tiny quality predictor trained by the main command (seconds)."""
    workdir = tmp_path_factory.mktemp("quality") / "run"
    command = [
        sys.executable, "-m", "jaxrestore.main", "--config", "configs/quality.py:tiny",
        "--workdir", str(workdir),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def test_predictor_trains_and_reports_held_out_error(predictor_run):
    records = [
        json.loads(line) for line in (predictor_run / "metrics.jsonl").read_text().splitlines()
    ]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] < 0.5 * losses[0]
    final = records[-1]
    assert set(final) >= {"eval/quality_mae", "eval/quality_mae_q20", "eval/quality_mae_q80"}
    # 60 steps of a tiny network: guessing the middle of 5..95 would be off by 30.
    assert final["eval/quality_mae"] < 15


def run_estimate(capsys, *args):
    """The command in this process (it is a plain function of argv)."""
    status = estimate_quality.run([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_estimate_quality_command(tmp_path, photo, predictor_run, capsys):
    jpeg = tmp_path / "a.jpg"
    jpeg.write_bytes(pillow_jpeg(photo, 37))
    png = tmp_path / "b.png"
    Image.fromarray(degrade.jpeg_roundtrip(photo, 37)).save(png)
    video = tmp_path / "c.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=10, options={"crf": "40"})
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        for i in range(12):
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(photo[i : i + 96, :128]), "rgb24"
            )
            container.mux(stream.encode(frame))
        container.mux(stream.encode())

    # Without a predictor: JPEG files only, others get a one-line error and exit 1.
    status, out, err = run_estimate(capsys, jpeg, png, "--predictor", "")
    assert status == 1
    assert json.loads(out) == {
        "file": str(jpeg),
        "quality": 37,
        "method": "quantization-table",
        "exact": True,
    }
    assert err.strip().count("\n") == 0 and str(png) in err
    assert "not a JPEG file" in err and "--predictor quality" in err

    args = (jpeg, png, video, tmp_path / "missing.png", "--predictor", predictor_run)
    status, out, err = run_estimate(capsys, *args)
    assert status == 1 and "missing.png: no such file" in err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [r["method"] for r in lines] == ["quantization-table", "network", "network"]
    assert 1 <= lines[1]["quality"] <= 100
    assert lines[2]["frames_sampled"] == 12 and len(lines[2]["per_frame"]) == 12
    assert lines[2]["quality_min"] <= lines[2]["quality"] <= lines[2]["quality_max"]


@pytest.fixture(scope="module")
def conditioned_run(tmp_path_factory):
    """A tiny QF-conditioned generator trained 15 steps on QF 5–95 by the train loop."""
    from jaxrestore.training import configs, loop

    config = configs.load("ssim:tiny")
    config.model.conditioned = True
    config.data.quality_min, config.data.quality_max = 5, 95
    config.optimizer.learning_rate = 3e-3
    config.total_steps = config.eval.every_steps = config.checkpoint_every_steps = 15
    config.eval.lpips = False
    config.eval.qualities, config.eval.max_images = (20,), 1  # the tests read the weights only
    workdir = tmp_path_factory.mktemp("conditioned") / "run"
    loop.train_and_evaluate(config, workdir)
    return workdir


def test_conditioned_generator_output_depends_on_quality(conditioned_run, photo):
    model = generator_lib.Generator(channels=8, num_blocks=2, conditioned=True)
    x = jnp.asarray(np.random.default_rng(0).random((2, 16, 16, 3), np.float32))
    params = model.init(jax.random.key(0), x, jnp.array([10.0, 90.0]))
    # Fresh: FiLM starts at zero, so the quality changes nothing yet.
    np.testing.assert_array_equal(model.apply(params, x, 10.0), model.apply(params, x, 90.0))
    with pytest.raises(ValueError, match="quality"):
        model.apply(params, x)

    # Trained on mixed qualities, the same input restores differently at QF 10 and 90.
    restorer = inference.Restorer(conditioned_run)
    pixels = degrade.jpeg_roundtrip(photo[:64, :64], 30)
    low = restorer.restore(pixels, 10)
    high = restorer.restore(pixels, 90)
    assert np.abs(low.astype(int) - high).mean() > 0.05


def test_restorer_takes_quality_from_tables_network_or_user(
    tmp_path, photo, predictor_run, conditioned_run
):
    restorer = inference.Restorer(conditioned_run, inference.QualityEstimator(predictor_run))
    jpeg = tmp_path / "a.jpg"
    jpeg.write_bytes(pillow_jpeg(photo, 23))
    pixels = image_io.read_image(str(jpeg))
    assert restorer.choose_quality("auto", pixels, jpeg) == Choice(23.0, "quantization-table")
    assert restorer.choose_quality(64, pixels, jpeg) == Choice(64.0, "given")
    estimated = restorer.choose_quality("auto", pixels)
    network = estimated.quality
    assert estimated.method == "network" and 1 <= network <= 100
    # The file alone: its pixels are read for the predictor (a PNG has no tables).
    png = tmp_path / "a.png"
    Image.fromarray(pixels).save(png)
    assert restorer.choose_quality("auto", path=png) == Choice(network, "network")
    with pytest.raises(
        ValueError, match="not a JPEG file: its quality is estimated by the quality predictor"
    ):
        inference.Restorer(conditioned_run).choose_quality("auto", pixels, png)
    restored = restorer.restore(pixels, "auto", jpeg)  # QF 23, from the tables
    np.testing.assert_array_equal(restored, restorer.restore(pixels, 23))
    assert restored.shape == pixels.shape and restored.dtype == np.uint8
    with pytest.raises(ValueError, match="1..100"):
        restorer.choose_quality(0, pixels)
    with pytest.raises(ValueError, match="not a generator"):
        inference.Restorer(predictor_run)


def test_export_is_small_and_restores_the_same_predictor(tmp_path, predictor_run, photo):
    from jaxrestore import export

    info = export.export(predictor_run, tmp_path / "exported")
    assert info["kind"] == "quality" and info["steps"] == 60
    assert "eval/quality_mae" in info["evaluation"]
    size = sum(p.stat().st_size for p in (tmp_path / "exported").rglob("*") if p.is_file())
    assert size < 1_000_000
    pixels = degrade.jpeg_roundtrip(photo, 45)
    from_run = inference.QualityEstimator(predictor_run).estimate(pixels)
    from_export = inference.QualityEstimator(tmp_path / "exported").estimate(pixels)
    assert from_run == from_export
    with pytest.raises(FileNotFoundError, match="neither a training workdir"):
        inference.QualityEstimator(tmp_path)


def test_compare_scores_models_under_each_condition(conditioned_run, tmp_path, capsys):
    from jaxrestore import compare

    out = tmp_path / "rows.json"
    args = [str(conditioned_run), "--source", "embedded", "--conditions", "jpeg:20,double:30:10"]
    assert compare.run([*args, "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert table.count("\n") == 4 and "| jpeg:20 |" in table
    rows = json.loads(out.read_text())
    images = [
        image_io.read_image(str(sources.embedded_dir() / n)) for n in sources.EMBEDDED_HELDOUT
    ]
    expected = np.mean([metrics.psnr(degrade.jpeg_roundtrip(i, 20), i) for i in images])
    assert rows[0]["psnr_degraded"] == pytest.approx(expected)
    assert rows[0][f"{conditioned_run} quality"] == "given"
    assert rows[1][f"{conditioned_run} quality"] == "oracle"  # no predictor given
    assert all(np.isfinite(r[str(conditioned_run)]) for r in rows)


def test_compare_scores_what_the_restore_command_produces(conditioned_run, photo, tmp_path):
    """Images through the tiled path at the given QF; a clip through the video path at
    one QF for the whole clip (the predictor's, else compare's oracle)."""
    from jaxrestore.evaluation import compare, protocol

    frames = np.stack([photo[2 * i : 2 * i + 64, 3 * i : 3 * i + 96] for i in range(6)])
    np.save(tmp_path / "clip.npy", frames)
    images = sources.FileImages([sources.embedded_dir() / "coffee.png"])
    run, predictor = str(conditioned_run), "quality"
    clips = sources.ClipSet(tmp_path)
    rows = compare.compare([run], ["jpeg:20"], images, predictor, [35], clips, lpips=True)
    restorer = inference.Restorer(conditioned_run, inference.QualityEstimator(predictor))
    jpeg = degrade.jpeg_roundtrip(photo, 20)
    assert rows[0][run] == pytest.approx(metrics.psnr(restorer.restore_pixels(jpeg, 20), photo))
    decoded = degrade.video_roundtrip(frames, "h264", 35)
    chosen = protocol.clip_quality(restorer, decoded)
    assert chosen.method == "network" and chosen.quality == round(chosen.quality, 1)
    restored = restorer.restore_frames(decoded, chosen.quality)
    expected = np.mean([metrics.psnr(r, o) for r, o in zip(restored, frames)])
    assert rows[1]["images"] == 6 and rows[1][f"{run} quality"] == "predicted"
    assert rows[1][run] == pytest.approx(expected)
    # LPIPS beside PSNR, of the same frames (lower is better).
    lpips = [
        float(metrics.full_reference(o[None], r[None])["lpips"][0])
        for r, o in zip(restored, frames)
    ]
    assert rows[1][f"{run} lpips"] == pytest.approx(np.mean(lpips), rel=1e-5)
    lpips = [
        float(metrics.full_reference(o[None], d[None])["lpips"][0]) for d, o in zip(decoded, frames)
    ]
    assert rows[1]["lpips_degraded"] == pytest.approx(np.mean(lpips), rel=1e-5)
    assert 0 < rows[0][f"{run} lpips"] < 1 and 0 < rows[0]["lpips_degraded"] < 1
    table = compare.markdown(rows, [run]).splitlines()
    assert table[0].endswith("| degraded LPIPS | run LPIPS |")
    assert table[3].endswith(f"| {rows[1]['lpips_degraded']:.3f} | {rows[1][f'{run} lpips']:.3f} |")
    (oracle,) = compare.compare([run], [], images, None, [35], clips)
    assert "lpips_degraded" not in oracle
    assert oracle[f"{run} quality"] == "oracle" and np.isfinite(oracle[run])
