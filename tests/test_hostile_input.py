"""Hostile and unusual input: the hand-made corpus in tests/bad_inputs through the
restore command in one batch, and fuzzing (hypothesis, fixed budget) of the image
and video readers: every file is restored whole or refused with one line naming
it, never a traceback, a hang or a partial output."""

import io
import signal
from pathlib import Path

import av
import numpy as np
import pytest
from helpers import CORPUS, make_video, run_here
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from jaxrestore.files import shown
from jaxrestore.media import image as image_io
from jaxrestore.media import transcode, video

# What the batch must do with each corpus file (tests/bad_inputs/README.md says why).
RESTORED = {
    "corrupt_middle.jpg": "RGB",
    "bad_crc.png": "RGB",
    "bad_exif.jpg": "RGB",
    "cmyk.jpg": "RGB",
    "palette.png": "RGB",
    "palette_transparent.png": "RGBA",
    "bilevel.png": "L",
    "gray_alpha.png": "LA",
    "rgba.png": "RGBA",
}
RESTORED_VIDEO = {"corrupt_middle.mp4": 47}  # frames written: one packet is corrupt
REFUSED = {
    "empty.jpg": "cannot decode image",
    "empty.png": "cannot decode image",
    "empty.mp4": "cannot read video",
    "random.jpg": "cannot decode image",
    "random.png": "cannot decode image",
    "random.webp": "cannot decode image",
    "random.mp4": "cannot read video",
    "random.mkv": "cannot read video",
    "text.mp4": "cannot read video",
    "truncated.jpg": "image file is truncated",
    "truncated.png": "image file is truncated",
    "truncated.mp4": "cannot read video",
    "bomb_header.png": "100000x100000 is over 120,000,000 pixels; refused before decoding",
    "bomb_header.jpg": "65000x65000 is over 120,000,000 pixels; refused before decoding",
    "bomb_bilevel.png": "12000x12000 is over 120,000,000 pixels; refused before decoding",
    "huge.y4m": "cannot read video",
    "gray16.png": "I;16 samples (16-bit or float)",
    "rgb16.png": "RGB;16B samples (16-bit or float)",
    "animated.png": "an animated image",
    "audio_only.mp4": "no video stream",
    "unknown_codec.mkv": "no decoder for its video stream",
}


def test_corpus_in_one_batch(tmp_path, model_dir, capsys):
    files = sorted(p for p in CORPUS.iterdir() if p.suffix not in (".py", ".md"))
    assert {p.name for p in files} == {*RESTORED, *RESTORED_VIDEO, *REFUSED}
    out = tmp_path / "out"
    status, err = run_here(capsys, CORPUS, "-o", out, "--checkpoint", model_dir, "--quality", "30")
    assert status == 1
    lines = err.splitlines()
    # Each refused file: its line when it fails and again in the closing list.
    assert f"jaxrestore.restore: {len(REFUSED)} of {len(files)} files failed:" in lines
    images = [p for p in files if not video.is_video(p)]
    assert f"restored {len(RESTORED)} of {len(images)} image(s)" in err
    for name, message in REFUSED.items():
        path = CORPUS / name
        naming = [line for line in lines if f"{shown(path)}:" in line]
        assert len(naming) == 2 and all(message in line for line in naming), (name, naming)
        assert not list(out.rglob(f"{path.stem}.*")), name
    for name, mode in RESTORED.items():
        with Image.open(out / f"{Path(name).stem}.png") as restored:
            assert restored.mode == mode and restored.size == (128, 96), name
            if mode in ("RGBA", "LA"):  # alpha carried through untouched
                with Image.open(CORPUS / name) as source:
                    alpha = np.asarray(source.convert(mode))[..., -1]
                np.testing.assert_array_equal(np.asarray(restored)[..., -1], alpha)
    for name, frames in RESTORED_VIDEO.items():
        with av.open(str(out / name)) as container:
            assert sum(1 for _ in container.decode(video=0)) == frames
        warning = f"{shown(CORPUS / name)}: 1 of 48 frames could not be decoded (corrupt data, at"
        assert sum(warning in line for line in lines) == 2, err  # inline and in the list
    assert not [p for p in out.rglob("*") if "partial" in p.name]


def test_max_pixels_is_checked_from_the_header(tmp_path, model_dir, capsys):
    source, out = CORPUS / "rgba.png", tmp_path / "rgba.png"  # 128x96: 12,288 pixels
    common = ("-o", out, "--checkpoint", model_dir, "--quality", "30", "--max-pixels")
    status, err = run_here(capsys, source, *common, 12287)
    assert status == 1 and f"{shown(source)}: 128x96 is over 12,287 pixels; refused" in err
    assert not out.exists()
    status, err = run_here(capsys, source, *common, 12288)
    assert status == 0 and out.exists(), err


class Hang(BaseException):
    """Raised by the alarm: a BaseException, so no reader's `except Exception` hides it."""


