"""The photo-set assembly's rules (with its sources and Debian unpacking), offline, on
small synthetic inputs (no downloads)."""

import dataclasses
import io
import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from jaxrestore.data import assemble, debian, photo_packages, sources


def _photo(seed: int, size=(320, 240)) -> Image.Image:
    """A smooth random colour image (a stand-in for a photo)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)


def _heldout_name(prefix: str) -> str:
    return next(f"{prefix}{i}" for i in range(1000) if sources.is_heldout(f"{prefix}{i}"))


@pytest.mark.parametrize(
    "width, height, lossy, factor",
    [
        (1440, 720, True, 2),  # endless-sky: 2× as in version 2
        (480, 360, True, 2),  # scratch
        (768, 512, False, 1),  # sporco PNG: kept
        (1024, 700, False, 1),
        (1025, 700, False, 2),
        (3000, 1993, False, 3),  # large PNG wallpaper
        (2560, 1600, True, 3),
        (4000, 3000, True, 4),  # phone photo
        (5120, 2880, True, 5),
        (2056, 3088, True, 4),  # portrait
    ],
)
def test_scale_factor(width, height, lossy, factor):
    assert assemble.scale_factor(width, height, lossy) == factor
    assert max(width, height) // factor <= assemble.MAX_SIDE


def test_photo_name():
    name = photo_packages.photo_name
    assert name("plasma", "Kite/contents/images/2560x1600.jpg") == "plasma-Kite"
    assert name("forensics", "pic1/IMG_1054.JPG") == "forensics-IMG_1054"
    assert name("x", "a/b c.d.png") == "x-b_c_d"


def test_curated_sources_are_unique_images():
    curated = photo_packages.PHOTO_PACKAGES + photo_packages.PHOTO_PACKAGES_V4
    names = [
        photo_packages.photo_name(source.prefix, file)
        for source in curated
        for file in source.files
    ]
    assert len(names) == len(set(names))
    files = [f for source in curated for f in source.files]
    assert len(files) == 86 + 94  # version 3's picks (less the mandrill) and version 4's
    suffixes = {f.rsplit(".", 1)[-1].lower() for f in files}
    assert suffixes <= {"jpg", "png"}
    assert {s.added_in for s in photo_packages.PHOTO_PACKAGES} == {3}
    assert {s.added_in for s in photo_packages.PHOTO_PACKAGES_V4} == {4}


def test_new_sources_are_train_only():
    name = _heldout_name("endless-sky-")
    common = dict(path=None, package="p", version="1", package_path="x", licence="l")
    old = photo_packages.Candidate(name=name, downscale=True, **common)
    new = photo_packages.Candidate(name=name, downscale=True, train_only=True, **common)
    assert assemble.split_of(old) == "heldout"  # version-2 sources keep the hash rule
    assert assemble.split_of(new) == "train"
    assert "train only" in assemble.HELD_OUT_RULE


def test_prepare_scales_jpeg_and_marks_train(tmp_path):
    source = tmp_path / "big.jpg"
    _photo(0, (2400, 1200)).save(source, quality=90)
    (tmp_path / "images").mkdir()
    candidate = photo_packages.Candidate(
        name=_heldout_name("new-"),
        path=source,
        package="debian:x",
        version="1",
        package_path="usr/share/x/big.jpg",
        licence="CC0-1.0",
        downscale=True,
        train_only=True,
        added_in=3,
    )
    entry = assemble._prepare(candidate, tmp_path)
    assert entry["scale"] == 3 and (entry["width"], entry["height"]) == (800, 400)
    assert entry["split"] == "train" and entry["added_in"] == 3
    assert Image.open(tmp_path / entry["file"]).size == (800, 400)
    gray = tmp_path / "gray.png"
    _photo(1).convert("L").save(gray)
    gray_candidate = dataclasses.replace(candidate, path=gray, name="gray")
    assert assemble._prepare(gray_candidate, tmp_path) is None  # not a colour photo


def test_difference_hash_finds_rescaled_recompressed_copies():
    image = _photo(2, (640, 480))
    buffer = io.BytesIO()
    image.resize((320, 240), Image.Resampling.LANCZOS).save(buffer, "JPEG", quality=40)
    copy = Image.open(io.BytesIO(buffer.getvalue()))
    same = assemble.hash_distance(assemble.difference_hash(image), assemble.difference_hash(copy))
    assert same <= assemble.DUPLICATE_BITS
    other = assemble.difference_hash(_photo(3, (640, 480)))
    assert assemble.hash_distance(assemble.difference_hash(image), other) > 3 * same + 10


def test_difference_hash_tells_apart_horizontally_uniform_images():
    # Landscapes whose rows are nearly constant (sky, sea, sand) all have ~0 horizontal
    # gradients: the vertical half of the hash must separate them.
    rng = np.random.default_rng(4)
    codes = []
    for _ in range(2):
        column = np.cumsum(rng.normal(0, 8, 240)) + 128
        rows = np.clip(np.repeat(column[:, None], 320, axis=1), 0, 255).astype(np.uint8)
        codes.append(assemble.difference_hash(Image.fromarray(rows)))
    assert assemble.hash_distance(*codes) > assemble.DUPLICATE_BITS


def _entry(file, image, split="train", added_in=3, frame=False):
    entry = {
        "file": file,
        "split": split,
        "added_in": added_in,
        "dhash": f"{assemble.difference_hash(image):032x}",
    }
    if frame:
        entry["video_frame"] = {"video": "v", "index": 0}
    return entry


def test_drop_duplicates_protects_the_heldout_set():
    held, train, fresh = _photo(10), _photo(11), _photo(12)
    near = lambda image: image.resize((160, 120), Image.Resampling.LANCZOS)  # noqa: E731
    entries = [
        _entry("held.png", held, "heldout", added_in=2),
        _entry("train.png", train, added_in=2),
        _entry("train-again-v2.png", train, added_in=2),  # version 2 is never touched
        _entry("copy-of-held.png", near(held)),
        _entry("copy-of-train.png", near(train)),
        _entry("fresh.png", fresh),
        _entry("frame-like-train.png", near(train), frame=True),  # frames: held-out only
        _entry("frame-like-held.png", near(held), frame=True),
    ]
    kept, dropped = assemble.drop_duplicates(entries)
    assert [e["file"] for e in kept] == [
        "held.png",
        "train.png",
        "train-again-v2.png",
        "fresh.png",
        "frame-like-train.png",
    ]
    assert dropped == [
        {"file": "copy-of-held.png", "duplicate_of": "held.png"},
        {"file": "copy-of-train.png", "duplicate_of": "train.png"},
        {"file": "frame-like-held.png", "duplicate_of": "held.png"},
    ]


def test_licence_for_with_upstream_paths():
    stanzas = debian.parse_dep5(
        "Format: x\n\nFiles: *\nLicense: GPL-2+\n\n"
        "Files: 16.04/a_by_b.jpg\n 16.04/c.jpg\nLicense: CC-BY-4.0\n  text\n"
    )
    assert debian.licence_for("16.04/c.jpg", stanzas) == "CC-BY-4.0"
    assert debian.licence_for("usr/share/backgrounds/c.jpg", stanzas) == "GPL-2+"


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_extract_members_only_takes_the_named_files(tmp_path):
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        "Package: tiny\nVersion: 1.2-3\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n"
    )
    for name in ("usr/share/a/keep.jpg", "usr/share/a/skip.jpg", "usr/share/doc/tiny/copyright"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(name.encode())
    deb = tmp_path / "tiny_1.2-3_all.deb"
    subprocess.run(
        ["dpkg-deb", "-b", "--root-owner-group", str(root), str(deb)],
        check=True,
        capture_output=True,
    )
    dest = tmp_path / "out"
    members = ["usr/share/a/keep.jpg", "usr/share/doc/tiny/copyright"]
    assert debian.extract_members(deb, dest, members) == "1.2-3"
    assert (dest / "usr/share/a/keep.jpg").read_bytes() == b"usr/share/a/keep.jpg"
    assert not (dest / "usr/share/a/skip.jpg").exists()
    with pytest.raises(RuntimeError, match="missing.jpg"):
        debian.extract_members(deb, dest, ["usr/share/a/missing.jpg"])


def test_an_older_assembly_is_rebuilt(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images/a.png").write_bytes(b"")
    manifest = {"version": 2, "images": [{"file": "images/a.png"}], "videos": []}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert not assemble.is_up_to_date(tmp_path)
    manifest["version"] = assemble.ASSEMBLY_VERSION
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert assemble.is_up_to_date(tmp_path)


def test_listed_evaluation_images_are_never_assembled():
    common = dict(path=None, version="1", licence="l", downscale=False)
    found = [
        photo_packages.Candidate(
            name="sporco-kodim23",
            package="pypi:sporco",
            package_path="sporco/data/kodim23.png",
            **common,
        ),
        photo_packages.Candidate(
            name="sporco-sail", package="pypi:sporco", package_path="sporco/data/sail.png", **common
        ),
    ]
    kept, excluded = assemble.exclude_listed(found)
    assert [c.name for c in kept] == ["sporco-sail"]
    assert excluded == [
        {
            "name": "sporco-kodim23",
            "package": "pypi:sporco",
            "package_path": "sporco/data/kodim23.png",
            "evaluation_image": "Kodak kodim23 (LIVE1 parrots, TID2013 I23)",
        }
    ]
    # The curated lists name no evaluation image (the list is a guard, not a filter of
    # what was picked by eye).
    for source in photo_packages.PHOTO_PACKAGES:
        for file in source.files:
            assert f"{source.root}/{file}" not in photo_packages.EVALUATION_IMAGES


def test_photos_like_an_evaluation_image_in_the_cache_are_left_out(tmp_path):
    live1 = tmp_path / "live1"
    live1.mkdir()
    _photo(20, (480, 320)).save(live1 / "parrots.bmp")
    hashes = assemble.evaluation_hashes([live1, tmp_path / "classic5"])  # missing: skipped
    assert [path.name for _, path in hashes] == ["parrots.bmp"]
    # A downscaled, re-encoded copy (as a package would ship it) is caught; another
    # photo is not.
    buffer = io.BytesIO()
    _photo(20, (480, 320)).resize((240, 160), Image.Resampling.LANCZOS).save(buffer, "JPEG")
    copy = Image.open(io.BytesIO(buffer.getvalue()))
    origin = {"package": "debian:x", "package_path": "usr/share/x/copy.jpg"}
    entries = [
        {**_entry("images/x-copy.png", copy), **origin},
        {**_entry("images/x-other.png", _photo(21, (480, 320))), **origin},
    ]
    kept, excluded = assemble.drop_evaluation_lookalikes(entries, hashes)
    assert [e["file"] for e in kept] == ["images/x-other.png"]
    assert excluded == [
        {
            "name": "x-copy",
            "package": "debian:x",
            "package_path": "usr/share/x/copy.jpg",
            "evaluation_image": "live1/parrots.bmp (difference hash)",
        }
    ]
    assert "evaluation set" in assemble.HELD_OUT_RULE
