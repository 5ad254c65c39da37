"""Build the object-rich detection evaluation set from packages that install offline.

    python -m jaxrestore.data.detection_set [--out DIR] [--photos DIR]

The task-based evaluation (`jaxrestore.evaluation.tasks`) scores a restoration by
how much of what a COCO detector finds on the original it still finds. The
held-out photos are landscapes (6 objects), so this set gathers photographs with
objects in them, never trained on:

- the photographs of the GCompris activities `erase`, `explore_farm_animals`,
  `explore_world_animals`, `explore_monuments` and `explore_world_music` (Debian
  `gcompris-qt-data`; WebP files inside Qt resource bundles, read with
  `qt_resources`), each licensed per file by the README beside it (public domain,
  CC0, CC-BY, CC-BY-SA; anything else, or a file the README does not name, is
  left out);
- a street and a room photo of Debian `opencv-doc` (`OPENCV_PHOTOS`, its
  Apache-2.0 AND BSD-3-Clause licence);
- frames of the held-out street video `vtest.avi` (Debian `opencv-doc`), every
  `VTEST_STRIDE`-th from `VTEST_FIRST` (after the 60 frames the photo set holds
  out), downscaled 2× as the photo set's clip is.

Every photo is scaled down by a whole factor: 2× for these lossy sources (to wash
out their own compression, as the photo set does) and enough that the longer side
is at most `MAX_SIDE`. An image is kept when it is a colour photo, at least
`MIN_SIDE` on its shorter side, and the detector (SSD MobileNet v2 COCO, the
`eval` extra) finds at least one object on it scoring at least the evaluation's
reference score. It is refused when it could be a training image: its source file
or PNG has the sha256 of a training entry of the photo set's manifest, or its
difference hash is within `assemble.DUPLICATE_BITS` of a training image's (or of
an image of a standard evaluation set found in the cache: LIVE1, Classic5).

manifest.json records for every image its package and version, the path inside
the package, licence, author and origin, sha256 of the source and of the PNG,
size, scale, difference hash and the objects the detector finds on it per COCO
class; and what was left out and why. A second run with an up-to-date manifest
does nothing.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image

from jaxrestore.data import assemble, debian, qt_resources, sources

SET_VERSION = 1
MAX_SIDE = 640
MIN_SIDE = assemble.MIN_SIDE
LOSSY_FACTOR = 2
GCOMPRIS = "gcompris-qt-data"
GCOMPRIS_RCC = "usr/share/gcompris-qt/rcc"
# (bundle, folder inside it whose photos are candidates)
GCOMPRIS_FOLDERS = (
    ("erase", "gcompris/src/activities/erase/resource"),
    ("explore_farm_animals", "gcompris/src/activities/explore_farm_animals/resource/animals"),
    ("explore_world_animals", "gcompris/src/activities/explore_world_animals/resource/animals"),
    ("explore_monuments", "gcompris/src/activities/explore_monuments/resource"),
    ("explore_world_music", "gcompris/src/activities/explore_world_music/resource/music"),
)
PHOTO_SUFFIXES = (".webp", ".jpg", ".jpeg", ".png")
# A street and a room photo among opencv-doc's examples; the other example and
# tutorial images with objects are screenshots, composites, carry drawn detections,
# are frames of vtest (Background_Subtraction_Tutorial_frame) or are in the photo set.
OPENCV_PHOTOS = ("examples/text/scenetext01.jpg", "examples/alphamat/input_images/plant.jpg")
# debian/copyright of opencv-doc 4.6.0+dfsg-12, stanza `Files: *` (parse_dep5 keeps
# only a licence's first word)
OPENCV_LICENCE = "Apache-2.0 AND BSD-3-Clause"
VTEST = "examples/data/vtest.avi"
VTEST_FIRST = 120  # the photo set holds out frames 0..59 of vtest as a clip
VTEST_STRIDE = 120
# Licences accepted (lower case, spaces and dashes removed, as prefixes): no NC/ND.
ACCEPTED = ("publicdomain", "cc01.0", "cc0", "ccby", "gpl", "lgpl", "bsd", "mit", "expat")
REJECTED_PARTS = ("nc", "nd", "gfdl")
EVALUATION_SETS = assemble.EVALUATION_SETS  # folders of the cache checked for duplicates


@dataclass(frozen=True)
class Source:
    """One candidate image: its bytes (or pixels) and where they come from."""

    name: str  # output stem, unique
    package: str
    version: str
    package_path: str
    licence: str
    author: str
    origin: str  # where the package says the photo comes from ('' = itself)
    source_sha256: str
    load: Callable[[], Image.Image]
    lossy: bool = True
    video_frame: dict | None = None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def licence_accepted(licence: str) -> bool:
    """Public domain, CC0, CC-BY(-SA), GPL/LGPL, BSD, MIT; never NC, ND or GFDL."""
    key = re.sub(r"[\s_-]+", "", licence.lower())
    parts = re.split(r"[\s_-]+", licence.lower())
    if any(part in REJECTED_PARTS or part.startswith("gfdl") for part in parts):
        return False
    return key.startswith(ACCEPTED)


def parse_credits(text: str) -> dict[str, dict[str, str]]:
    """The per-file credits of a GCompris resource README: blocks of `Copyright:`,
    `License:`, `Source:` and `Files:` lines (the files on the `Files:` line or on
    the lines after it), separated by blank lines. Maps each file (relative to the
    README) to {"licence", "author", "origin"}."""
    credits: dict[str, dict[str, str]] = {}
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        files: list[str] = []
        in_files = False
        for line in block.splitlines():
            match = re.match(r"^(Copyright|License|Licence|Source|Files|Comments?):\s*(.*)$", line)
            if match:
                key, value = match.group(1).lower(), match.group(2).strip()
                in_files = key == "files"
                if in_files:
                    files += value.split()
                else:
                    fields[key.replace("licence", "license")] = value
            elif in_files and line.strip():
                files += line.split()
        entry = {
            "licence": fields.get("license", ""),
            "author": fields.get("copyright", ""),
            "origin": fields.get("source", ""),
        }
        for file in files:
            credits[file] = entry
    return credits


def _image_loader(data: bytes) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        with Image.open(BytesIO(data)) as image:
            return image.convert("RGB")

    return load


def gcompris_sources(cache: Path) -> tuple[list[Source], list[dict]]:
    """(candidates, left out for their licence): the photos of `GCOMPRIS_FOLDERS`."""
    deb = debian.download(GCOMPRIS, cache)
    members = [f"{GCOMPRIS_RCC}/{bundle}.rcc" for bundle, _ in GCOMPRIS_FOLDERS]
    dest = cache / f"{GCOMPRIS}.detection"
    version = debian.extract_members(deb, dest, members)
    found, refused = [], []
    for (bundle, folder), member in zip(GCOMPRIS_FOLDERS, members, strict=True):
        files = qt_resources.read(dest / member)
        credits = parse_credits(files.get(f"{folder}/README", b"").decode("utf-8", "replace"))
        for path in sorted(files):
            if not path.startswith(folder + "/") or not path.lower().endswith(PHOTO_SUFFIXES):
                continue
            relative = path.removeprefix(folder + "/")
            credit = credits.get(relative)
            where = f"{member}:{path}"
            if credit is None or not licence_accepted(credit["licence"]):
                licence = credit["licence"] if credit else "not named in the README"
                refused.append({"package_path": where, "reason": f"licence: {licence}"})
                continue
            stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(relative).with_suffix("").as_posix())
            found.append(
                Source(
                    name=f"gcompris-{bundle}-{stem}",
                    package=f"debian:{GCOMPRIS}",
                    version=version,
                    package_path=where,
                    licence=credit["licence"],
                    author=credit["author"],
                    origin=credit["origin"],
                    source_sha256=_sha256(files[path]),
                    load=_image_loader(files[path]),
                    lossy=not path.lower().endswith(".png"),
                )
            )
    return found, refused


def opencv_sources(cache: Path) -> list[Source]:
    """OPENCV_PHOTOS and the frames VTEST_FIRST, VTEST_FIRST + VTEST_STRIDE, ... of the
    held-out vtest video."""
    from jaxrestore.media import video

    deb = debian.download("opencv-doc", cache)
    root = cache / "opencv-doc.tree"
    version = debian.extract(deb, root)
    stanzas = debian.parse_dep5((root / assemble.OPENCV_VIDEO_DIR / "copyright").read_text())
    made_by = functools.partial(Source, package="debian:opencv-doc", version=version, origin="")
    found = []
    for file in OPENCV_PHOTOS:
        data = (root / assemble.OPENCV_VIDEO_DIR / file).read_bytes()
        found.append(
            made_by(
                name=f"opencv-{Path(file).stem}",
                package_path=f"{assemble.OPENCV_VIDEO_DIR}/{file}",
                licence=OPENCV_LICENCE,
                author="OpenCV (debian/copyright, Files: *)",
                source_sha256=_sha256(data),
                load=_image_loader(data),
            )
        )
    path = root / assemble.OPENCV_VIDEO_DIR / VTEST
    frame_of = functools.partial(
        made_by,
        package_path=f"{assemble.OPENCV_VIDEO_DIR}/{VTEST}",
        licence=debian.licence_for(f"samples/data/{Path(VTEST).name}", stanzas),
        author="OpenCV sample data",
        source_sha256=_sha256(path.read_bytes()),
    )
    for index, rgb in enumerate(video.iter_frames(path, None)):
        if index >= VTEST_FIRST and (index - VTEST_FIRST) % VTEST_STRIDE == 0:
            found.append(
                frame_of(
                    name=f"vtest-{index:04d}",
                    load=lambda rgb=rgb: Image.fromarray(rgb),
                    video_frame={"video": "vtest", "index": index},
                )
            )
    return found


def scale_factor(width: int, height: int, lossy: bool) -> int:
    """Whole downscale factor: LOSSY_FACTOR for a lossy source, and enough that the
    longer side is at most MAX_SIDE."""
    return max(LOSSY_FACTOR if lossy else 1, -(-max(width, height) // MAX_SIDE))


@dataclass
class Forbidden:
    """What a detection image must not be: the training split of the photo set
    (source and PNG sha256, difference hashes) and the evaluation sets' images."""

    sha256: set[str]
    hashes: list[tuple[int, str]]  # (difference hash, what it is)

    def clash(self, source_sha256: str, png_sha256: str, code: int) -> str | None:
        """Why an image with these hashes is refused, or None."""
        for digest in (source_sha256, png_sha256):
            if digest in self.sha256:
                return f"sha256 {digest[:12]} is a training file"
        what = assemble.same_photo(code, self.hashes)
        return None if what is None else f"perceptual duplicate of {what}"


