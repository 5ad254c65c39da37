"""What a restored video carries over besides its frames and audio: the display
matrix (a phone clip's rotation), subtitle and data streams, or one warning line."""

import fractions
import struct
from pathlib import Path

import av
import numpy as np
import pytest

from jaxrestore.media import transcode, video

MS = fractions.Fraction(1, 1000)
CUES = [(0, 400, "first line"), (500, 300, "second line")]  # (start ms, duration ms, text)


def make_clip(path: Path, photo: np.ndarray, subtitles: str, data: bool) -> None:
    """Ten 64×48 H.264 frames shown rotated by 90° (as a phone tags a portrait clip),
    two subtitle cues (`subtitles`: mov_text or srt) and, with `data`, a data stream."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(90)
        text = out.add_mux_stream(subtitles)
        extra = out.add_data_stream("bin_data") if data else None
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(photo[i : i + 48, :64]))
            frame.pts = i
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode(None))
        for start, duration, words in CUES:
            payload = words.encode()
            if subtitles == "mov_text":  # a 3GPP timed-text sample: length, then the text
                payload = struct.pack(">H", len(payload)) + payload
            packet = av.Packet(payload)
            packet.stream, packet.time_base = text, MS
            packet.pts = packet.dts = start
            packet.duration = duration
            out.mux(packet)
        if extra is not None:
            packet = av.Packet(b"\x01\x02\x03\x04")
            packet.stream, packet.time_base, packet.pts, packet.dts = extra, MS, 0, 0
            out.mux(packet)


def read_streams(path: Path) -> dict:
    """The first frame's rotation and display matrix, the stream types, the cues."""
    with av.open(str(path)) as container:
        first = next(container.decode(video=0))
        facts = {
            "rotation": first.rotation,
            "matrix": video.display_matrix(first),
            "types": sorted(s.type for s in container.streams),
        }
    with av.open(str(path)) as container:
        facts["cues"] = [
            (bytes(p), round(float(p.pts * p.time_base), 3))
            for p in container.demux(*container.streams.subtitles)
            if p.size and p.dts is not None
        ]
    return facts


def restore(source: Path, target: Path) -> list[str]:
    warnings: list[str] = []
    count = transcode.restore_video(
        source,
        target,
        lambda frames: frames,
        transcode.Encoding(preset="ultrafast"),
        warn=warnings.append,
    )
    assert count == 10
    return warnings


def test_mp4_keeps_rotation_and_subtitles_and_names_the_data_stream_it_cannot_hold(tmp_path, photo):
    source = tmp_path / "phone.mp4"
    make_clip(source, photo, "mov_text", data=True)
    before = read_streams(source)
    assert before["rotation"] == 90 and before["types"] == ["data", "subtitle", "video"]
    for suffix in (".mp4", ".mov"):
        target = tmp_path / f"restored{suffix}"
        warnings = restore(source, target)
        after = read_streams(target)
        assert after["matrix"] == before["matrix"] and after["rotation"] == 90
        assert after["cues"] == before["cues"] and len(after["cues"]) >= 2
        assert after["types"] == ["subtitle", "video"]
        assert warnings == [
            f"{source}: not carried to the {suffix} output: stream 2 (data, bin_data) "
            "(.mkv holds text subtitles, .mov/.mp4 mov_text)"
        ]


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_srt_subtitles_are_carried_to_mkv_and_named_when_mp4_cannot_hold_them(
    tmp_path, photo, suffix
):
    source = tmp_path / "film.mkv"
    make_clip(source, photo, "srt", data=False)
    before = read_streams(source)
    target = tmp_path / f"restored{suffix}"
    warnings = restore(source, target)
    after = read_streams(target)
    assert after["rotation"] == before["rotation"] == 90
    if suffix == ".mkv":
        assert warnings == [] and after["cues"] == before["cues"]
        assert [c[0] for c in after["cues"]] == [w.encode() for _, _, w in CUES]
    else:
        assert after["types"] == ["video"]
        assert len(warnings) == 1 and "stream 1 (subtitle, srt)" in warnings[0]
