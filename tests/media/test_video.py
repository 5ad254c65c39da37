"""The restore command on video: streams, timestamps and audio kept, bad files refused."""

from pathlib import Path

import av
import numpy as np
import pytest
from helpers import NTSC, assert_each_refused, make_video, run_here, small_generator

from jaxrestore.inference import restorer as restorer_lib
from jaxrestore.inference.loader import Model
from jaxrestore.media import batch, transcode, video


def read_back(path: Path) -> dict:
    """Everything the tests compare: frames, their times, stream facts, audio packets."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        facts = {
            "size": (stream.codec_context.width, stream.codec_context.height),
            "rate": stream.average_rate,
            "codec": stream.codec_context.name,
            "audio_codecs": [a.codec_context.name for a in container.streams.audio],
        }
        frames = [(f.to_ndarray(format="rgb24"), f.time) for f in container.decode(stream)]
    with av.open(str(path)) as container:
        facts["audio"] = [
            (bytes(p), round(float(p.pts * p.time_base), 4))
            for p in container.demux(*container.streams.audio)
            if p.dts is not None and p.size
        ]
    facts["frames"] = np.stack([f for f, _ in frames])
    facts["times"] = [round(t, 4) for _, t in frames]
    return facts


def test_video_keeps_frames_rate_size_timestamps_and_audio(tmp_path, photo, model_dir, capsys):
    source = tmp_path / "clip.mp4"
    make_video(source, photo, frames=10)
    out = tmp_path / "out" / "clip.mp4"
    status, err = run_here(
        capsys, source, "--output", out, "--checkpoint", model_dir, "--batch", "3"
    )  # --quality auto: the packaged predictor on frames spread through the clip
    assert status == 0, err
    assert "restored 1 of 1 video(s), 10 frames" in err
    before, after = read_back(source), read_back(out)
    assert after["codec"] == "h264" and after["audio_codecs"] == ["aac"]
    assert after["size"] == before["size"] == (96, 64)
    assert after["rate"] == before["rate"] == NTSC
    assert len(after["frames"]) == len(before["frames"]) == 10
    assert after["times"] == before["times"]
    assert len(before["audio"]) > 10 and after["audio"] == before["audio"]  # bit for bit
    change = np.abs(after["frames"].astype(int) - before["frames"]).mean()
    assert change > 1.0  # restored, not copied
    assert [p.name for p in out.parent.iterdir()] == ["clip.mp4"]  # no temporary left


def test_lossless_output_is_exactly_the_restored_frames(tmp_path, photo):
    # Variable frame rate, no audio, FFV1 out: every pixel and timestamp comes back.
    source = tmp_path / "vfr.mkv"
    times = [0, 40, 80, 100, 180, 200, 260]
    make_video(source, photo, frames=7, size=(90, 62), audio=False, pts=times)
    model, params = small_generator()
    restorer = restorer_lib.Restorer(
        Model(model, params), tiling=restorer_lib.Tiling(tile=128, overlap=32, batch=3)
    )
    out = tmp_path / "vfr_restored.mkv"
    count = transcode.restore_video(
        source,
        out,
        lambda frames: restorer.restore_frames(frames, 40.0),
        transcode.Encoding(codec="ffv1"),
        batch=3,
    )
    assert count == 7
    assert restorer.traces == 1  # 3 + 3 + 1 frames, one compiled shape
    before, after = read_back(source), read_back(out)
    assert after["codec"] == "ffv1" and after["audio_codecs"] == []
    assert after["times"] == before["times"] == [t / 1000 for t in times]
    expected = restorer.restore_frames(before["frames"], 40.0)
    np.testing.assert_array_equal(after["frames"], expected)
    with pytest.raises(video.VideoError, match=r"FFV1 video is written to \.mkv"):
        transcode.restore_video(source, tmp_path / "x.mp4", lambda f: f, transcode.Encoding("ffv1"))
    assert not (tmp_path / "x.mp4").exists()


def bad_videos(folder: Path, photo: np.ndarray) -> dict[str, Path]:
    files = {}
    good = folder / "good.mp4"
    make_video(good, photo, frames=6)
    data = good.read_bytes()
    files["truncated mp4"] = folder / "cut.mp4"
    files["truncated mp4"].write_bytes(data[: len(data) // 2])
    long = folder / "long.mkv"
    make_video(long, photo, frames=24, audio=False)
    data = long.read_bytes()
    files["truncated mkv"] = folder / "cut.mkv"
    files["truncated mkv"].write_bytes(data[: len(data) // 2])
    files["corrupt"] = folder / "noise.mp4"
    noise = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    files["corrupt"].write_bytes(b"\0\0\0\x18ftypmp42" + noise)
    files["not a video"] = folder / "notes.mov"
    files["not a video"].write_text("these are words, not frames\n")
    files["no video stream"] = folder / "sound.mkv"
    with av.open(str(files["no video stream"]), "w") as out:
        sound = out.add_stream("flac", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts = 8000, 0
        out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    files["tiny"] = folder / "tiny.mkv"
    make_video(files["tiny"], photo, 2, (6, 6), audio=False, codec="ffv1", pix_fmt="yuv444p")
    files["10-bit"] = folder / "deep.mkv"
    make_video(
        files["10-bit"], photo, 2, (32, 32), audio=False, codec="ffv1", pix_fmt="yuv420p10le"
    )
    files["huge"] = folder / "huge.y4m"  # a header claiming 10000x8000 frames, no frames
    files["huge"].write_bytes(b"YUV4MPEG2 W10000 H8000 F25:1 Ip A1:1 C420jpeg\n")
    files["empty"] = folder / "empty.webm"
    files["empty"].write_bytes(b"")
    return files


def test_bad_videos_fail_with_one_line_naming_the_file_and_leave_no_output(
    tmp_path, photo, model_dir, capsys
):
    folder = tmp_path / "bad"
    folder.mkdir()
    assert_each_refused(capsys, bad_videos(folder, photo), tmp_path / "out", ".mkv", model_dir)
    good = folder / "good.mp4"
    status, err = run_here(capsys, good, "--output", tmp_path / "x.avi", "--checkpoint", model_dir)
    assert status == 2 and "x.avi': a video is written to one of .mp4" in err
    status, err = run_here(
        capsys, good, "-o", tmp_path / "x.mp4", "--checkpoint", model_dir, "--codec", "vp9"
    )
    assert status == 2 and "--codec" in err and "'vp9'" in err and err.count("\n") == 1
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "x.avi").exists()


def test_folders_mirror_images_and_videos(tmp_path):
    tree = tmp_path / "shoot"
    (tree / "day2").mkdir(parents=True)
    for name in ("a.jpg", "clip.mov", "day2/b.webp", "day2/old.avi", "day2/notes.txt"):
        (tree / name).write_bytes(b"")
    out = tmp_path / "out"
    jobs = batch.plan([tree], out, None, "h264").jobs
    assert [
        (j.source.relative_to(tree).as_posix(), j.target.relative_to(out).as_posix(), j.fmt)
        for j in jobs
    ] == [
        ("a.jpg", "a.png", "PNG"),
        ("clip.mov", "clip.mov", "VIDEO"),  # a container we write is kept
        ("day2/b.webp", "day2/b.png", "PNG"),
        ("day2/old.avi", "day2/old.mp4", "VIDEO"),
    ]
    lossless = batch.plan([tree], out, "tiff", "ffv1").jobs
    assert [j.target.name for j in lossless] == ["a.tif", "clip.mkv", "b.tif", "old.mkv"]
