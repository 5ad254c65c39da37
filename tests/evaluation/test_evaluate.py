"""Evaluation: each metric against an independent reference, and the command's report."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
import skimage.color
import skimage.data
import skimage.metrics
from PIL import Image

from jaxrestore import evaluate, metrics
from jaxrestore.data import degrade
from jaxrestore.evaluation import protocol

SSIM_SETTINGS = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
# Every image here is a 256² crop and every metric call a batch of 4, so the jitted
# metrics compile once for the whole file.
ASTRONAUT = (slice(0, 256), slice(128, 384))
CHELSEA = (slice(22, 278), slice(100, 356))
COFFEE = (slice(0, 256), slice(170, 426))  # the cup, 173..412 × 13..240 in the photo


def skimage_scores(original: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """PSNR / SSIM on RGB and on BT.601 Y, computed by skimage alone."""
    y_original = skimage.color.rgb2ycbcr(original)[..., 0]
    y_test = skimage.color.rgb2ycbcr(test)[..., 0]
    ssim = skimage.metrics.structural_similarity
    return {
        "psnr": skimage.metrics.peak_signal_noise_ratio(original, test, data_range=255),
        "psnr_y": skimage.metrics.peak_signal_noise_ratio(y_original, y_test, data_range=255),
        "ssim": ssim(original, test, channel_axis=-1, data_range=255, **SSIM_SETTINGS),
        "ssim_y": ssim(y_original, y_test, data_range=255, **SSIM_SETTINGS),
    }


def ours(original: np.ndarray, tests: list[np.ndarray]) -> dict[str, np.ndarray]:
    values = metrics.full_reference(jnp.asarray(original[None]), jnp.asarray(np.stack(tests)))
    return {name: np.asarray(v) for name, v in values.items()}


def test_fidelity_metrics_match_skimage():
    original = skimage.data.astronaut()[ASTRONAUT]
    tests = [degrade.jpeg_roundtrip(original, q) for q in (10, 30, 50, 90)]
    values = ours(original, tests)
    for index, test in enumerate(tests):
        for name, expected in skimage_scores(original, test).items():
            assert abs(values[name][index] - expected) <= 1e-3, (name, index)
    assert 25 < values["psnr"][0] < values["psnr"][1]


def test_psnr_b_on_a_known_pair_and_against_sewar():
    # 16×16: flat 0 against a block-aligned step to 10 in the right half.
    # MSE 50; the step crosses one vertical block edge: D_B = 16·100 / 32 pairs = 50,
    # D_B^c = 0, η = log2 8 / log2 16 = 3/4, BEF = 37.5, PSNR-B = 10 log10(255² / 87.5).
    flat = np.zeros((1, 16, 16, 1), np.float32)
    step = flat.copy()
    step[:, :, 8:] = 10.0
    value = float(metrics.psnr_b(jnp.asarray(flat), jnp.asarray(step))[0])
    assert value == pytest.approx(10 * np.log10(255**2 / 87.5), abs=1e-4)
    # Against sewar's PSNR-B on a real JPEG pair: sewar counts N_HB as H·W/8 − 1 pairs
    # where the paper (and we) count H·(W/8 − 1), so agreement is to a few hundredths.
    sewar = pytest.importorskip("sewar.full_ref")
    original = skimage.data.astronaut()
    test = degrade.jpeg_roundtrip(original, 10)
    y_original = skimage.color.rgb2ycbcr(original)[..., 0]
    y_test = skimage.color.rgb2ycbcr(test)[..., 0]
    reference = sewar.psnrb(y_original, y_test, MAX=255)
    ours_y = [metrics.luma(jnp.asarray(x[None], jnp.float32)) for x in (original, test)]
    value = float(metrics.psnr_b(*ours_y)[0])
    assert abs(value - reference) < 0.1  # 27.13 against sewar's 27.19 on this pair
    psnr_y = skimage.metrics.peak_signal_noise_ratio(y_original, y_test, data_range=255)
    assert value < psnr_y - 2  # QF 10 is blocky: the BEF costs over 2 dB


def test_lpips_is_zero_for_identical_images_and_rises_as_quality_falls():
    original = skimage.data.chelsea()[CHELSEA]
    tests = [original] + [degrade.jpeg_roundtrip(original, q) for q in (90, 40, 10)]
    lpips = ours(original, tests)["lpips"]
    assert abs(lpips[0]) < 1e-6
    assert 0 < lpips[1] < lpips[2] < lpips[3]


def test_temporal_consistency_measures_flicker():
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 200, (5, 16, 16, 3)).astype(np.uint8)
    assert protocol.temporal_consistency(clip, clip) == 0.0
    assert protocol.temporal_consistency(clip, clip + 7) == 0.0  # a steady offset: no flicker
    flicker = clip + np.array([0, 6, 0, 6, 0], np.uint8)[:, None, None, None]
    assert protocol.temporal_consistency(clip, flicker) == pytest.approx(6.0)


def test_the_command_reports_jpeg_rows_as_pillow_and_skimage_compute_them(
    tmp_path, model_dir, capsys
):
    folder = tmp_path / "photos"
    folder.mkdir()
    photos = {"chelsea": skimage.data.chelsea()[CHELSEA], "coffee": skimage.data.coffee()[COFFEE]}
    for name, image in photos.items():
        Image.fromarray(image).save(folder / f"{name}.png")
    clip = np.stack(
        [skimage.data.coffee()[i * 4 : i * 4 + 64, i * 6 : i * 6 + 96] for i in range(8)]
    )
    np.save(tmp_path / "clip.npy", clip)
    out = tmp_path / "report"
    argv = ["--images", str(folder), "--qualities", "10,40", "--out", str(out)]
    argv += ["--checkpoint", str(model_dir), "--video", str(tmp_path / "clip.npy")]
    argv += ["--video-strength", "40", "--crops", "2"]
    assert evaluate.run(argv) == 0
    report = json.loads((out / "report.json").read_text())
    for quality in (10, 40):
        direct = []
        for name, image in photos.items():
            Image.fromarray(image).save(tmp_path / "q.jpg", quality=quality)  # Pillow, 4:2:0
            with Image.open(tmp_path / "q.jpg") as decoded:
                pair = skimage_scores(image, np.asarray(decoded.convert("RGB")))
            row = report["images"][name][str(quality)]["jpeg"]
            for metric, expected in pair.items():
                assert abs(row[metric] - expected) <= 1e-3, (name, quality, metric)
            direct.append(pair)
        mean = report["qualities"][str(quality)]["jpeg"]
        for metric in ("psnr", "ssim"):
            expected = np.mean([d[metric] for d in direct])
            assert abs(mean[metric] - expected) <= 1e-3
        assert set(report["qualities"][str(quality)]["restored"]) >= set(metrics.NAMES)
    low, high = report["qualities"]["10"]["jpeg"], report["qualities"]["40"]["jpeg"]
    assert low["lpips"] > high["lpips"] and low["psnr_b"] < high["psnr_b"]
    (video,) = report["video"]
    assert video["frames"] == 8 and len(video["restored"]["per_frame"]["psnr"]) == 8
    assert video["jpeg"]["temporal"] > 0
    assert report["model"]["parameters"] > 0 and report["model"]["conditioned"]
    for plot in report["plots"]:
        with Image.open(out / plot) as figure:
            assert figure.width > 300
    assert {"gain_vs_quality.png", "crops.png", "video_frames.png"} <= set(report["plots"])
    text = (out / "report.md").read_text()
    assert "| 10 |" in text and "| 40 |" in text and "## Video: clip" in text
    # Task-based: the detector finds the cup on the original; QF 10 JPEG loses it.
    task = report["task"]
    assert "ssd_mobilenet" in json.dumps(task["models"]).lower()
    assert task["10"]["reference"]["objects"] >= 1
    assert task["10"]["jpeg"]["map50"] < task["40"]["jpeg"]["map50"]
    assert "task_vs_quality.png" in report["plots"]
