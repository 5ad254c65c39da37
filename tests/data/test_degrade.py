"""Degradations: each degrades, deterministically, at the asked strength."""

import numpy as np
import pytest

from jaxrestore import metrics
from jaxrestore.data import degrade, pipeline, sources
from jaxrestore.media import image as image_io


@pytest.fixture(scope="module")
def photo():
    return image_io.read_image(str(sources.embedded_dir() / "astronaut.png"))[:256, :256]


@pytest.fixture(scope="module")
def clip(photo):
    # A camera pan over the photo: 6 frames, 2 px right and 1 px down per frame.
    return np.stack([photo[i : i + 64, 2 * i : 2 * i + 64] for i in range(6)])


def test_chroma_subsampling_variants(photo):
    scores = {s: metrics.psnr(degrade.jpeg_roundtrip(photo, 30, s), photo) for s in ("444", "420")}
    # Full-resolution chroma keeps more of a colour photo at the same QF.
    assert scores["444"] > scores["420"] + 0.1
    np.testing.assert_array_equal(
        degrade.jpeg_roundtrip(photo, 30, "422"), degrade.jpeg_roundtrip(photo, 30, "422")
    )
    with pytest.raises(ValueError, match="subsampling"):
        degrade.jpeg_roundtrip(photo, 30, "411")


def test_double_jpeg_misaligned_grid_costs_more_than_aligned(photo):
    window = photo[:72, :72]
    aligned, target_a = degrade.double_jpeg(window, 50, 50, (0, 0), 64)
    shifted, target_s = degrade.double_jpeg(window, 50, 50, (3, 5), 64)
    np.testing.assert_array_equal(target_s, window[3:67, 5:69])
    single = metrics.psnr(degrade.jpeg_roundtrip(target_a, 50), target_a)
    # Recompressing on the same grid at the same QF changes almost nothing ...
    assert abs(metrics.psnr(aligned, target_a) - single) < 0.3
    # ... on a shifted grid the second pass adds its own error.
    assert (
        metrics.psnr(shifted, target_s)
        < metrics.psnr(degrade.jpeg_roundtrip(target_s, 50), target_s) - 0.5
    )
    again, _ = degrade.double_jpeg(window, 50, 50, (3, 5), 64)
    np.testing.assert_array_equal(again, shifted)


@pytest.mark.parametrize("codec,strengths", [("h264", (18, 32, 46)), ("mpeg2", (2, 12, 31))])
def test_video_codecs_degrade_with_strength_deterministically(codec, clip, strengths):
    clip_scores, intra_scores = [], []
    for strength in strengths:
        decoded = degrade.video_roundtrip(clip, codec, strength)
        assert decoded.shape == clip.shape and decoded.dtype == np.uint8
        np.testing.assert_array_equal(decoded, degrade.video_roundtrip(clip, codec, strength))
        clip_scores.append(np.mean([metrics.psnr(d, o) for d, o in zip(decoded[1:], clip[1:])]))
        intra = degrade.video_roundtrip(clip[:1], codec, strength)
        intra_scores.append(metrics.psnr(intra[0], clip[0]))
    assert clip_scores[0] > clip_scores[1] > clip_scores[2]
    assert intra_scores[0] > intra_scores[1] > intra_scores[2]
    assert clip_scores[-1] < 32  # a strong setting really is strong
    with pytest.raises(ValueError, match="strength"):
        degrade.video_roundtrip(clip, codec, 99)
    with pytest.raises(ValueError, match="even"):
        degrade.video_roundtrip(clip[:, :63], codec, strengths[0])


def test_jpeg_equivalent_quality_recovers_a_jpeg_qf(photo):
    for quality in (8, 35, 75):
        found = degrade.jpeg_equivalent_quality(photo, degrade.jpeg_roundtrip(photo, quality))
        assert abs(found - quality) <= 1


