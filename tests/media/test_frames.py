"""One video frame reader: restoring, the quality predictor's samples, evaluation clips
and the photo set's video frames see the same pixels — the same colour range, the
same corrupt packets left out, the same refusals."""

import re
from pathlib import Path

import av
import numpy as np
import pytest
from helpers import CORPUS
from PIL import Image

from jaxrestore.data import assemble
from jaxrestore.media import transcode, video

HEIGHT, WIDTH = 48, 64


def _ramps(count: int) -> np.ndarray:
    """uint8 [count, H, W, 3]: red rising left to right, blue top to bottom, green a
    level per frame; every value from 0 to 255 occurs, so a range error clips."""
    red = np.tile(np.linspace(0, 255, WIDTH), (HEIGHT, 1))
    blue = np.tile(np.linspace(0, 255, HEIGHT)[:, None], (1, WIDTH))
    frames = [np.stack([red, np.full_like(red, 40.0 * i), blue], -1) for i in range(count)]
    return np.stack(frames).round().astype(np.uint8)


def _full_range_clip(path: Path, codec: str, count: int = 6) -> np.ndarray:
    """A clip of `_ramps` in full-range ("pc", JPEG) 4:2:0 YUV, tagged so; returns the
    RGB it was made from. FFmpeg decodes full-range H.264 as yuvj420p and FFV1 as
    yuv420p with only the range tag to say so."""
    frames = _ramps(count)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.color_range = 2  # AVCOL_RANGE_JPEG
        if codec == "libx264":
            stream.options = {"crf": "10", "preset": "veryfast"}
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame = frame.reformat(format="yuv420p", dst_color_range=2)
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return frames


def _ignoring_the_range(path: Path) -> np.ndarray:
    """The clip's YUV samples converted as limited range, as a reader that does not pass
    the stream's range does on PyAV < 17 (its converter assumed limited range)."""
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            planes = frame.to_ndarray(format=frame.format.name)  # Y, U, V as stored
            plain = av.VideoFrame.from_ndarray(planes, format="yuv420p")  # no range tag
            frames.append(plain.to_ndarray(format="rgb24"))
    return np.stack(frames)


def _restoring(path: Path, out: Path, warnings: list[str] | None = None) -> np.ndarray:
    """The frames the restore command hands to the network for `path`."""
    seen = []

    def restore(frames: np.ndarray) -> np.ndarray:
        seen.append(frames.copy())
        return frames

    warn = (warnings if warnings is not None else []).append
    count = transcode.restore_video(path, out, restore, transcode.Encoding("ffv1"), 4, warn=warn)
    assert count == sum(len(f) for f in seen)
    return np.concatenate(seen)


