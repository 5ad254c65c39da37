"""Restore compressed images and video.

    python -m jaxrestore.restore INPUT... --output PATH [--quality auto|N]
        [--checkpoint ssim|gan|RUN] [--overwrite | --skip-existing] [--format png]
        [--tile 1024] [--overlap 128] [--batch 1] [--dtype float32|bfloat16]
        [--codec h264|ffv1] [--crf 17] [--preset medium] [--max-pixels 120000000]

INPUT: image files (JPEG, PNG, WebP, TIFF, BMP), video files (anything PyAV
decodes: .mp4, .mkv, .mov, .avi, .webm, .mpg, .ts, ...) or folders (every image
and video below them, recursively; only regular files, links are not followed).

Where outputs go (`jaxrestore.media.batch`, checked whole before the model loads):
- one file: OUTPUT is the output file, its format taken from the extension (a
  video to .mp4, .m4v, .mov or .mkv); OUTPUT an existing folder (or ending in
  `/`): the file goes into it as `<stem>.png`;
- one folder: its tree is mirrored directly into OUTPUT, each file keeping its
  stem (`photos/a/b.jpg` -> `OUTPUT/a/b.png`), whether OUTPUT exists or not;
- several inputs: each file into OUTPUT/, each folder into OUTPUT/<its name>/.
Images are lossless PNG in a folder unless `--format` says otherwise (given
with an output file, it must agree with the extension); videos keep their
container (.mp4 for one we cannot write; .mkv for FFV1).

Never lost: an output that would replace an input, two inputs that would meet
in one output, an output outside OUTPUT, and OUTPUT being an input folder are
refused before anything is restored, with one line naming the files. An output
that exists is refused too, unless `--overwrite` (replace it) or
`--skip-existing` (keep it; how an interrupted batch is finished). An OUTPUT
inside an input folder is not read as input.

The model: `--checkpoint` (a training workdir, an export, or the name of a
packaged generator: `ssim`, the default, trained for fidelity with the SSIM
loss, or `gan`, the same network fine-tuned adversarially with a perceptual
loss: sharper texture, lower LPIPS, less PSNR) and, for `--quality auto` on
non-JPEG inputs, `--predictor` (default the packaged quality predictor). A JPEG
file's quality is read from its quantisation tables; a video's is the median of
the predictor's estimates over 16 frames spread through it. Each file's line
says the QF used and where it came from.

Any size in bounded memory: an image of at most `--tile`² pixels (sides padded
to a multiple of 64) is one tile; a larger one is cut into `--tile`² tiles whose
neighbours share `--overlap` pixels (default 128, or half a smaller tile; see
`jaxrestore.inference.restorer`). EXIF orientation is applied; the ICC profile
and EXIF data are kept where the output format allows; grayscale stays
grayscale; palette, CMYK and 1-bit images are restored in RGB or gray, a
palette's transparency becoming an alpha channel; an alpha channel is carried
through untouched. Refused, so that nothing is written at a loss: 16-bit or
float samples, animated images, and any image whose header declares more than
`--max-pixels`, checked before a pixel is decoded.

Video (`jaxrestore.media.transcode`): frames go to the device `--batch` at a time
while the next ones decode and the previous ones encode; every frame keeps its
timestamp and the audio streams are copied packet for packet. `--codec h264`
(libx264 at `--crf`/`--preset`) or `ffv1` (lossless, .mkv).

Every output is written to a race-free temporary beside it and renamed when
complete (`jaxrestore.files`). A file that cannot be restored gets a one-line
error naming it (names are printed quoted, control characters escaped) and
nothing is written for it; the others are still done, a batch ends with the
list of the files that failed, and the exit status is 1. Every option is
checked before the model loads: a bad one is one line and exit status 2.
Ctrl-C or SIGTERM abandons the file in progress (nothing is left of it), keeps
the finished ones, prints what was done and what was not, and exits with 130 or
143; the same command with `--skip-existing` finishes the batch.
"""

from __future__ import annotations

if __name__ == "__main__":  # before the heavy imports below (jax: seconds)
    import os as _os
    import signal as _signal

    def _stopped_early(signum, frame):
        name = _signal.Signals(signum).name
        line = f"jaxrestore.restore: interrupted ({name}) while starting; nothing written\n"
        _os.write(2, line.encode())
        _os._exit(128 + signum)

    for _number in (_signal.SIGINT, _signal.SIGTERM):
        _signal.signal(_number, _stopped_early)

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import tqdm
from absl import logging

