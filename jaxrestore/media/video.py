"""Video files in (PyAV): the one frame decoder every reader uses.

Every reader of video frames (restoring, `transcode.restore_video`; the quality
predictor's `sample_frames`; evaluation's `read_frames`; the photo set's
`iter_frames`) decodes through `decode`, so each sees the same pixels: the same
packets skipped, the same colour range and matrix, the same refusals.

Damaged input: a packet the decoder rejects (corrupt data in the middle of a
file) is left out (its time is recorded for the caller's warning). A file with no
video stream, no decodable frame, frames over 8 bits or over 8192² pixels, frames
that change size mid-stream, or that FFmpeg cannot open, is refused with one line.
Tags that are not UTF-8 are read with replacement characters.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fractions
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from jaxrestore.errors import reason

VIDEO_SUFFIXES = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts",
    ".m2ts", ".flv", ".wmv", ".3gp", ".ogv", ".y4m", ".vob",
)  # fmt: skip
MAX_FRAME_PIXELS = 8192 * 8192


class VideoError(ValueError):
    """A video that cannot be restored; the message names the file and says why."""


@dataclasses.dataclass
class VideoInfo:
    width: int
    height: int
    frames: int  # as the container reports it; 0 when unknown
    expected: int  # frames the container's count or duration implies; 0 when unknown
    rate: fractions.Fraction | None  # average frame rate
    audio_streams: int
    codec: str


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def open_input(path: Path):
    """`av.open` for reading; tags that are not UTF-8 are read with replacement
    characters rather than failing the file (PyAV's default is strict)."""
    import av

    return av.open(str(path), metadata_errors="replace")


def video_stream(container, path: Path):
    """The first video stream of an open container; VideoError when there is none or
    FFmpeg has no decoder for it."""
    if not container.streams.video:
        raise VideoError(f"{path}: no video stream")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        raise VideoError(f"{path}: no decoder for its video stream")
    return stream


@contextlib.contextmanager
def _reading(path: Path, doing: str = "decode") -> Iterator:
    """`open_input` whose PyAV errors, opening or within the block, are one line:
    VideoError "PATH: cannot {doing} video (why)"."""
    import av

    try:
        with open_input(path) as container:
            yield container
    except VideoError:
        raise
    except (av.FFmpegError, OSError, ValueError) as error:  # PyAV: bad tags, sizes, ...
        raise VideoError(f"{path}: cannot {doing} video ({reason(error)})") from None


def probe(path: Path) -> VideoInfo:
    """What restoring `path` needs to know up front; VideoError when it cannot be."""
    with _reading(path, "read") as container:
        stream = video_stream(container, path)
        width, height = stream.codec_context.width, stream.codec_context.height
        pixels = stream.codec_context.format
        bits = max((c.bits for c in pixels.components), default=8) if pixels else 8
        info = VideoInfo(
            width,
            height,
            stream.frames or 0,
            _expected_frames(stream),
            stream.average_rate,
            len(container.streams.audio),
            stream.codec_context.name,
        )
    if bits > 8:
        raise VideoError(
            f"{path}: {pixels.name} frames ({bits}-bit); only 8-bit video is supported"
        )
    if not width or not height:
        raise VideoError(f"{path}: the video stream has no frame size")
    if width * height > MAX_FRAME_PIXELS:
        raise VideoError(f"{path}: {width}x{height} frames are over {MAX_FRAME_PIXELS:,} pixels")
    if min(width, height) < 8:
        raise VideoError(f"{path}: {width}x{height} frames are too small (at least 8x8)")
    return info


def _expected_frames(stream) -> int:
    """The frame count the container lists, else what the video stream's own duration
    (Matroska's DURATION tag included) and frame rate imply; 0 when neither is known."""
    if stream.frames:
        return int(stream.frames)
    seconds = None
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif "DURATION" in stream.metadata:
        try:
            hours, minutes, rest = stream.metadata["DURATION"].split(":")
            seconds = int(hours) * 3600 + int(minutes) * 60 + float(rest)
        except ValueError:
            seconds = None
    rate = stream.average_rate
    return int(seconds * rate) if seconds and rate else 0


@dataclasses.dataclass(frozen=True)
class Decoded:
    """One decoded video frame: its timestamp and, on demand, its RGB pixels."""

    frame: object  # av.VideoFrame
    pts: int | None  # in the video stream's time base; None when the frame has none
    color_range: int  # the stream's (its first frame's) AVColorRange; 0 = unspecified

    def rgb(self) -> np.ndarray:
        """uint8 [H, W, 3], converted with the stream's range (a full-range "pc"/JPEG
        stream read as limited range would come out with crushed blacks and whites)
        and the frame's own matrix."""
        return self.frame.to_ndarray(
            format="rgb24", src_color_range=self.color_range or None, channel_last=True
        )


def decode(
    container,
    path: Path,
    rejected: list[float] | None = None,
    copied: list | None = None,
    colour: dict | None = None,
) -> Iterator[Decoded]:
    """The frames of an open container's video stream, as every reader here decodes
    them (restoring, sampling for the quality predictor, evaluation, the photo set).

    A packet the decoder rejects (corrupt data) is left out and its time, in seconds,
    appended to `rejected`; the frames after it are decoded as the codec can (H.264
    conceals damaged references). Every frame is converted to RGB with the colour
    range of the first one, whose tags (matrix, range, primaries, transfer) fill
    `colour`. When `copied` is a list, the audio, subtitle and data streams are
    demuxed too and their packets appended to it in order, each before the frames
    that follow it (for a writer that copies them). A frame
    whose size differs from the stream's is refused, as is an error reading the
    container itself: VideoError naming `path`."""
    import av

    video = video_stream(container, path)
    video.thread_type = "AUTO"
    context = video.codec_context
    size = (context.width, context.height)  # before decoding: the decoder rewrites it
    colour = {} if colour is None else colour
    streams = (video,) if copied is None else (video, *copied_streams(container))
    try:
        for packet in container.demux(*streams):
            if packet.stream.index != video.index:
                if packet.dts is not None:  # not a demuxer's empty flush packet
                    copied.append(packet)
                continue
            try:
                frames = packet.decode()
            except av.FFmpegError:
                if rejected is not None:
                    time = packet.pts if packet.pts is not None else packet.dts
                    rejected.append(float(time * video.time_base) if time is not None else -1.0)
                continue
            for frame in frames:
                if not colour:
                    _read_colour(frame, context, colour)
                if not all(size):  # a stream that did not say: its first frame does
                    size = (frame.width, frame.height)
                if (frame.width, frame.height) != size:
                    raise VideoError(
                        f"{path}: the frame size changes mid-stream "
                        f"({size[0]}x{size[1]} to {frame.width}x{frame.height})"
                    )
                yield Decoded(frame, frame.pts, colour["color_range"])
    except av.FFmpegError as error:
        raise VideoError(f"{path}: cannot decode video ({reason(error)})") from None


def copied_streams(container) -> tuple:
    """The streams a restored video carries over from its input: audio, subtitles, data."""
    streams = container.streams
    return (*streams.audio, *streams.subtitles, *streams.data)


IDENTITY_MATRIX = (65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30)  # 16.16 and 2.30 fixed point


def display_matrix(frame) -> tuple[int, ...] | None:
    """The frame's display matrix (rotation and flips a player applies: a phone's
    portrait clip), FFmpeg's 9 int32 in their order; None when it has none or the
    identity."""
    for side_data in getattr(frame, "side_data", ()):
        if getattr(side_data.type, "name", "") == "DISPLAYMATRIX":
            matrix = tuple(int(v) for v in np.frombuffer(bytes(side_data), np.int32)[:9])
            return None if matrix == IDENTITY_MATRIX else matrix
    return None


def _read_colour(frame, context, colour: dict) -> None:
    """The frame's colour tags where PyAV has them, else the decoder's (PyAV < 17)."""
    for name in ("colorspace", "color_range", "color_primaries", "color_trc"):
        value = getattr(frame, name, None)
        if value is None:
            value = getattr(context, name, 0)
        colour[name] = int(value or 0)


def iter_frames(path: Path, limit: int | None = None) -> Iterator[np.ndarray]:
    """The first `limit` RGB frames of a video file (all when None), one at a time,
    decoded as restoring decodes them; VideoError when none decodes."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    count = 0
    with _reading(path) as container:
        for decoded in decode(container, path):
            yield decoded.rgb()
            count += 1
            if count == limit:
                return
    if not count:
        raise VideoError(f"{path}: no decodable video frames")


def read_frames(path: Path, limit: int | None = None) -> np.ndarray:
    """The first `limit` frames of a video file (all when None), uint8 [T, H, W, 3]."""
    return np.stack(list(iter_frames(path, limit)))


def sample_frames(path: Path, count: int) -> list[np.ndarray]:
    """Up to `count` RGB frames spread evenly over a video file (decoded in one pass;
    a stream of unknown length keeps every k-th frame, k doubling as it grows), the
    same pixels restoring the file decodes (corrupt packets skipped as it skips them)."""
    kept: list[tuple[int, np.ndarray]] = []
    with _reading(path) as container:
        total = video_stream(container, path).frames
        picks = set(np.linspace(0, total - 1, min(count, total)).astype(int)) if total else None
        stride = 1
        for index, decoded in enumerate(decode(container, path)):
            if picks is not None and index not in picks:
                continue
            if picks is None and index % stride:
                continue
            kept.append((index, decoded.rgb()))
            if picks is None and len(kept) >= 2 * count:
                stride *= 2
                kept = [(i, f) for i, f in kept if i % stride == 0]
    if not kept:
        raise VideoError(f"{path}: no decodable video frames")
    chosen = np.unique(np.linspace(0, len(kept) - 1, min(count, len(kept))).astype(int))
    return [kept[i][1] for i in chosen]