def forbidden_from(manifest: dict, evaluation_dirs: Iterable[Path] = ()) -> Forbidden:
    """The training entries of a photo-set manifest (images and videos; a training
    video's sha256 refuses its frames), and every image below `evaluation_dirs`."""
    train = [e for e in manifest["images"] + manifest.get("videos", []) if e["split"] == "train"]
    digests = {e[key] for e in train for key in ("sha256", "source_sha256") if key in e}
    hashes = [(int(e["dhash"], 16), f"training image {e['file']}") for e in train if "dhash" in e]
    for code, path in assemble.evaluation_hashes(evaluation_dirs):
        hashes.append((code, f"evaluation image {path}"))
    return Forbidden(digests, hashes)


def count_objects(detections: Iterable, threshold: float) -> dict[str, int]:
    """Objects per COCO class among detections scoring >= threshold (sorted by name)."""
    counts = Counter(d.name for d in detections if d.score >= threshold)
    return dict(sorted(counts.items()))


def select(
    candidates: Iterable[Source],
    forbidden: Forbidden,
    detect: Callable[[np.ndarray], dict[str, int]],
    out_dir: Path,
) -> tuple[list[dict], list[dict]]:
    """Scale, check and write each candidate as images/NAME.png. Returns (entries,
    left out with the reason). `detect` gives the objects per class on an image."""
    kept: list[dict] = []
    left: list[dict] = []
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    for source in candidates:
        image = source.load()
        factor = scale_factor(image.width, image.height, source.lossy)
        if factor > 1:
            size = (image.width // factor, image.height // factor)
            image = image.resize(size, Image.Resampling.LANCZOS)
        pixels = np.asarray(image)
        reason = None
        if min(image.size) < MIN_SIDE:
            reason = f"smaller than {MIN_SIDE} px"
        elif not assemble.is_colour_photo(pixels):
            reason = "near-gray"
        code = assemble.difference_hash(image)
        file = f"images/{source.name}.png"
        png = BytesIO()
        image.save(png, format="PNG", optimize=False, compress_level=6)
        digest = _sha256(png.getvalue())
        reason = reason or forbidden.clash(source.source_sha256, digest, code)
        if reason is None:
            for other in kept:  # one video's frames share a background: allowed
                same_video = source.video_frame and other.get("video_frame")
                close = assemble.hash_distance(code, int(other["dhash"], 16))
                if not same_video and close <= assemble.DUPLICATE_BITS:
                    reason = f"perceptual duplicate of {other['file']}"
                    break
        objects: dict[str, int] = {}
        if reason is None:
            objects = detect(pixels)
            if not objects:
                reason = "no object found by the detector"
        if reason is not None:
            left.append(
                {"name": source.name, "package_path": source.package_path, "reason": reason}
            )
            continue
        (out_dir / file).write_bytes(png.getvalue())
        entry = {
            "file": file,
            "package": source.package,
            "version": source.version,
            "package_path": source.package_path,
            "licence": source.licence,
            "author": source.author,
            "origin": source.origin,
            "source_sha256": source.source_sha256,
            "sha256": digest,
            "width": image.width,
            "height": image.height,
            "scale": factor,
            "dhash": f"{code:032x}",
            "objects": objects,
        }
        if source.video_frame:
            entry["video_frame"] = source.video_frame
        kept.append(entry)
    return kept, left


def summary(entries: list[dict]) -> dict:
    per_class: Counter = Counter()
    for entry in entries:
        per_class.update(entry["objects"])
    return {
        "images": len(entries),
        "objects": sum(per_class.values()),
        "classes": len(per_class),
        "per_class": dict(per_class.most_common()),
    }


def is_up_to_date(out_dir: Path) -> bool:
    """A manifest of this set's version whose every image exists."""
    return assemble.is_up_to_date(out_dir, SET_VERSION)


def _detector() -> tuple[Callable[[np.ndarray], dict[str, int]], dict]:
    from jaxrestore.evaluation.task_models import TaskModels

    models = TaskModels(detector=True, classifier=False, faces=False)
    threshold = models.score_threshold

    def detect(pixels: np.ndarray) -> dict[str, int]:
        return count_objects(models.detect(pixels), threshold)

    return detect, {**models.info()["models"]["detector"], "packages": models.info()["packages"]}


def build(out_dir: Path, photos_dir: Path, cache_dir: Path | None = None) -> dict:
    """Build the set in `out_dir` (atomically) and return its manifest."""
    if is_up_to_date(out_dir):
        return json.loads((out_dir / "manifest.json").read_text())
    photo_manifest = photos_dir / "manifest.json"
    if not photo_manifest.exists():
        raise RuntimeError(
            f"{photo_manifest}: no photo set to check against; build it first "
            "(python -m jaxrestore.data.assemble)"
        )
    training = json.loads(photo_manifest.read_text())
    cache = cache_dir or out_dir.parent / "downloads"
    cache.mkdir(parents=True, exist_ok=True)
    evaluation_dirs = [d for name in EVALUATION_SETS if (d := photos_dir.parent / name).is_dir()]
    forbidden = forbidden_from(training, evaluation_dirs)
    detect, detector = _detector()
    photos, refused = gcompris_sources(cache)
    staging = Path(tempfile.mkdtemp(prefix=".detection-", dir=out_dir.parent))
    entries, left = select(photos + opencv_sources(cache), forbidden, detect, staging)
    manifest = {
        "version": SET_VERSION,
        "rule": (
            "GCompris activity photos licensed by their README (public domain, CC0, "
            f"CC-BY, CC-BY-SA) and vtest.avi frames {VTEST_FIRST}+{VTEST_STRIDE}k; scaled "
            f"down {LOSSY_FACTOR}x (longer side <= {MAX_SIDE}); kept when a colour photo "
            "with >= 1 detector object and no sha256 or difference hash "
            f"(<= {assemble.DUPLICATE_BITS} bits) of a training or evaluation-set image"
        ),
        "detector": detector,
        "checked_against": {
            "photo_set": str(photo_manifest),
            "photo_set_version": training.get("version"),
            "training_images": sum(e["split"] == "train" for e in training["images"]),
            "evaluation_sets": [str(d) for d in evaluation_dirs],
        },
        "counts": summary(entries),
        "images": entries,
        "left_out": refused + left,
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)
    return manifest


def default_dir() -> Path:
    return sources.default_data_dir().parent / "detection"


class BuildError(RuntimeError):
    """The set could not be built (no photo set, package, or detector)."""


def ensure(out_dir: Path | None = None, photos_dir: Path | None = None) -> Path:
    """The folder of the set, built first when missing or out of date."""
    out_dir = out_dir or default_dir()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        build(out_dir, photos_dir or sources.default_data_dir())
    except (RuntimeError, OSError, ImportError, subprocess.CalledProcessError) as error:
        raise BuildError(f"detection set: {error}") from error
    return out_dir


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=default_dir())
    parser.add_argument("--photos", type=Path, default=sources.default_data_dir())
    args = parser.parse_args(argv)
    fresh = not is_up_to_date(args.out)
    try:
        ensure(args.out, args.photos)
    except BuildError as error:
        sys.exit(f"jaxrestore.data.detection_set: {error}")
    manifest = json.loads((args.out / "manifest.json").read_text())
    counts = manifest["counts"]
    state = "built" if fresh else "up to date"
    print(
        f"detection set {state}: {counts['images']} images, {counts['objects']} objects of "
        f"{counts['classes']} classes in {args.out} ({len(manifest['left_out'])} left out)"
    )


if __name__ == "__main__":
    run()