@pytest.fixture(scope="module")
def alarm():
    """`alarm(seconds)` arms a SIGALRM that raises Hang; `alarm(0)` disarms it."""

    def hang(signum, frame):
        raise Hang("the reader ran past its time limit")

    previous = signal.signal(signal.SIGALRM, hang)
    yield signal.alarm
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def encoded_seeds(photo: np.ndarray) -> list[bytes]:
    """Small valid files of each image format the command reads: the fuzzer's seeds."""
    crop = Image.fromarray(photo[:40, :56])
    seeds = []
    for image, fmt, options in (
        (crop, "PNG", {}),
        (crop.quantize(16), "PNG", {"transparency": 0}),
        (Image.merge("RGBA", (*crop.split(), crop.convert("L"))), "PNG", {}),
        (crop, "JPEG", {"quality": 30}),
        (crop, "JPEG", {"quality": 60, "progressive": True}),
        (crop.convert("CMYK"), "JPEG", {}),
        (crop, "WEBP", {"quality": 50}),
        (crop, "TIFF", {"compression": "tiff_lzw"}),
        (crop, "BMP", {}),
    ):
        buffer = io.BytesIO()
        image.save(buffer, fmt, **options)
        seeds.append(buffer.getvalue())
    return seeds


@st.composite
def mutated(draw, seeds: list[bytes]) -> bytes:
    """A seed after one to four bit flips, truncations, overwrites, insertions or
    repeats of a stretch (a chunk or box read twice)."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        kind = draw(st.sampled_from(["flip", "truncate", "overwrite", "insert", "repeat"]))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at : at + len(chunk)] = chunk
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 512))]
    return bytes(data)


FUZZ = settings(
    derandomize=True,  # the same examples on every run: CI stays deterministic
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def assert_one_line(error: BaseException, path: Path) -> None:
    text = str(error)
    assert text.startswith(f"{path}: ") and "\n" not in text and len(text) < 400, text


def test_fuzz_image_readers(photo, scratch, alarm):
    seeds = encoded_seeds(photo)
    outcomes = {"decoded": 0, "refused": 0}

    @settings(FUZZ, max_examples=400)
    @given(data=st.one_of(st.binary(max_size=2048), mutated(seeds)))
    def check(data: bytes) -> None:
        path = scratch / "fuzzed.png"  # Pillow goes by content, not by the name
        path.write_bytes(data)
        alarm(10)
        try:
            rgb = image_io.read_image(str(path))
            assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
            loaded = image_io.load_image(path)
            assert loaded.rgb.dtype == np.uint8 and loaded.rgb.shape[2] == 3
            assert loaded.alpha is None or loaded.alpha.shape == loaded.rgb.shape[:2]
            outcomes["decoded"] += 1
        except image_io.ImageError as error:  # image_io.ImageError is the same class
            assert_one_line(error, path)
            outcomes["refused"] += 1
        finally:
            alarm(0)

    check()
    # The budget reached both sides: decodable mutants and refusals.
    assert outcomes["decoded"] >= 20 and outcomes["refused"] >= 50, outcomes


def test_fuzz_video_readers(photo, scratch, alarm):
    seeds = []
    for name, options in (
        ("seed.mp4", {}),
        ("seed.mkv", {"audio": False}),
        ("seed.ts", {"audio": False, "codec": "mpeg2video"}),
    ):
        make_video(scratch / name, photo, frames=8, size=(64, 48), **options)
        seeds.append((scratch / name).read_bytes())
    outcomes = {"restored": 0, "with frames left out": 0, "refused": 0}

    @settings(FUZZ, max_examples=150)
    @given(data=mutated(seeds), suffix=st.sampled_from([".mp4", ".mkv", ".ts"]))
    def check(data: bytes, suffix: str) -> None:
        path = scratch / f"fuzzed{suffix}"
        path.write_bytes(data)
        target = scratch / "out" / "restored.mkv"
        warnings: list[str] = []
        alarm(30)
        try:
            frames = transcode.restore_video(
                path, target, lambda f: f, transcode.Encoding("ffv1"), 4, warn=warnings.append
            )
        except video.VideoError as error:
            assert_one_line(error, path)
            assert not target.exists()
            outcomes["refused"] += 1
        else:
            with av.open(str(target)) as container:  # complete: every frame is there
                assert sum(1 for _ in container.decode(video=0)) == frames > 0
            for warning in warnings:
                assert_one_line(RuntimeError(warning), path)
            outcomes["with frames left out" if warnings else "restored"] += 1
            target.unlink()
        try:
            sampled = video.sample_frames(path, 4)
            assert all(f.dtype == np.uint8 and f.shape[2] == 3 for f in sampled)
        except ValueError as error:
            assert_one_line(error, path)
        finally:
            alarm(0)
        assert not list(target.parent.glob(".*partial*"))  # no temporary left

    check()
    assert outcomes["restored"] >= 5 and outcomes["refused"] >= 10, outcomes