import jaxrestore
from jaxrestore import files
from jaxrestore.errors import reason
from jaxrestore.inference import loader
from jaxrestore.inference.quality import parse_quality
from jaxrestore.inference.restorer import DEFAULT_OVERLAP, FileResult, Restorer, Tiling
from jaxrestore.media import batch, transcode
from jaxrestore.media import image as image_io

NAME = "jaxrestore.restore"
LISTED = 10  # names listed at most in a summary; the rest are counted


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line (and exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {files.printable(message)} (see --help)\n")


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown where there is one to show (not None, False or a required option)."""

    def _get_help_string(self, action):
        if action.default in (None, False) or action.required:
            return action.help
        return super()._get_help_string(action)


def _quality(value: str) -> str | float:
    try:
        parsed = parse_quality(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or a JPEG QF in 1..100, got {value!r}"
        ) from None
    return "auto" if parsed is None else parsed


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}")
    return number


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog=NAME, description=__doc__, formatter_class=_Help)
    p.add_argument("inputs", nargs="+", type=Path, help="image or video files, or folders")
    p.add_argument("--version", action="version", version=f"%(prog)s {jaxrestore.__version__}")
    p.add_argument(
        "--output",
        "-o",
        required=True,
        help="the output file, or the folder for several inputs or a folder",
    )
    existing = p.add_mutually_exclusive_group()
    existing.add_argument(
        "--overwrite", "-y", action="store_true", help="replace outputs that exist (never an input)"
    )
    existing.add_argument(
        "--skip-existing",
        "-n",
        action="store_true",
        help="keep outputs that exist and restore the rest",
    )
    add_restore_options(p)
    return p


def add_restore_options(p: argparse.ArgumentParser) -> None:
    """The options of the model, the QF, tiling, formats and codecs (shared with
    `jaxrestore.archive`)."""
    p.add_argument(
        "--quality",
        "-q",
        type=_quality,
        default="auto",
        help="'auto' (tables or predictor) or the inputs' JPEG QF, 1–100",
    )
    p.add_argument(
        "--checkpoint",
        default=loader.DEFAULT_GENERATOR,
        help="'ssim' (packaged, fidelity), 'gan' (packaged, perceptual), "
        "a training workdir or an export",
    )
    p.add_argument(
        "--predictor",
        default=loader.DEFAULT_PREDICTOR,
        help="for --quality auto on non-JPEG inputs: 'quality' (packaged), "
        "a quality-predictor workdir or export; '' for none (then only JPEG files "
        "get 'auto')",
    )
    p.add_argument(
        "--format",
        default=None,
        help="image output format: png, jpeg, webp, tiff or bmp (default: png in "
        "a folder, else from the output's extension)",
    )
    p.add_argument(
        "--tile",
        type=_positive,
        default=Tiling.tile,
        help="tile side in pixels (a multiple of 64): bounds memory",
    )
    p.add_argument(
        "--overlap",
        type=int,
        default=None,
        help=f"pixels shared by neighbouring tiles (a multiple of 8; default "
        f"{DEFAULT_OVERLAP}, or half a smaller --tile)",
    )
    p.add_argument(
        "--batch",
        type=_positive,
        default=Tiling.batch,
        help="tiles or video frames per device call (4–8 on a GPU)",
    )
    p.add_argument(
        "--dtype",
        choices=("float32", "bfloat16"),
        default="float32",
        help="compute precision (bfloat16 on a GPU or TPU)",
    )
    p.add_argument(
        "--codec",
        choices=transcode.CODECS,
        default=transcode.Encoding.codec,
        help="video output: h264, or ffv1 (lossless, .mkv)",
    )
    p.add_argument(
        "--crf",
        type=float,
        default=transcode.Encoding.crf,
        help="H.264 constant rate factor, 0 (lossless) to 51",
    )
    p.add_argument(
        "--preset",
        choices=transcode.PRESETS,
        default=transcode.Encoding.preset,
        help="x264 preset",
        metavar="PRESET",
    )
    p.add_argument(
        "--max-pixels",
        type=_positive,
        default=image_io.MAX_PIXELS,
        help="refuse images whose header declares more pixels",
    )
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no line per restored file (errors and the summary only)",
    )


def _model_source(value: str, option: str, packaged: tuple[str, ...]) -> None:
    """A packaged name or an existing path, else ValueError (before anything loads)."""
    if value in packaged or Path(value).exists():
        return
    close = [name for name in packaged if name.lower() == value.lower()]
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"{option} {value}: neither a packaged model ({', '.join(packaged)}) nor an "
        f"existing workdir or export{hint}"
    )


@dataclasses.dataclass
class _Batch:
    """What a run has done so far, for its summary."""

    jobs: list[batch.Job]
    results: list[FileResult] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)  # one line per file
    warned: list[str] = dataclasses.field(default_factory=list)  # videos with frames lost
    current: int = -1  # index of the file in progress (or last begun)
    handled: int = 0  # files done with (restored or failed), from the first
    started: float = dataclasses.field(default_factory=time.perf_counter)

    def summary(self) -> str:
        images = [r for r in self.results if not r.frames]
        videos = [r for r in self.results if r.frames]
        image_total = sum(not job.is_video for job in self.jobs)
        parts = []
        if image_total:
            pixels = sum(r.pixels for r in images) / 1e6
            seconds = max(sum(r.seconds for r in images), 1e-9)
            parts.append(
                f"{len(images)} of {image_total} image(s), {pixels:.1f} MP "
                f"({pixels / seconds:.2f} MP/s)"
            )
        if len(self.jobs) > image_total:
            frames = sum(r.frames for r in videos)
            seconds = max(sum(r.seconds for r in videos), 1e-9)
            parts.append(
                f"{len(videos)} of {len(self.jobs) - image_total} video(s), {frames} frames "
                f"({frames / seconds:.2f} frames/s)"
            )
        took = time.perf_counter() - self.started
        return f"restored {' and '.join(parts)} in {took:.1f} s"


def _say(message: str, bar=None) -> None:
    line = f"{NAME}: {files.printable(message)}"
    if bar is not None and not bar.disable:
        bar.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr)


def _named(source: Path, message: str) -> str:
    """`message` about `source` as one line that starts with its quoted name."""
    if message.startswith(f"{source}: "):
        message = message[len(str(source)) + 2 :]
    elif message.startswith(f"{files.shown(source)}: "):
        return message
    return f"{files.shown(source)}: {message}"


def _failure(source: Path, error: BaseException) -> str:
    """One line naming the file (quoted) and why."""
    message = str(error) if isinstance(error, (ValueError, FileExistsError)) else ""
    return _named(source, message or f"{type(error).__name__}: {reason(error)}")


def _listed(title: str, lines: list[str], limit: int | None = None) -> None:
    """A title, then the lines indented (the first `limit`, and a count of the rest)."""
    _say(title)
    for line in lines[:limit]:
        print(f"  {files.printable(line)}", file=sys.stderr)
    if limit is not None and len(lines) > limit:
        print(f"  ... and {len(lines) - limit} more", file=sys.stderr)


def _prepare(args) -> tuple[batch.Plan, Tiling, transcode.Encoding]:
    """Every option and the whole plan, checked before any model loads."""
    if not str(args.output).strip():
        raise ValueError("--output is empty; name a file or a folder")
    tiling, encoding = check_restore_options(args)
    existing = "overwrite" if args.overwrite else "skip" if args.skip_existing else "refuse"
    plan = batch.plan(args.inputs, args.output, args.format, encoding.codec, existing)
    return plan, tiling, encoding


def check_restore_options(args) -> tuple[Tiling, transcode.Encoding]:
    """The options of `add_restore_options` (tiling, codec, models) checked, before any
    model loads: ValueError (one line). Shared with `jaxrestore.archive`."""
    tiling = Tiling(args.tile, args.overlap, args.batch)
    encoding = transcode.Encoding(args.codec, args.crf, args.preset)
    _model_source(args.checkpoint, "--checkpoint", loader.PACKAGED_GENERATORS)
    if args.quality == "auto" and args.predictor:
        _model_source(args.predictor, "--predictor", (loader.DEFAULT_PREDICTOR,))
    return tiling, encoding


def _restore_all(args, plan: batch.Plan, restorer: Restorer, encoding, state: _Batch) -> None:
    shown = sys.stderr.isatty()  # bars on a terminal only, nothing when piped
    with tqdm.tqdm(total=len(plan.jobs), unit="file", disable=not shown, leave=False) as bar:

        def warn(message: str) -> None:
            line = _named(plan.jobs[state.current].source, message)
            _say(line, bar)
            state.warned.append(line)

        for index, job in enumerate(plan.jobs):
            files.check_interrupted()  # a signal whose exception was lost in a finalizer
            state.current = index
            try:
                with tqdm.tqdm(
                    unit="frame", disable=not (shown and job.is_video), leave=False, position=1
                ) as frames:
                    result = restorer.restore_job(
                        job,
                        args.quality,
                        overwrite=args.overwrite,
                        max_pixels=args.max_pixels,
                        encoding=encoding,
                        progress=frames if job.is_video else None,
                        warn=warn,
                    )
            except Exception as error:  # noqa: BLE001 - one file's failure must not stop the rest
                line = _failure(job.source, error)
                state.failed.append(line)
                state.handled = index + 1
                _say(line, bar)
            else:
                state.results.append(result)
                state.handled = index + 1
                if not args.quiet:
                    size = (
                        f"{result.frames} frames"
                        if result.frames
                        else f"{result.pixels / 1e6:.2f} MP"
                    )
                    _say(
                        f"{files.shown(job.source)} -> {files.shown(job.target)}: "
                        f"{result.describe()}, {size} in {result.seconds:.1f} s",
                        bar,
                    )
            bar.update(1)
        files.check_interrupted()


def run(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.set_verbosity(logging.ERROR)
    state = None
    with files.interruptible():
        try:
            try:
                plan, tiling, encoding = _prepare(args)
            except ValueError as error:
                _say(str(error))
                return 2
            if plan.existing:
                _say(f"kept {len(plan.existing)} existing output(s) (--skip-existing)")
            if plan.skipped:
                _listed(
                    f"skipped {len(plan.skipped)} entries in folders that are not regular "
                    "files (links are not followed):",
                    [f"{files.shown(path)}: {why}" for path, why in plan.skipped],
                    LISTED,
                )
            if not plan.jobs:
                if plan.existing:
                    _say("nothing left to restore")
                    return 0
                _say(f"{', '.join(map(files.shown, args.inputs))}: no images or videos found")
                return 2
            try:
                restorer = Restorer.from_pretrained(
                    args.checkpoint,
                    args.predictor if args.quality == "auto" and args.predictor else None,
                    tiling.tile,
                    tiling.overlap,
                    tiling.batch,
                    args.dtype,
                )
            except (ValueError, FileNotFoundError) as error:
                _say(str(error))
                return 2
            state = _Batch(plan.jobs)
            _restore_all(args, plan, restorer, encoding, state)
        except files.Interrupted as stop:
            _interrupted(stop, state)
            return stop.exit_status
    _say(state.summary())
    if len(plan.jobs) > 1:
        # The same lines again, together at the end, so none is lost in a long batch.
        if state.failed:
            _listed(f"{len(state.failed)} of {len(plan.jobs)} files failed:", state.failed)
        if state.warned:
            _listed(
                f"{len(state.warned)} of {len(plan.jobs)} files restored with frames left out:",
                state.warned,
            )
    return 1 if state.failed else 0


def _interrupted(stop: files.Interrupted, state: _Batch | None) -> None:
    """The summary of a batch cut short by a signal."""
    signal_name = stop.args[0]
    if state is None or state.current < 0:
        _say(f"interrupted ({signal_name}) before any file was restored; nothing written")
        return
    left = state.jobs[state.handled :]
    if left and state.current == state.handled:  # one was in progress
        job = left[0]
        if job.target == files.last_finished():  # the signal came just after its rename
            _say(
                f"interrupted ({signal_name}) as {files.shown(job.source)} was finished: "
                f"{files.shown(job.target)} is whole and kept"
            )
            left = left[1:]
        else:
            _say(
                f"interrupted ({signal_name}) while restoring {files.shown(job.source)}: "
                "abandoned, nothing written for it"
            )
    else:
        _say(f"interrupted ({signal_name}) between files")
    _say(state.summary() + (f"; {len(state.failed)} failed" if state.failed else ""))
    if left:
        _listed(
            f"{len(left)} of {len(state.jobs)} files not restored (the same command with "
            "--skip-existing restores them):",
            [files.shown(job.source) for job in left],
            LISTED,
        )


if __name__ == "__main__":
    sys.exit(run())
