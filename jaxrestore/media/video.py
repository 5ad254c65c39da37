"""Video files in and out (PyAV): the one frame decoder every reader uses (restoring, the
quality predictor's sampling, evaluation, data assembly), and the restore command's writer.

`restore_video` decodes a file, hands batches of RGB frames to a restoring
function and encodes what comes back, in three overlapping stages: a reader
thread decodes the next batch while the caller's function runs on the device,
and a writer thread encodes and muxes the previous one. Every audio stream is
copied packet for packet (no re-encode); each restored frame keeps its source
frame's timestamp, so frame count, frame rate (constant or variable), size and
audio sync are those of the input. Output is H.264 (libx264, `crf`, `preset`;
4:2:0 for even sizes, else 4:4:4) or lossless FFV1 in Matroska (RGB:
exactly the restored pixels), tagged with the input's colour metadata and
converted to YUV with its matrix and range. It is written to a temporary name
beside the target and renamed only when complete; on any error it is removed.
Subtitle and data streams are not carried over.

Damaged input: a packet the decoder rejects (corrupt data in the middle of a
file) is left out, the frames around it keep their timestamps (the audio stays
in sync; a player holds the previous frame), and once the output is complete a
one-line warning names how many frames were lost and at what times. A file that
ends early (fewer frames than its container lists: truncated), has no video
stream, no decodable frame, frames over 8 bits or over 8192² pixels, or that
FFmpeg cannot open, is refused with one line and nothing is written. Tags that
are not UTF-8 are read with replacement characters.

Every reader of video frames (restoring, the quality predictor's `sample_frames`,
evaluation's `read_frames`, the photo set's `iter_frames`) decodes through `decode`,
so each sees the same pixels: the same packets skipped, the same colour range and
matrix, the same refusals.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import fractions
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from absl import logging

from jaxrestore.errors import reason

VIDEO_SUFFIXES = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts",
    ".m2ts", ".flv", ".wmv", ".3gp", ".ogv", ".y4m", ".vob",
)  # fmt: skip
OUTPUT_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")
CODECS = ("h264", "ffv1")
MAX_FRAME_PIXELS = 8192 * 8192


class VideoError(ValueError):
    """A video that cannot be restored; the message names the file and says why."""


@dataclasses.dataclass
class Encoding:
    codec: str = "h264"  # or "ffv1" (lossless, Matroska only)
    crf: float = 17.0  # libx264 constant rate factor: 0 lossless … 51 worst
    preset: str = "medium"

    def __post_init__(self):
        if self.codec not in CODECS:
            raise ValueError(f"--codec must be one of {', '.join(CODECS)}, got {self.codec!r}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"--crf must be in 0..51, got {self.crf}")


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
    audio: list | None = None,
    colour: dict | None = None,
) -> Iterator[Decoded]:
    """The frames of an open container's video stream, as every reader here decodes
    them (restoring, sampling for the quality predictor, evaluation, the photo set).

    A packet the decoder rejects (corrupt data) is left out and its time, in seconds,
    appended to `rejected`; the frames after it are decoded as the codec can (H.264
    conceals damaged references). Every frame is converted to RGB with the colour
    range of the first one, whose tags (matrix, range, primaries, transfer) fill
    `colour`. When `audio` is a list, the audio streams are demuxed too and their
    packets appended to it in order, each before the frames that follow it. A frame
    whose size differs from the stream's is refused, as is an error reading the
    container itself: VideoError naming `path`."""
    import av

    video = video_stream(container, path)
    video.thread_type = "AUTO"
    context = video.codec_context
    size = (context.width, context.height)  # before decoding: the decoder rewrites it
    colour = {} if colour is None else colour
    streams = (video,) if audio is None else (video, *container.streams.audio)
    try:
        for packet in container.demux(*streams):
            if packet.stream.type == "audio":
                if packet.dts is not None:
                    audio.append(packet)
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


@dataclasses.dataclass
class _Batch:
    frames: np.ndarray  # uint8 [n, H, W, 3]
    pts: list[int]  # in the video stream's time base
    audio: list  # audio packets demuxed since the previous batch, in order


def _decode(
    container, batch: int, path: Path, colour: dict, rejected: list[float]
) -> Iterator[_Batch]:
    """Batches of RGB frames (`decode`) with timestamps every muxer takes (increasing;
    one frame's duration after the previous where a frame has none) and the audio
    packets between them. `colour` and `rejected` are filled as `decode` fills them."""
    step = _frame_step(container.streams.video[0])
    frames: list[np.ndarray] = []
    pts: list[int] = []
    audio: list = []
    last = None
    for decoded in decode(container, path, rejected, audio, colour):
        stamp = decoded.pts if decoded.pts is not None else (0 if last is None else last + step)
        if last is not None and stamp <= last:
            stamp = last + 1  # keep them increasing, as every muxer requires
        last = stamp
        frames.append(decoded.rgb())
        pts.append(stamp)
        if len(frames) == batch:
            yield _Batch(np.stack(frames), pts, list(audio))
            frames, pts = [], []
            audio.clear()
    if frames or audio:
        yield _Batch(np.stack(frames) if frames else np.zeros((0, 1, 1, 3), np.uint8), pts, audio)


def _frame_step(stream) -> int:
    """One frame's duration in the stream's time base (for frames without a pts)."""
    rate, base = stream.average_rate or stream.guessed_rate, stream.time_base
    if not rate or not base:
        return 1
    return max(1, round(1 / (rate * base)))


class _Writer:
    """The output container: restored frames encoded, audio packets copied."""

    def __init__(self, temporary: Path, source, info: VideoInfo, encoding: Encoding, target):
        import av

        self.output = av.open(str(temporary), "w", format=_muxer(target))
        try:
            self._add_streams(source, info, encoding, target)
        except BaseException:
            self.abort()
            raise
        self.colour: dict = {}
        self.started = False

    def _add_streams(self, source, info: VideoInfo, encoding: Encoding, target: Path) -> None:
        video = source.streams.video[0]
        supported = self.output.supported_codecs
        codec = "libx264" if encoding.codec == "h264" else "ffv1"
        if encoding.codec not in supported and codec not in supported:
            raise VideoError(f"{target}: a {target.suffix} file cannot hold {encoding.codec} video")
        rate = info.rate or fractions.Fraction(25)
        self.stream = self.output.add_stream(codec, rate=rate)  # stream 0, then the audio
        self.audio = {}
        for stream in source.streams.audio:
            name = stream.codec_context.name
            if name not in supported:
                raise VideoError(
                    f"{target}: a {target.suffix} file cannot hold the input's {name} audio; "
                    "write .mkv instead"
                )
            self.audio[stream.index] = self.output.add_stream_from_template(stream)
        self.stream.width, self.stream.height = info.width, info.height
        even = info.width % 2 == 0 and info.height % 2 == 0
        if encoding.codec == "h264":
            self.stream.pix_fmt = "yuv420p" if even else "yuv444p"
            self.stream.options = {"crf": f"{encoding.crf:g}", "preset": encoding.preset}
        else:
            self.stream.pix_fmt = "bgr0"
            self.stream.options = {"level": "3", "slicecrc": "1"}
        self.stream.time_base = video.time_base
        self.stream.codec_context.time_base = video.time_base

    def _start(self, colour: dict) -> None:
        context = self.stream.codec_context
        self.colour = colour
        if self.stream.pix_fmt != "bgr0":
            # Tag the output as the input was tagged, and convert RGB back to YUV with
            # the matrix and range that decoding used.
            for name, value in colour.items():
                if hasattr(context, name):
                    setattr(context, name, value)
        self.started = True

    def write(self, batch: _Batch, restored: np.ndarray, colour: dict) -> None:
        import av

        if not self.started:
            self._start(colour)
        for packet in batch.audio:
            packet.stream = self.audio[packet.stream.index]
            self.output.mux(packet)
        for rgb, stamp in zip(restored, batch.pts):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            if self.stream.pix_fmt == "bgr0":
                frame = frame.reformat(format="bgr0")
            else:
                frame = frame.reformat(
                    format=self.stream.pix_fmt,
                    dst_colorspace=_swscale_space(self.colour["colorspace"]),
                    dst_color_range=self.colour["color_range"] or None,
                )
            frame.pts = stamp
            frame.time_base = self.stream.codec_context.time_base
            self.output.mux(self.stream.encode(frame))

    def finish(self) -> None:
        self.output.mux(self.stream.encode(None))
        self.output.close()

    def abort(self) -> None:
        try:
            self.output.close()
        except Exception:  # noqa: BLE001 - the file is removed anyway
            pass


def _muxer(target: Path) -> str:
    return {".mkv": "matroska", ".mov": "mov"}.get(target.suffix.lower(), "mp4")


def _swscale_space(colorspace: int):
    """The swscale matrix for an AVColorSpace tag (BT.601 when untagged)."""
    from av.video.reformatter import Colorspace

    names = {1: "ITU709", 4: "FCC", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}
    name = names.get(int(colorspace or 0), "ITU601")
    return getattr(Colorspace, name, Colorspace.ITU601)  # BT2020 from PyAV 18


def restore_video(
    source: Path,
    target: Path,
    restore: Callable[[np.ndarray], np.ndarray],
    encoding: Encoding,
    batch: int = 1,
    progress=None,
    warn: Callable[[str], None] = logging.warning,
) -> int:
    """Restore every frame of `source` into `target` with `restore` (uint8 [n, H, W, 3]
    -> uint8 [n, H, W, 3]); returns the number of frames written. Raises VideoError
    with a one-line reason; the target then does not exist. Frames whose packets the
    decoder rejects are left out (the others keep their timestamps, so sound and
    picture stay in sync) and `warn` gets one line naming how many and where, once
    the output is complete; a video that ends early (truncated) or where no frame
    decodes is refused."""
    import av

    info = probe(source)
    if target.suffix.lower() not in OUTPUT_SUFFIXES:
        raise VideoError(f"{target}: video output must be one of {', '.join(OUTPUT_SUFFIXES)}")
    if encoding.codec == "ffv1" and target.suffix.lower() != ".mkv":
        raise VideoError(f"{target}: FFV1 video is written to .mkv files")
    if progress is not None and info.expected:
        progress.total = (progress.total or 0) + info.expected
        progress.refresh()
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.stem}.partial-{os.getpid()}{target.suffix}")
    writer = None
    count = 0
    try:
        with (
            open_input(source) as container,
            concurrent.futures.ThreadPoolExecutor(1) as reading,
            concurrent.futures.ThreadPoolExecutor(1) as writing,
        ):
            writer = _Writer(temporary, container, info, encoding, target)
            colour: dict = {}
            rejected: list[float] = []
            batches = _decode(container, batch, source, colour, rejected)
            upcoming = reading.submit(next, batches, None)  # decodes while we compute
            pending: list[concurrent.futures.Future] = []
            while (current := upcoming.result()) is not None:
                upcoming = reading.submit(next, batches, None)
                restored = restore(current.frames) if len(current.frames) else current.frames
                pending.append(writing.submit(writer.write, current, restored, colour))
                while len(pending) > 2:  # bounded memory: at most two batches queued
                    pending.pop(0).result()
                count += len(current.frames)
                if progress is not None:
                    progress.update(len(current.frames))
            for future in pending:
                future.result()
            if count == 0:
                raise VideoError(f"{source}: no decodable video frames")
            # A few frames of slack: edit lists and decoder delay can drop one or two.
            if info.expected and count + len(rejected) < info.expected - 2 - info.expected // 100:
                raise VideoError(
                    f"{source}: truncated or corrupt: decoded {count} of the "
                    f"{info.expected} frames its container lists"
                )
            writer.finish()
        os.replace(temporary, target)
        if rejected:
            where = ", ".join(f"{t:.2f}" for t in rejected[:5]) + (
                ", ..." if len(rejected) > 5 else ""
            )
            warn(
                f"{source}: {len(rejected)} of {count + len(rejected)} frames could not be "
                f"decoded (corrupt data, at {where} s) and were left out"
            )
    except VideoError:
        raise
    except (av.FFmpegError, OSError, ValueError) as error:
        raise VideoError(f"{source}: cannot restore video ({reason(error)})") from None
    finally:
        if writer is not None and temporary.exists():
            writer.abort()
        temporary.unlink(missing_ok=True)
    return count
