"""Assemble the default training photo set from packages that install offline.

    python -m jaxrestore.data.assemble [--out DIR]

The source photos (`photo_packages`, see shared DATA.md): version 2, Debian
landscape and background photos, sporco's and scikit-image's test photos, held
out by a fixed function of the image name (about one in ten); version 3 adds,
TRAIN ONLY, curated photos of Debian wallpaper and sample packages and
matplotlib's, plus clean frames (every `FRAME_STRIDE`-th, downscaled 2×) of the
training videos (box and cup are camera footage; Megamind is CG animation). A new
photo whose perceptual hash matches an earlier one (a held-out photo above all)
is dropped. Version 4 leaves out the images of evaluation sets that the sources
ship (`photo_packages.EVALUATION_IMAGES`) and any photo or frame whose perceptual
hash matches an image of an evaluation set in the cache (~/.cache/jaxrestore/
live1, classic5 and the detection set); the manifest lists them under
`evaluation_excluded`. Every image is scaled down by an integer factor (`scale_factor`): at
least 2× for JPEG sources, and enough that the longer side is ≤ `MAX_SIDE`.

Every image gets a manifest entry: source package and version, path inside the
package, licence, sha256 of the source file and of the written PNG, size, scale,
split and, for video frames, the video and frame index. A second run with an
up-to-date manifest does nothing.

Video clips (for the inter-frame H.264 / MPEG-2 degradations) come from the
sample videos of Debian `opencv-doc`, decoded as every video here is decoded
(`media.video`) and downscaled 2× to wash out their own compression:
`Megamind.avi`, `box.mp4` and `cup.mp4` are cut into 8-frame training clips
(videos/train/NAME.npy, [clips, 8, H, W, 3]); `vtest.avi` (a street scene) is
held out whole — its first 60 frames, for evaluating video restoration
(videos/heldout/vtest.npy).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from jaxrestore.data import debian, photo_packages, sources
from jaxrestore.data.photo_packages import Candidate
from jaxrestore.media import video

ASSEMBLY_VERSION = 4
MAX_SIDE = 1024  # large wallpapers are scaled down until their longer side fits
FRAME_STRIDE = 10  # every this many frames of a training video becomes a training photo
DUPLICATE_BITS = 10  # difference hashes this close (of 128 bits) are the same photo
CLIP_FRAMES = 8
CLIP_STRIDE = 24  # a training clip starts every this many frames
HELDOUT_VIDEO_FRAMES = 60
OPENCV_VIDEO_DIR = "usr/share/doc/opencv-doc"
# (file inside the package, name, split)
VIDEOS = (
    ("examples/data/Megamind.avi", "megamind", "train"),
    ("opencv4/html/box.mp4.gz", "box", "train"),
    ("opencv4/html/cup.mp4.gz", "cup", "train"),
    ("examples/data/vtest.avi", "vtest", "heldout"),
)
# Folders beside the photo set (in the cache) that hold evaluation images: a source photo
# or frame that matches one of them is left out. The standard benchmarks, and this
# project's object-rich detection set (`detection_set`, built to avoid the training
# photos; this keeps a later training source from meeting one of its images).
EVALUATION_SETS = ("live1", "classic5")
OWN_EVALUATION_SETS = ("detection",)
DEFAULT_CACHE = Path.home() / ".cache" / "jaxrestore"  # where the benchmark looks
MIN_SIDE = 160  # smaller images cannot give a 128² patch with room to move
ORIGIN = ("package", "version", "package_path", "licence", "source_sha256")  # of every entry
HELD_OUT_RULE = (
    "version-2 sources (endless-sky, scratch, sporco, skimage): sha256(name) mod 10 == 0; "
    "sources added in version 3 and video frames: train only, and dropped when they "
    f"duplicate an earlier photo (difference hash within {DUPLICATE_BITS} bits); from "
    "version 4, no image of an evaluation set (photo_packages.EVALUATION_IMAGES, or "
    f"within {DUPLICATE_BITS} bits of an image in the cache's "
    f"{', '.join(EVALUATION_SETS + OWN_EVALUATION_SETS)})"
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_colour_photo(image: np.ndarray) -> bool:
    """Reject near-gray images: their chroma carries no signal to learn from."""
    rgb = image.astype(np.float32)
    chroma = np.abs(rgb - rgb.mean(axis=-1, keepdims=True)).mean()
    return chroma > 2.0


def scale_factor(width: int, height: int, lossy: bool) -> int:
    """Integer downscale factor: at least 2 for a JPEG source (to wash out its own
    compression), and enough that the longer side is at most MAX_SIDE."""
    return max(2 if lossy else 1, -(-max(width, height) // MAX_SIDE))


def difference_hash(image: Image.Image) -> int:
    """128-bit perceptual hash: signs of the horizontal and vertical gradients of a 9×9
    gray thumbnail. Robust to rescaling, re-encoding and small colour changes; the
    vertical half tells apart the many landscapes whose horizontal gradients are ~0
    (distinct photos of the set differ in ≥ 17 bits, rescaled copies in a few)."""
    small = np.asarray(image.convert("L").resize((9, 9), Image.Resampling.BOX), dtype=np.int16)
    across = small[:8, 1:] > small[:8, :-1]
    down = small[1:, :8] > small[:-1, :8]
    bits = np.concatenate([across.ravel(), down.ravel()])
    return int("".join("1" if bit else "0" for bit in bits), 2)


def hash_distance(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def same_photo(code: int, known):
    """The label of the first (difference hash, label) pair of `known` within
    DUPLICATE_BITS of `code` (the same photo, rescaled or re-encoded), or None."""
    return next(
        (what for other, what in known if hash_distance(code, other) <= DUPLICATE_BITS), None
    )


def split_of(candidate: Candidate) -> str:
    """Sources added in version 3 are train only; the version-2 ones keep their split."""
    if candidate.train_only:
        return "train"
    return "heldout" if sources.is_heldout(candidate.name) else "train"


def _prepare(candidate: Candidate, out_dir: Path) -> dict | None:
    """A source photo scaled and written as a PNG: its manifest entry, or None when it is
    too small or near-gray."""
    with Image.open(candidate.path) as source:
        image = source.convert("RGB")
    factor = scale_factor(image.width, image.height, candidate.downscale)
    if factor > 1:
        size = (image.width // factor, image.height // factor)
        image = image.resize(size, Image.Resampling.LANCZOS)
    pixels = np.asarray(image)
    if min(image.size) < MIN_SIDE or not is_colour_photo(pixels):
        return None
    origin = {
        "package": candidate.package,
        "version": candidate.version,
        "package_path": candidate.package_path,
        "licence": candidate.licence,
        "source_sha256": _sha256(candidate.path),
    }
    split = split_of(candidate)
    return _save_photo(image, candidate.name, out_dir, origin, factor, candidate.added_in, split)


def _save_photo(
    image: Image.Image,
    name: str,
    out_dir: Path,
    origin: dict,
    scale: int,
    added_in: int,
    split: str,
) -> dict:
    """Write `image` as images/NAME.png and return its manifest entry; `origin` holds
    the ORIGIN fields of its source."""
    file = f"images/{name}.png"
    image.save(out_dir / file, optimize=False, compress_level=6)
    return {
        "file": file,
        **origin,
        "sha256": _sha256(out_dir / file),
        "width": image.width,
        "height": image.height,
        "downscaled": scale > 1,
        "scale": scale,
        "added_in": added_in,
        "dhash": f"{difference_hash(image):032x}",
        "split": split,
    }


def drop_duplicates(entries: list[dict]) -> tuple[list[dict], list[dict]]:
    """Keep every version-2 entry; drop a later entry whose difference hash is within
    DUPLICATE_BITS of an earlier kept photo (video frames: of a held-out photo only, as
    neighbouring frames are alike by design). Returns (kept, dropped)."""
    kept: list[dict] = []
    dropped: list[dict] = []
    for entry in entries:
        code = int(entry["dhash"], 16)
        if entry["added_in"] >= 3:
            frame = "video_frame" in entry
            match = next(
                (
                    other["file"]
                    for other in kept
                    if (other["split"] == "heldout" or not (frame or "video_frame" in other))
                    and hash_distance(code, int(other["dhash"], 16)) <= DUPLICATE_BITS
                ),
                None,
            )
            if match is not None:
                dropped.append({"file": entry["file"], "duplicate_of": match})
                continue
        kept.append(entry)
    return kept, dropped


def exclude_listed(found: list[Candidate]) -> tuple[list[Candidate], list[dict]]:
    """(the candidates that are not evaluation images, a record of those that are, by
    `photo_packages.EVALUATION_IMAGES`)."""
    listed = photo_packages.EVALUATION_IMAGES
    kept = [c for c in found if c.package_path not in listed]
    excluded = [
        {
            "name": c.name,
            "package": c.package,
            "package_path": c.package_path,
            "evaluation_image": listed[c.package_path],
        }
        for c in found
        if c.package_path in listed
    ]
    return kept, excluded


def evaluation_hashes(folders) -> list[tuple[int, Path]]:
    """(difference hash, path) of every image file below each existing folder of
    `folders`; a file with an image suffix that is not one is a RuntimeError naming it."""
    found = []
    for folder in folders:
        if not Path(folder).is_dir():
            continue
        for path in sorted(Path(folder).rglob("*")):
            suffix = path.suffix.lower()
            if path.is_file() and suffix in (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff"):
                try:
                    with Image.open(path) as image:
                        found.append((difference_hash(image), path))
                except (OSError, ValueError) as error:
                    raise RuntimeError(
                        f"{path}: not a readable image ({error}); the assembler checks "
                        "every image of the evaluation sets in the cache"
                    ) from None
    return found


def drop_evaluation_lookalikes(
    entries: list[dict], evaluation: list[tuple[int, Path]]
) -> tuple[list[dict], list[dict]]:
    """(the entries whose difference hash is farther than DUPLICATE_BITS from every
    evaluation image's, a record of the others and what each matches)."""
    kept, excluded = [], []
    for entry in entries:
        match = same_photo(int(entry["dhash"], 16), evaluation)
        if match is None:
            kept.append(entry)
            continue
        excluded.append(
            {
                "name": Path(entry["file"]).stem,
                "package": entry["package"],
                "package_path": entry["package_path"],
                "evaluation_image": f"{match.parent.name}/{match.name} (difference hash)",
            }
        )
    return kept, excluded


def _decode_frames(path: Path, limit: int | None) -> np.ndarray:
    """Frames of a video file, downscaled 2× (Lanczos) and cropped to even sizes."""
    frames = []
    for rgb in video.iter_frames(path, limit):
        image = Image.fromarray(rgb)
        image = image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)
        frames.append(np.asarray(image))
    stack = np.stack(frames)
    return stack[:, : stack.shape[1] // 2 * 2, : stack.shape[2] // 2 * 2]


def _frame_entries(frames: np.ndarray, name: str, clip: dict, staging: Path) -> list[dict]:
    """Every FRAME_STRIDE-th frame of a training video (`clip`: its clip entry) as a
    training photo."""
    origin = {key: clip[key] for key in ORIGIN}
    entries = []
    for index in range(0, len(frames), FRAME_STRIDE):
        image = Image.fromarray(frames[index])
        entry = _save_photo(image, f"frame-{name}-{index:04d}", staging, origin, 2, 3, "train")
        entries.append({**entry, "video_frame": {"video": name, "index": index}})
    return entries


def _video_entries(cache: Path, staging: Path) -> tuple[list[dict], list[dict]]:
    """(clip entries, frame entries): the clips of every video, and training photos made
    of the frames of the training videos."""
    deb = debian.download("opencv-doc", cache)
    root = cache / "opencv-doc.tree"
    version = debian.extract(deb, root)
    stanzas = debian.parse_dep5((root / OPENCV_VIDEO_DIR / "copyright").read_text())
    entries, frame_entries = [], []
    for package_path, name, split in VIDEOS:
        source = root / OPENCV_VIDEO_DIR / package_path
        path = source
        if source.suffix == ".gz":
            path = cache / source.stem
            if not path.exists():
                path.write_bytes(gzip.decompress(source.read_bytes()))
        frames = _decode_frames(path, None if split == "train" else HELDOUT_VIDEO_FRAMES)
        if split == "train":
            starts = range(0, len(frames) - CLIP_FRAMES + 1, CLIP_STRIDE)
            clips = np.stack([frames[i : i + CLIP_FRAMES] for i in starts])
        else:
            clips = frames[None]
        file = f"videos/{split}/{name}.npy"
        (staging / file).parent.mkdir(parents=True, exist_ok=True)
        np.save(staging / file, clips)
        entries.append(
            {
                "file": file,
                "package": "debian:opencv-doc",
                "version": version,
                "package_path": f"{OPENCV_VIDEO_DIR}/{package_path}",
                "licence": debian.licence_for(f"samples/data/{Path(package_path).name}", stanzas),
                "source_sha256": _sha256(source),
                "sha256": _sha256(staging / file),
                "clips": int(clips.shape[0]),
                "frames": int(clips.shape[1]),
                "width": int(clips.shape[3]),
                "height": int(clips.shape[2]),
                "downscaled": True,
                "split": split,
            }
        )
        if split == "train":
            frame_entries += _frame_entries(frames, name, entries[-1], staging)
    return entries, frame_entries


def is_up_to_date(out_dir: Path, version: int = ASSEMBLY_VERSION) -> bool:
    """A manifest of `version` in `out_dir` whose every image (and video) file exists
    (also used for the detection set, with its own version)."""
    manifest = out_dir / "manifest.json"
    if not manifest.exists():
        return False
    data = json.loads(manifest.read_text())
    return data.get("version") == version and all(
        (out_dir / e["file"]).exists() for e in data["images"] + data.get("videos", [])
    )


def assemble(out_dir: Path, cache_dir: Path | None = None) -> dict:
    """Build the photo set in `out_dir` (atomically) and return its manifest."""
    if is_up_to_date(out_dir):
        return json.loads((out_dir / "manifest.json").read_text())
    cache = cache_dir or out_dir.parent / "downloads"
    cache.mkdir(parents=True, exist_ok=True)
    found, listed = exclude_listed(photo_packages.candidates(cache))
    roots = {out_dir.parent, sources.default_data_dir().parent, DEFAULT_CACHE}
    names = EVALUATION_SETS + OWN_EVALUATION_SETS
    folders = {root / name for root in roots for name in names}
    evaluation = evaluation_hashes(sorted(folders))  # first: an unreadable one stops here
    staging = Path(tempfile.mkdtemp(prefix=".assemble-", dir=out_dir.parent))
    try:
        return _build(out_dir, cache, staging, found, listed, folders, evaluation)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when it became out_dir


def _build(out_dir, cache, staging, found, listed, folders, evaluation) -> dict:
    """`assemble`'s work in `staging`, renamed to `out_dir` at the end."""
    (staging / "images").mkdir()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        prepared = [e for e in pool.map(lambda c: _prepare(c, staging), found) if e]
    videos, frames = _video_entries(cache, staging)
    clean, lookalikes = drop_evaluation_lookalikes(prepared + frames, evaluation)
    for entry in lookalikes:
        (staging / "images" / f"{entry['name']}.png").unlink()
    entries, duplicates = drop_duplicates(clean)
    for entry in duplicates:
        (staging / entry["file"]).unlink()
    photos = [e for e in entries if "video_frame" not in e]
    manifest = {
        "version": ASSEMBLY_VERSION,
        "held_out_rule": HELD_OUT_RULE,
        "counts": {
            "total": len(entries),
            "train": sum(e["split"] == "train" for e in entries),
            "heldout": sum(e["split"] == "heldout" for e in entries),
            "photos": len(photos),
            "photos_train": sum(e["split"] == "train" for e in photos),
            "frames": len(entries) - len(photos),
            "rejected": len(found) - len(prepared),
            "duplicates": len(duplicates),
            "evaluation_excluded": len(listed) + len(lookalikes),
        },
        "images": entries,
        "duplicates": duplicates,
        "evaluation_excluded": listed + lookalikes,
        "evaluation_sets_checked": [str(d) for d in sorted(folders) if d.is_dir()],
        "videos": videos,
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)
    return manifest


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=sources.default_data_dir())
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fresh = not is_up_to_date(args.out)
    try:
        manifest = assemble(args.out)
    except (RuntimeError, OSError, subprocess.CalledProcessError, video.VideoError) as error:
        sys.exit(f"jaxrestore.data.assemble: {error}")
    counts = manifest["counts"]
    state = "assembled" if fresh else "up to date"
    clips = sum(v["clips"] for v in manifest["videos"] if v["split"] == "train")
    frames = counts.get("frames", 0)
    print(
        f"photo set {state}: {counts['total'] - frames} photos ({counts['heldout']} held out) "
        f"+ {frames} training video frames, and {clips} training video clips in {args.out}"
    )


if __name__ == "__main__":
    run()
