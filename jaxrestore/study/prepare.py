"""`prepare`: build a study folder from images and video frames.

For every item (an image, or one of `--frames` frames spread through a video) and
every quality: the compressed version (`protocol.compress`: JPEG QF, H.264 CRF or
MPEG-2 quantiser) and each method's restoration of it (the restore command's
tiled path, through `evaluation.protocol.Evaluator`), all saved as PNG under opaque names,
plus the original as the reference. The trials (design.build_trials) and every
choice made on the way go into study.json. The folder is built under a temporary
name beside OUT and renamed only when complete.

The pictures' names and files tell nothing of their version: each name is keyed
by a random per-study secret that is never stored (the manifest maps names to
versions), and the pictures are made in a fixed order (original, compressed,
the methods) in a staging folder, then copied into images/ in the order of
their names and given one modification time, so no file time, inode number or
directory order follows the order they were made in.
"""

from __future__ import annotations

import datetime
import os
import re
import secrets
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import tqdm
from PIL import Image

from jaxrestore import files
from jaxrestore.data import degrade
from jaxrestore.evaluation import protocol
from jaxrestore.inference import loader
from jaxrestore.media import image as image_io
from jaxrestore.media import video
from jaxrestore.study import design, manifest

DEFAULT_METHODS = loader.PACKAGED_GENERATORS
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


def parse_methods(methods: list[str] | None, checkpoints: list[str] | None) -> dict[str, str]:
    """{name: checkpoint path} from `--methods` (packaged names or NAME=PATH) and
    `--checkpoint NAME=PATH`; the packaged ssim and gan when neither is given."""
    entries = [*(methods or []), *(checkpoints or [])] or list(DEFAULT_METHODS)
    chosen: dict[str, str] = {}
    for entry in entries:
        name, _, path = entry.partition("=")
        if not path and name not in loader.PACKAGED_GENERATORS:
            raise ValueError(
                f"--methods {entry}: not a packaged model "
                f"({', '.join(loader.PACKAGED_GENERATORS)}); "
                "give NAME=PATH for a workdir or an export"
            )
        if not NAME.match(name) or name in (design.COMPRESSED, design.ORIGINAL):
            raise ValueError(
                f"--methods {entry}: a method name is 1-40 letters, digits, '_', '.' or '-', "
                f"and not '{design.COMPRESSED}' or '{design.ORIGINAL}'"
            )
        if name in chosen:
            raise ValueError(f"--methods {entry}: the name {name!r} is given twice")
        chosen[name] = loader.resolve(path or name)
    return chosen


def check_qualities(codec: str, qualities: list[int]) -> None:
    if codec not in protocol.CODECS:
        raise ValueError(f"--codec must be one of {', '.join(protocol.CODECS)}, got {codec!r}")
    low, high = (1, 100) if codec == "jpeg" else degrade.STRENGTH_RANGES[codec]
    for quality in qualities:
        if not low <= quality <= high:
            raise ValueError(f"--quality {quality}: {codec} takes {low}..{high}")
    if len(set(qualities)) != len(qualities):
        raise ValueError(f"--quality {' '.join(map(str, qualities))}: a quality is given twice")


def parse_crop(value: str | None) -> tuple[int, int] | None:
    """'W' or 'WxH' -> (W, H); None keeps whole pictures."""
    if not value:
        return None
    match = re.fullmatch(r"(\d+)(?:x(\d+))?", value)
    if not match or int(match[1]) < 8 or int(match[2] or match[1]) < 8:
        raise ValueError(f"--crop {value}: expected W or WxH in pixels, each at least 8")
    return int(match[1]), int(match[2] or match[1])


def find_inputs(inputs: list[Path]) -> list[tuple[str, Path]]:
    """(item name, file) for the inputs: files as given, folders searched recursively
    for images and videos (named by their path below the folder's parent)."""
    found = []
    for item in inputs:
        if not item.exists():
            raise ValueError(f"{item}: no such file or folder")
        if item.is_dir():
            files = sorted(
                p
                for p in item.rglob("*")
                if p.is_file() and (p.suffix.lower() in image_io.FORMATS or video.is_video(p))
            )
            if not files:
                raise ValueError(f"{item}: no images or videos found")
            found += [(str(p.relative_to(item.parent)), p) for p in files]
        else:
            found.append((item.name, item))
    repeated = [name for name, count in Counter(name for name, _ in found).items() if count > 1]
    if repeated:
        raise ValueError(f"{repeated[0]}: given twice (item names must be unique)")
    return found


def centre_crop(rgb: np.ndarray, size: tuple[int, int] | None, even: bool) -> tuple:
    """(pixels, [x, y, w, h]): the centred `size` window (the whole picture when
    smaller), trimmed to even sides when the codec needs them."""
    height, width = rgb.shape[:2]
    w, h = (width, height) if size is None else (min(size[0], width), min(size[1], height))
    if even:
        w, h = w // 2 * 2, h // 2 * 2
    x, y = (width - w) // 2, (height - h) // 2
    return rgb[y : y + h, x : x + w], [x, y, w, h]


