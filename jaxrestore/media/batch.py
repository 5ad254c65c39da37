"""Which files a restore reads and where each is written: checked whole, before any
work, so that no input is ever written over and no two inputs meet in one output.

Outputs, as `plan` builds them:
- One input file and `--output` not a folder: OUTPUT is the output file; its
  extension gives the format, and `--format`, when given, must agree with it.
- One input file and `--output` an existing folder (or a name ending in `/`):
  the file is written into it, as `cp` does: `OUTPUT/<stem>.png` (or the
  `--format`'s extension; a video keeps its container).
- One input folder: its tree is mirrored directly into OUTPUT, whether OUTPUT
  exists or not (`restore photos -o restored` gives `restored/a/b.png` for
  `photos/a/b.jpg`, the first time and every time).
- Several inputs: OUTPUT is a folder; each file becomes `OUTPUT/<stem>.<ext>`
  and each folder `OUTPUT/<folder name>/...` (the name of the folder itself, so
  `.` and `sub/..` are named after what they are).

Refused before anything is restored, with one line naming the files:
- an output that is one of the inputs (or a hard link to one);
- two inputs that would be written to the same output (`x/pic.jpg` and
  `y/pic.jpg` given together). Files of one folder that share a stem (`pic.jpg`
  beside `pic.png`) are not refused: each keeps its extension in its output's
  name (`pic.jpg.png`, `pic.png.png`);
- an output that already exists, unless `existing` is "overwrite" (replace it)
  or "skip" (keep it and leave its input out: how an interrupted batch is
  finished);
- OUTPUT equal to an input folder; an OUTPUT inside an input folder is left out
  of the walk, so outputs are never read back as inputs;
- any output that would land outside OUTPUT (through `..` or a link).

In folders only regular files are read: links (to files or folders, inside the
folder or out of it), FIFOs, sockets and devices are skipped and counted in
`Plan.skipped`. Files named on the command line are read through links, but
must be regular files.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

from jaxrestore import files
from jaxrestore.media import image as image_io
from jaxrestore.media import transcode, video

# --format values (Pillow's names), with their extension in a folder of outputs.
FORMAT_NAMES = {
    "png": "PNG",
    "jpeg": "JPEG",
    "jpg": "JPEG",
    "webp": "WEBP",
    "tiff": "TIFF",
    "tif": "TIFF",
    "bmp": "BMP",
}
EXTENSION = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp"}
EXISTING = ("refuse", "overwrite", "skip")


class PlanError(ValueError):
    """A batch that cannot be done safely; the message is one line."""


@dataclasses.dataclass(frozen=True)
class Job:
    source: Path
    target: Path
    fmt: str  # Pillow's format name, or "VIDEO"

    @property
    def is_video(self) -> bool:
        return self.fmt == "VIDEO"


@dataclasses.dataclass
class Plan:
    jobs: list[Job]
    existing: list[Job]  # left out: their output exists ("skip")
    skipped: list[tuple[Path, str]]  # entries in folders that are not regular files


def parse_format(value: str | None) -> str | None:
    """`--format` as Pillow's name (None when not given); PlanError when unknown."""
    if value is None:
        return None
    name = FORMAT_NAMES.get(value.lower().lstrip("."))
    if name is None:
        raise PlanError(f"--format {value}: expected one of png, jpeg, webp, tiff, bmp")
    return name