def _halved(frames: np.ndarray) -> np.ndarray:
    """Each frame downscaled 2× with Lanczos, as the photo set stores video frames."""
    size = (frames.shape[2] // 2, frames.shape[1] // 2)
    return np.stack(
        [np.asarray(Image.fromarray(f).resize(size, Image.Resampling.LANCZOS)) for f in frames]
    )


@pytest.mark.parametrize(
    "name, codec, sampled",
    [
        ("full.mp4", "libx264", [0, 2, 5]),  # MP4 lists its 6 frames: spread over them
        ("full.mkv", "ffv1", [0, 2, 4]),  # Matroska does not: every 2nd, then spread
    ],
)
def test_every_reader_sees_the_frames_restoring_sees(tmp_path, name, codec, sampled):
    path = tmp_path / name
    source = _full_range_clip(path, codec)
    with video.open_input(path) as container:
        assert container.streams.video[0].codec_context.color_range == 2
    restoring = _restoring(path, tmp_path / "restored.mkv")
    assert restoring.shape == (6, HEIGHT, WIDTH, 3)
    np.testing.assert_array_equal(video.read_frames(path), restoring)  # evaluation
    np.testing.assert_array_equal(video.read_frames(path, 2), restoring[:2])
    sample = video.sample_frames(path, 3)  # the quality predictor's frames
    np.testing.assert_array_equal(np.stack(sample), restoring[sampled])
    photo_set = assemble._decode_frames(path, None)  # the photo set's, downscaled 2×
    np.testing.assert_array_equal(photo_set, _halved(restoring))

    # Those frames are the picture that was encoded (4:2:0 chroma and, for H.264, CRF
    # 10 loss: measured 1.54 FFV1, 1.64 H.264) ...
    def error(frames):
        return float(np.abs(frames.astype(np.int16) - source).mean())

    assert error(restoring) < 2.0
    assert restoring.min() == 0 and restoring.max() >= 254
    # ... and reading the same samples as limited range stretches them 255/219 about
    # mid-gray, clipping the ends: measured 7.43 and 7.44 off, 15% of values at 0 or 255
    # (5% in the source). A reader that did so would fail the comparisons above.
    ignored = _ignoring_the_range(path)
    assert error(ignored) > 6.0
    assert np.abs(ignored.astype(np.int16) - restoring).mean() > 5.0
    clipped = lambda frames: float(np.isin(frames, (0, 255)).mean())  # noqa: E731
    assert clipped(ignored) > 0.12 and clipped(restoring) < 0.07


def test_every_reader_leaves_out_the_packets_restoring_leaves_out(tmp_path):
    # 48 frames, one packet corrupt: evaluation's and the photo set's readers used to
    # stop there (an FFmpeg error after 23 frames); now all skip it as restoring does.
    path = CORPUS / "corrupt_middle.mp4"
    warnings: list[str] = []
    restoring = _restoring(path, tmp_path / "restored.mkv", warnings)
    assert restoring.shape == (47, 64, 96, 3)
    assert len(warnings) == 1 and "1 of 48 frames could not be decoded" in warnings[0]
    np.testing.assert_array_equal(video.read_frames(path), restoring)
    # Picks over the 48 listed frames (0, 15, 31, 47) by decoded index: 47 never comes.
    np.testing.assert_array_equal(np.stack(video.sample_frames(path, 4)), restoring[[0, 15, 31]])
    np.testing.assert_array_equal(assemble._decode_frames(path, None), _halved(restoring))


def test_every_reader_refuses_a_size_change(tmp_path):
    # Raw H.264: five 64x48 frames, then a new sequence of five 96x64 ones. The decoder
    # rewrites its own size as it goes, so only the size read before decoding tells.
    path = tmp_path / "two_sizes.h264"
    with path.open("wb") as raw:
        for width, height in ((64, 48), (96, 64)):
            part = tmp_path / f"{width}.h264"
            with av.open(str(part), "w", format="h264") as out:
                stream = out.add_stream("libx264", rate=25)
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                for index in range(5):
                    rgb = np.full((height, width, 3), 50 * index, np.uint8)
                    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                    frame.pts = index
                    out.mux(stream.encode(frame))
                out.mux(stream.encode(None))
            raw.write(part.read_bytes())
    assert video.read_frames(path, 5).shape == (5, 48, 64, 3)  # before the change
    target = tmp_path / "restored.mkv"
    readers = {
        "restore": lambda: transcode.restore_video(
            path, target, lambda f: f, transcode.Encoding("ffv1")
        ),
        "sample": lambda: video.sample_frames(path, 4),
        "read": lambda: video.read_frames(path),
        "photo set": lambda: assemble._decode_frames(path, None),
    }
    refusals = {}
    for name, read in readers.items():
        with pytest.raises(video.VideoError) as refused:
            read()
        refusals[name] = str(refused.value)
    message = f"{path}: the frame size changes mid-stream (64x48 to 96x64)"
    assert refusals == dict.fromkeys(readers, message)
    assert not target.exists()


def test_read_frames_refuses_with_one_line_naming_the_file(tmp_path):
    garbage = tmp_path / "garbage.mkv"  # an FFV1 stream whose every packet is noise
    rng = np.random.default_rng(0)
    with av.open(str(garbage), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"level": "3", "slicecrc": "1"}
        for index, rgb in enumerate(_ramps(4)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                noise = av.Packet(rng.integers(0, 256, packet.size, np.uint8).tobytes())
                noise.pts, noise.dts, noise.time_base = packet.pts, packet.dts, packet.time_base
                noise.stream = stream
                out.mux(noise)
    expected = {
        CORPUS / "audio_only.mp4": "no video stream",
        CORPUS / "unknown_codec.mkv": "no decoder for its video stream",
        CORPUS / "random.mp4": "cannot decode video (Invalid data found when processing input)",
        CORPUS / "empty.mp4": "cannot decode video (Invalid data found when processing input)",
        garbage: "no decodable video frames",
    }
    for path, why in expected.items():
        with pytest.raises(video.VideoError, match=f"^{re.escape(f'{path}: {why}')}$"):
            video.read_frames(path, 8)
    with pytest.raises(ValueError, match="at least 1"):
        video.read_frames(CORPUS / "corrupt_middle.mp4", 0)