def load_items(
    found: list[tuple[str, Path]], frames: int, crop: tuple[int, int] | None, even: bool
) -> dict[str, dict]:
    """{item name: {"rgb", "source", "frame", "crop"}}: each image, and `frames` frames
    spread evenly through each video (media.video.sample_frames)."""
    items: dict[str, dict] = {}
    for name, path in found:
        if video.is_video(path):
            pictures = video.sample_frames(path, frames)
            named = [(f"{name}#{k}", k, rgb) for k, rgb in enumerate(pictures)]
        else:
            named = [(name, None, image_io.load_image(path).rgb)]
        for item, frame, rgb in named:
            pixels, box = centre_crop(rgb, crop, even)
            items[item] = {"rgb": pixels, "source": str(path), "frame": frame, "crop": box}
    return items


def save_png(
    folder: Path, key: str, item: str, quality: int | None, version: str, rgb: np.ndarray
) -> str:
    """Write one picture under its opaque name (keyed by `key`); returns the name."""
    name = design.image_name(key, item, quality, version, np.ascontiguousarray(rgb).tobytes())
    Image.fromarray(rgb).save(folder / name, "PNG")
    return name


def settle(staging: Path, images: Path) -> None:
    """Move the pictures from `staging` into `images` by copying them in the order of
    their names, then give all one modification time: creation order, inode numbers
    and file times then follow the opaque names, not the order of the versions."""
    images.mkdir()
    names = sorted(path.name for path in staging.iterdir())
    for name in names:
        shutil.copyfile(staging / name, images / name)
    stamp = int(time.time())
    for name in names:
        os.utime(images / name, (stamp, stamp))
    shutil.rmtree(staging)


def build(
    folder: Path,
    items: dict[str, dict],
    evaluators: dict[str, protocol.Evaluator],
    codec: str,
    qualities: list[int],
    seed: int,
) -> dict:
    """Write every picture into `folder`/images and return the manifest."""
    images = folder / ".staging"
    images.mkdir(parents=True)
    # Not the seed (which study.json records and is often 0): a name must not be
    # recomputable from a picture's pixels and a guess at its version.
    key = secrets.token_hex(16)
    entries = {}
    bar = tqdm.tqdm(items.items(), unit="item", disable=not sys.stderr.isatty(), leave=False)
    for item, info in bar:
        original = info["rgb"]
        pictures = {design.ORIGINAL: save_png(images, key, item, None, design.ORIGINAL, original)}
        for quality in qualities:
            compressed, _ = protocol.compress(original, codec, quality)
            versions = {design.COMPRESSED: compressed}
            for method, evaluator in evaluators.items():
                versions[method] = evaluator.restore(compressed, quality)
            pictures[str(quality)] = {
                version: save_png(images, key, item, quality, version, rgb)
                for version, rgb in versions.items()
            }
        entries[item] = {key: info[key] for key in ("source", "frame", "crop")}
        entries[item]["images"] = pictures
    settle(images, folder / manifest.IMAGES)
    trials = design.build_trials(list(items), qualities, list(evaluators), seed)
    return {
        "format": manifest.FORMAT,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "seed": seed,
        "codec": codec,
        "qualities": qualities,
        "methods": {name: str(e.checkpoint) for name, e in evaluators.items()},
        "pairs": [list(pair) for pair in design.comparisons(list(evaluators))],
        "items": entries,
        "trials": [manifest.trial_to_json(trial) for trial in trials],
    }


def prepare(args) -> Path:
    """The `prepare` subcommand; returns the study folder. Raises ValueError (or
    FileNotFoundError) with a one-line message naming the culprit."""
    out = Path(args.out)
    if out.exists():
        raise ValueError(f"{out}: already exists (a study is never overwritten; pick a new folder)")
    check_qualities(args.codec, args.quality)
    methods = parse_methods(args.methods, args.checkpoint)
    crop = parse_crop(args.crop)
    if args.frames < 1:
        raise ValueError(f"--frames must be at least 1, got {args.frames}")
    if getattr(args, "participants", 0) < 0:
        raise ValueError(f"--participants must be 0 or more, got {args.participants}")
    found = find_inputs(args.inputs)
    # Decoded before any model is loaded: a bad input is reported at once.
    items = load_items(found, args.frames, crop, even=args.codec != "jpeg")
    # Conditioned generators get the JPEG QF directly; other codecs need the predictor.
    predictor = str(loader.DEFAULT_PREDICTOR) if args.codec != "jpeg" else None
    settings = protocol.Settings(qualities=args.quality, codec=args.codec, dtype=args.dtype)
    evaluators = {}
    for name, checkpoint in methods.items():
        evaluators[name] = protocol.Evaluator(checkpoint, predictor, settings)
    # Built in a race-free temporary folder beside OUT, renamed when complete.
    with files.atomic_folder(out) as partial:
        built = build(partial, items, evaluators, args.codec, args.quality, args.seed)
        built["frames_per_video"] = args.frames
        built["command"] = ["python", "-m", "jaxrestore.study", *args.argv]
        manifest.write(partial, built)
    return out