def _is_media(path: Path) -> bool:
    return path.suffix.lower() in image_io.FORMATS or video.is_video(path)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _walk(folder: Path, leave_out: str) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Regular media files below `folder` (sorted, links not followed) and the
    entries skipped with why; the folder whose real path is `leave_out` (OUTPUT)
    is not entered."""
    found: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for top, folders, names in os.walk(folder, followlinks=False):
        kept = []
        for name in sorted(folders):
            path = Path(top, name)
            if os.path.islink(path):
                skipped.append((path, "a link to a folder"))
            elif os.path.realpath(path) != leave_out:
                kept.append(name)
        folders[:] = kept
        for name in sorted(names):
            path = Path(top, name)
            if files.PARTIAL in name and name.startswith("."):
                continue  # a temporary of ours (another restore writing here)
            if not _is_media(path):
                continue
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode):
                found.append(path)
            elif stat.S_ISLNK(mode):
                skipped.append((path, "a link"))
            else:
                skipped.append((path, "not a regular file"))
    return found, skipped


def _video_target(source: Path, base: Path, codec: str) -> Path:
    """A video keeps its container where we can write it (.mp4 otherwise; .mkv for
    FFV1)."""
    if codec == "ffv1":
        return base.with_name(base.name + ".mkv")
    suffix = source.suffix.lower()
    return base.with_name(base.name + (suffix if suffix in transcode.OUTPUT_SUFFIXES else ".mp4"))


def _single_target(source: Path, output: Path, fmt: str | None, codec: str) -> Job:
    """One input file to the output file the user named."""
    suffix = output.suffix.lower()
    if video.is_video(source):
        if suffix not in transcode.OUTPUT_SUFFIXES:
            raise PlanError(
                f"{files.shown(output)}: a video is written to one of "
                f"{', '.join(transcode.OUTPUT_SUFFIXES)}"
            )
        if codec == "ffv1" and suffix != ".mkv":
            raise PlanError(f"{files.shown(output)}: --codec ffv1 is written to .mkv files")
        if fmt is not None:
            raise PlanError(f"--format is for images; {files.shown(source)} is a video")
        return Job(source, output, "VIDEO")
    by_suffix = image_io.FORMATS.get(suffix)
    if by_suffix is None:
        if suffix in transcode.OUTPUT_SUFFIXES:
            raise PlanError(f"{files.shown(source)} is an image; it cannot be written to {suffix}")
        raise PlanError(
            f"{files.shown(output)}: cannot tell the format from "
            f"{suffix or 'no extension'}; name a file ending in "
            f"{', '.join(sorted(image_io.FORMATS))}, or an existing folder"
        )
    if fmt is not None and fmt != by_suffix:
        raise PlanError(
            f"--format {fmt.lower()} disagrees with {files.shown(output)} ({by_suffix}); "
            "drop --format or change the extension"
        )
    return Job(source, output, by_suffix)


def _folder_target(source: Path, base: Path, fmt: str | None, codec: str) -> Job:
    """`base` is the output without its extension."""
    if video.is_video(source):
        return Job(source, _video_target(source, base, codec), "VIDEO")
    chosen = fmt or "PNG"
    return Job(source, base.with_name(base.name + EXTENSION[chosen]), chosen)


def _disambiguate(jobs: list[Job]) -> list[Job]:
    """Files of one folder that share a stem (`pic.jpg`, `pic.png`) keep their own
    extension in their outputs' names (`pic.jpg.png`, `pic.png.png`), so that each
    has its own; other clashes are left for `_check_outputs` to refuse."""
    by_target: dict[str, list[int]] = {}
    for index, job in enumerate(jobs):
        by_target.setdefault(_key(job.target), []).append(index)
    renamed = list(jobs)
    for indices in by_target.values():
        sources = [jobs[i].source for i in indices]
        if len(indices) < 2 or len({source.parent for source in sources}) > 1:
            continue
        for i in indices:
            job = jobs[i]
            name = job.target.stem + job.source.suffix.lower() + job.target.suffix
            renamed[i] = dataclasses.replace(job, target=job.target.with_name(name))
    return renamed


def _key(path: Path | str) -> str:
    """A path as compared for clashes: without case, as a case-insensitive file
    system (macOS, Windows) would see it, so that no clash goes unseen there."""
    return os.path.normcase(os.path.abspath(path)).casefold()


def _real(path: Path) -> str:
    return os.path.realpath(os.path.abspath(path))


def _check_input(item: Path) -> None:
    if not os.path.lexists(item):
        raise PlanError(f"{files.shown(item)}: no such file or folder")
    if not item.exists():
        raise PlanError(f"{files.shown(item)}: a link to nothing")
    if not item.is_dir() and not files.is_regular(item):
        raise PlanError(f"{files.shown(item)}: not a regular file or folder")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def plan(
    inputs: list[Path],
    output: Path,
    fmt: str | None = None,
    codec: str = "h264",
    existing: str = "refuse",
) -> Plan:
    """What to restore into what (see the module docstring); PlanError (one line)
    when the batch cannot be done safely. `fmt`: `--format` as given (None: from
    the output's extension, or PNG in a folder). `output` ending in "/" (as a string)
    names a folder."""
    if existing not in EXISTING:
        raise ValueError(f"existing must be one of {EXISTING}, got {existing!r}")
    fmt = parse_format(fmt)
    inputs = [Path(item) for item in inputs]
    for item in inputs:
        _check_input(item)
    # A trailing "/" (kept only in a string: Path drops it) names a folder.
    named_folder = str(output).endswith(("/", os.sep))
    output = Path(output)
    out_real = _real(output)
    into_folder = len(inputs) > 1 or inputs[0].is_dir() or output.is_dir() or named_folder
    if output.exists() and not output.is_dir() and into_folder:
        raise PlanError(
            f"{files.shown(output)}: not a folder; several inputs or a folder are restored "
            "into a folder"
        )
    skipped: list[tuple[Path, str]] = []
    jobs: list[Job] = []
    if not into_folder:
        jobs.append(_single_target(inputs[0], output, fmt, codec))
    else:
        for item in inputs:
            if not item.is_dir():
                jobs.append(_folder_target(item, output / item.stem, fmt, codec))
                continue
            item_real = _real(item)
            if item_real == out_real:
                raise PlanError(
                    f"--output {files.shown(output)} is the input folder "
                    f"{files.shown(item)}; restore into another folder"
                )
            if len(inputs) == 1:
                root = output
            else:
                name = Path(item_real).name
                if not name:
                    raise PlanError(f"{files.shown(item)}: restore the root folder on its own")
                root = output / name
            found, passed = _walk(item, out_real)
            skipped += passed
            for file in found:
                relative = file.relative_to(item)
                base = root / relative.parent / relative.stem
                jobs.append(_folder_target(file, base, fmt, codec))
    jobs = _disambiguate(jobs)
    _check_outputs(jobs, output, out_real, into_folder)
    kept, present = [], []
    for job in jobs:
        if os.path.lexists(job.target):
            if os.path.isdir(job.target) and not os.path.islink(job.target):
                raise PlanError(f"{files.shown(job.target)}: a folder is in the output's place")
            if existing == "refuse":
                more = sum(os.path.lexists(j.target) for j in jobs) - 1
                others = f" (and {more} more)" if more else ""
                raise PlanError(
                    f"{files.shown(job.target)} exists{others}; --overwrite replaces, "
                    "--skip-existing keeps them and restores the rest (in Python: "
                    "overwrite=True)"
                )
            if existing == "skip":
                present.append(job)
                continue
        kept.append(job)
    return Plan(kept, present, skipped)


def _check_outputs(jobs: list[Job], output: Path, out_real: str, into_folder: bool) -> None:
    """No output is an input (by path, through links, or as a hard link), no two share
    a file, and in a folder all land inside OUTPUT."""
    sources = {_real(job.source): job.source for job in jobs}
    inodes = {}
    for job in jobs:
        info = os.stat(job.source)
        inodes[(info.st_dev, info.st_ino)] = job.source
    claimed: dict[str, Path] = {}
    folders = {}  # the folders outputs go into, each with one output inside it
    for job in jobs:
        for parent in Path(_real(job.target)).parents:
            folders.setdefault(_key(parent), job.target)
    for job in jobs:
        target = _real(job.target)
        source = sources.get(target)
        if source is None and os.path.exists(job.target):
            info = os.stat(job.target)
            source = inodes.get((info.st_dev, info.st_ino))
        if source is not None:
            whose = (
                "its output" if source == job.source else f"the output of {files.shown(job.source)}"
            )
            raise PlanError(
                f"{files.shown(source)}: {whose} would replace this input; restore into "
                "another folder or name another output"
            )
        if _key(target) in claimed:
            raise PlanError(
                f"{files.shown(claimed[_key(target)])} and {files.shown(job.source)} would "
                f"both be written to {files.shown(job.target)}; restore them into separate "
                "folders or rename one"
            )
        if _key(target) in folders:
            raise PlanError(
                f"{files.shown(job.target)} would be both the output of "
                f"{files.shown(job.source)} and the folder of {files.shown(folders[_key(target)])}"
                "; restore them separately"
            )
        claimed[_key(target)] = job.source
        if into_folder and not _inside(os.path.dirname(target), out_real):
            raise PlanError(
                f"{files.shown(job.target)}: outside --output {files.shown(output)} "
                "(through a link?); refused"
            )