def test_mix_spec_parsing():
    assert degrade.parse_mix("jpeg:3,h264") == [("jpeg", 0.75), ("h264", 0.25)]
    for bad, message in (("png", "unknown kind"), ("jpeg:x", "bad weight"), ("jpeg:0", "positive")):
        with pytest.raises(ValueError, match=message):
            degrade.parse_mix(bad)


def test_pipeline_mixes_kinds_with_labels_and_determinism(tmp_path, clip):
    folder = tmp_path / "train"
    folder.mkdir()
    np.save(folder / "pan.npy", np.stack([clip, clip[::-1]]))  # 2 clips of 6 frames
    clips = sources.ClipSet(folder)
    images = sources.FileImages([sources.embedded_dir() / "astronaut.png"])
    ranges = degrade.Ranges(crf_min=30, crf_max=40, mpeg2_min=5, mpeg2_max=20, clip_frames=4)
    spec = "jpeg,chroma,double_jpeg,h264,mpeg2,h264_clip,mpeg2_clip,none,resave"
    transform = pipeline.CropAndCompress(images, 32, 20, 60, True, 0, True, spec, ranges, clips)
    samples = [transform.random_map(0, np.random.default_rng(seed)) for seed in range(80)]
    kinds = {degrade.KINDS[int(s["kind"])] for s in samples}
    assert kinds == set(degrade.KINDS)
    for sample in samples:
        assert sample["degraded"].shape == sample["target"].shape == (32, 32, 3)
        assert 1 <= int(sample["quality"]) <= 100
        untouched = degrade.KINDS[int(sample["kind"])] == "none"
        assert np.array_equal(sample["degraded"], sample["target"]) == untouched
        assert (int(sample["quality"]) == 100) >= untouched
        if degrade.KINDS[int(sample["kind"])] == "jpeg":
            assert 20 <= int(sample["quality"]) <= 60
    again = transform.random_map(0, np.random.default_rng(7))
    for key in again:
        np.testing.assert_array_equal(again[key], samples[7][key])
    with pytest.raises(ValueError, match="needs video clips"):
        pipeline.CropAndCompress(images, 32, 20, 60, True, 0, False, "h264_clip", ranges, None)


def test_resave_chain_shifts_resizes_and_saves_again(photo):
    window = photo[:200, :200]
    degraded, target = degrade.resave(window, 10, (3, 5), 0.75, "bicubic", ("jpeg", 90), 96)
    assert degraded.shape == target.shape == (96, 96, 3)
    # The target is the original cropped at the shift and resized like the picture.
    from PIL import Image

    side = 128  # 96 / 0.75
    expected = Image.fromarray(window[3 : 3 + side, 5 : 5 + side]).resize((96, 96), Image.BICUBIC)
    np.testing.assert_array_equal(target, np.asarray(expected))
    # The heavy first save dominates the light second one, whatever the format after it.
    once = metrics.psnr(degrade.jpeg_roundtrip(target, 10), target)
    for second in (("jpeg", 90), ("webp", 90), ("png", 0)):
        again, _ = degrade.resave(window, 10, (3, 5), 1.0, "lanczos", second, 96)
        light = metrics.psnr(degrade.jpeg_roundtrip(target, 90), target)
        assert abs(metrics.psnr(again, window[3:99, 5:101]) - once) < 3 < light - once, second
    again, _ = degrade.resave(window, 10, (3, 5), 0.75, "bicubic", ("jpeg", 90), 96)
    np.testing.assert_array_equal(again, degraded)  # deterministic
    # In the mix: labelled on the JPEG scale near the first save's QF.
    mix = degrade.DegradationMix("resave", degrade.Ranges(quality_min=10, quality_max=10))
    rng = np.random.default_rng(0)
    for _ in range(4):
        out, tgt, quality = mix.photo_pair(
            "resave", lambda extra: photo[: 64 + extra, : 64 + extra], 64, rng
        )
        assert out.shape == tgt.shape == (64, 64, 3) and 5 <= quality <= 30, quality
