"""A video file restored into another (PyAV): decode, restore the frames, encode.

`restore_video` decodes a file (`video.decode`), hands batches of RGB frames to a
restoring function and encodes what comes back, in three overlapping stages: a
reader thread decodes the next batch while the caller's function runs on the
device, and a writer thread encodes and muxes the previous one. Every audio stream
and every subtitle and data stream the output container can hold is copied packet
for packet (no re-encode); each restored frame keeps its source frame's timestamp,
so frame count, frame rate (constant or variable), size and audio and subtitle
sync are those of the input, and the display matrix (a phone clip's rotation) is
carried over. Output is H.264 (libx264, `crf`, `preset`;
4:2:0 for even sizes, else 4:4:4) or lossless FFV1 in Matroska (RGB: exactly the
restored pixels), tagged with the input's colour metadata and converted to YUV
with its matrix and range. It is written to a temporary name beside the target
and renamed only when complete; on any error it is removed. A subtitle or data
stream the output container cannot hold (SubRip in .mp4, mov_text in .mkv, most
data streams outside .mov/.mp4) is left out and named in one warning line.

Damaged input: frames whose packets the decoder rejects are left out, the frames
around them keep their timestamps (the audio stays in sync; a player holds the
previous frame), and once the output is complete a one-line warning names how
many frames were lost and at what times. A file that ends early (fewer frames
than its container lists: truncated) is refused and nothing is written.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import fractions
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from absl import logging

from jaxrestore import files
from jaxrestore.errors import reason
from jaxrestore.media.video import (
    VideoError,
    VideoInfo,
    copied_streams,
    decode,
    display_matrix,
    open_input,
    probe,
)

OUTPUT_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")
CODECS = ("h264", "ffv1")
PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)


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
        if self.preset not in PRESETS:
            raise ValueError(f"--preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")


@dataclasses.dataclass
class _Batch:
    frames: np.ndarray  # uint8 [n, H, W, 3]
    pts: list[int]  # in the video stream's time base
    packets: list  # audio, subtitle and data packets demuxed since the previous batch
    display: tuple[int, ...] | None = None  # the first frame's display matrix (first batch)


def _decode(
    container, batch: int, path: Path, colour: dict, rejected: list[float]
) -> Iterator[_Batch]:
    """Batches of RGB frames (`decode`) with timestamps every muxer takes (increasing;
    one frame's duration after the previous where a frame has none) and the other
    streams' packets between them. `colour` and `rejected` are filled as `decode`
    fills them."""
    step = _frame_step(container.streams.video[0])
    frames: list[np.ndarray] = []
    pts: list[int] = []
    packets: list = []
    last = None
    display = None
    for decoded in decode(container, path, rejected, packets, colour):
        if last is None:
            display = display_matrix(decoded.frame)
        stamp = decoded.pts if decoded.pts is not None else (0 if last is None else last + step)
        if last is not None and stamp <= last:
            stamp = last + 1  # keep them increasing, as every muxer requires
        last = stamp
        frames.append(decoded.rgb())
        pts.append(stamp)
        if len(frames) == batch:
            yield _Batch(np.stack(frames), pts, list(packets), display)
            frames, pts = [], []
            packets.clear()
    if frames or packets:
        empty = np.zeros((0, 1, 1, 3), np.uint8)
        yield _Batch(np.stack(frames) if frames else empty, pts, packets, display)


def _frame_step(stream) -> int:
    """One frame's duration in the stream's time base (for frames without a pts)."""
    rate, base = stream.average_rate or stream.guessed_rate, stream.time_base
    if not rate or not base:
        return 1
    return max(1, round(1 / (rate * base)))


class _Writer:
    """The output container: restored frames encoded; audio, subtitle and data packets
    copied. `left_out` names what the output cannot carry (for one warning line)."""

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
        self.stream = self.output.add_stream(codec, rate=rate)  # stream 0, then the others
        self.copies: dict = {}  # input stream index -> output stream
        self.left_out: list[str] = []
        for stream in copied_streams(source):
            name = _codec_name(stream)
            if stream.type == "audio" and name not in supported:
                raise VideoError(
                    f"{target}: a {target.suffix} file cannot hold the input's {name} audio; "
                    "write .mkv instead"
                )
            if name in supported:
                try:
                    self.copies[stream.index] = self.output.add_stream_from_template(stream)
                    continue
                except ValueError:  # PyAV: the muxer refuses this codec after all
                    pass
            self.left_out.append(f"stream {stream.index} ({stream.type}, {name})")
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

    def _start(self, colour: dict, display: tuple[int, ...] | None) -> None:
        context = self.stream.codec_context
        self.colour = colour
        if display is not None:  # before anything is muxed: the header holds it
            if hasattr(self.stream, "set_display_matrix"):
                self.stream.set_display_matrix(display)
            else:
                self.left_out.append("the display rotation (PyAV >= 18 writes it)")
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
            self._start(colour, batch.display)
        for packet in batch.packets:
            copy = self.copies.get(packet.stream.index)
            if copy is not None:
                packet.stream = copy
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


def _codec_name(stream) -> str:
    """The codec of an input stream (data streams have no codec context)."""
    context = stream.codec_context
    return context.name if context is not None else (getattr(stream, "name", None) or "unknown")


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
    overwrite: bool = False,
) -> int:
    """Restore every frame of `source` into `target` with `restore` (uint8 [n, H, W, 3]
    -> uint8 [n, H, W, 3]); returns the number of frames written. Raises VideoError
    with a one-line reason; the target then does not exist. Frames whose packets the
    decoder rejects are left out (the others keep their timestamps, so sound and
    picture stay in sync) and `warn` gets one line naming how many and where, once
    the output is complete, and one naming the subtitle and data streams (or the
    rotation) the output could not carry; a video that ends early (truncated) or where no frame
    decodes is refused. An existing `target` is replaced only with `overwrite` (else
    `files.OutputExists`); the output is written to a race-free temporary beside it
    (`files.temporary_in`) and renamed when complete."""
    import av

    info = probe(source)
    if target.suffix.lower() not in OUTPUT_SUFFIXES:
        raise VideoError(f"{target}: video output must be one of {', '.join(OUTPUT_SUFFIXES)}")
    if encoding.codec == "ffv1" and target.suffix.lower() != ".mkv":
        raise VideoError(f"{target}: FFV1 video is written to .mkv files")
    if progress is not None and info.expected:
        progress.total = (progress.total or 0) + info.expected
        progress.refresh()
    if not overwrite and os.path.lexists(target):
        raise files.OutputExists(
            f"{files.shown(target)}: exists; not replaced (--overwrite replaces)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = None
    writer = None
    count = 0
    try:
        with files.critical():  # created and remembered, or neither
            temporary = files.temporary_in(target.parent, target.stem, target.suffix)
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
                files.check_interrupted()  # a signal whose exception was lost
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
        files.finish(temporary, target, overwrite)
        if writer.left_out:
            warn(
                f"{source}: not carried to the {target.suffix} output: "
                f"{', '.join(writer.left_out)} (.mkv holds text subtitles, .mov/.mp4 mov_text)"
            )
        if rejected:
            where = ", ".join(f"{t:.2f}" for t in rejected[:5]) + (
                ", ..." if len(rejected) > 5 else ""
            )
            warn(
                f"{source}: {len(rejected)} of {count + len(rejected)} frames could not be "
                f"decoded (corrupt data, at {where} s) and were left out"
            )
    except (VideoError, files.OutputExists):
        raise
    except (av.FFmpegError, OSError, ValueError) as error:
        raise VideoError(f"{source}: cannot restore video ({reason(error)})") from None
    finally:
        with files.critical():
            if writer is not None and temporary is not None and temporary.exists():
                writer.abort()
            if temporary is not None:
                temporary.unlink(missing_ok=True)
    return count
