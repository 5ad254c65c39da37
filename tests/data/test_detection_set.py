"""The detection evaluation set's rules, offline, on small synthetic inputs: reading a
Qt resource bundle, GCompris credits, licences, disjointness from the training
split, the manifest, and a second build doing nothing (no downloads, no detector)."""

import io
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from jaxrestore.data import assemble, detection_set, qt_resources
from jaxrestore.evaluation.task_models import Detection


def _photo(seed: int, size=(320, 240)) -> Image.Image:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _bundle(tree: dict, version: int = 2) -> bytes:
    """A Qt resource bundle of `tree` (nested dicts of name -> bytes), laid out as
    rcc lays it out: breadth-first nodes, each folder's children consecutive; files
    whose name ends in '.z' are stored zlib-compressed."""
    node_size = 14 if version == 1 else 22
    names, data = bytearray(), bytearray()
    nodes: list[bytes] = []

    def name_offset(name: str) -> int:
        offset = len(names)
        encoded = name.encode("utf-16-be")
        names.extend(struct.pack(">HI", len(name), 0) + encoded)
        return offset

    queue = [("", tree)]  # breadth-first; the root first
    rows: list[tuple[str, object]] = [("", tree)]
    while queue:
        _, folder = queue.pop(0)
        for child in sorted(folder):
            rows.append((child, folder[child]))
            if isinstance(folder[child], dict):
                queue.append((child, folder[child]))
    # children of each folder come right after those of the folders before it
    index = {id(node): i for i, (_, node) in enumerate(rows)}
    for name, node in rows:
        offset = name_offset(name) if name else 0
        if isinstance(node, dict):
            first = index[id(node[sorted(node)[0]])] if node else 0
            row = struct.pack(">IHII", offset, qt_resources.DIRECTORY, len(node), first)
        else:
            flags = 0
            payload = node
            if name.endswith(".z"):
                flags = qt_resources.COMPRESSED
                payload = struct.pack(">I", len(node)) + zlib.compress(node)
            row = struct.pack(">IHHHI", offset, flags, 0, 0, len(data))
            data.extend(struct.pack(">I", len(payload)) + payload)
        nodes.append(row + (b"\0" * 8 if version >= 2 else b""))
    header_size = 20
    tree_blob = b"".join(nodes)
    assert all(len(n) == node_size for n in nodes)
    tree_at = header_size
    data_at = tree_at + len(tree_blob)
    names_at = data_at + len(data)
    header = b"qres" + struct.pack(">4I", version, tree_at, data_at, names_at)
    return header + tree_blob + bytes(data) + bytes(names)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_qt_resources_reads_folders_and_compressed_files(version):
    tree = {"gcompris": {"a": {"x.webp": b"raw bytes", "y.z": b"squeezed" * 50}, "README": b"hi"}}
    files = qt_resources.files(_bundle(tree, version))
    assert files == {
        "gcompris/a/x.webp": b"raw bytes",
        "gcompris/a/y.z": b"squeezed" * 50,
        "gcompris/README": b"hi",
    }


def test_qt_resources_refuses_other_files():
    with pytest.raises(qt_resources.ResourceError):
        qt_resources.files(b"PK\x03\x04 not a bundle at all")


def test_parse_credits():
    text = (
        "Copyright: Someone, 2020\nLicense: CC-BY-SA 4.0\nFiles:\nkey.svg\nmap.svg\n\n"
        "Copyright: A Photographer\nSource: https://example.org/a.jpg\nLicense: CC0-1.0\n"
        "Comments: cropping\nFiles: india/gate.webp\n\n"
        "Files: bird.webp\nSource: https://example.org/b.jpg\nLicense: Public domain\n"
        "Copyright: B\n"
    )
    credits = detection_set.parse_credits(text)
    assert credits["india/gate.webp"] == {
        "licence": "CC0-1.0",
        "author": "A Photographer",
        "origin": "https://example.org/a.jpg",
    }
    assert credits["bird.webp"]["licence"] == "Public domain"
    assert credits["map.svg"]["licence"] == "CC-BY-SA 4.0"
    assert "cropping" not in credits


@pytest.mark.parametrize(
    "licence, accepted",
    [
        ("Public Domain", True),
        ("CC0-1.0", True),
        ("CC-BY 2.0", True),
        ("CC-BY-SA-4.0", True),
        ("GPLv3", True),
        ("BSD-3-Clause", True),
        ("Apache-2.0 AND BSD-3-Clause", False),  # not a prefix we accept on its own
        ("CC-BY-NC-SA 3.0", False),
        ("CC-BY-ND-4.0", False),
        ("GFDL-NIV-1.2", False),
        ("", False),
        ("not named in the README", False),
    ],
)
def test_licence_accepted(licence, accepted):
    assert detection_set.licence_accepted(licence) is accepted


def test_scale_factor():
    assert detection_set.scale_factor(1024, 683, lossy=True) == 2
    assert detection_set.scale_factor(960, 540, lossy=True) == 2
    assert detection_set.scale_factor(500, 333, lossy=False) == 1
    assert detection_set.scale_factor(2000, 1000, lossy=True) == 4


def test_count_objects_keeps_reference_scores():
    found = [
        Detection(1, "person", 0.9, (0, 0, 1, 1)),
        Detection(1, "person", 0.5, (0, 0, 1, 1)),
        Detection(3, "car", 0.49, (0, 0, 1, 1)),
        Detection(17, "cat", 0.7, (0, 0, 1, 1)),
    ]
    assert detection_set.count_objects(found, 0.5) == {"cat": 1, "person": 2}


def _manifest(training: list[tuple[str, Image.Image]], source_sha: dict) -> dict:
    images = []
    for name, image in training:
        images.append(
            {
                "file": f"images/{name}.png",
                "sha256": "png-" + name,
                "source_sha256": source_sha.get(name, "src-" + name),
                "dhash": f"{assemble.difference_hash(image):032x}",
                "split": "train",
            }
        )
    held = _photo(99)
    images.append(
        {
            "file": "images/held.png",
            "sha256": "png-held",
            "source_sha256": "src-held",
            "dhash": f"{assemble.difference_hash(held):032x}",
            "split": "heldout",
        }
    )
    videos = [{"file": "videos/train/box.npy", "source_sha256": "video-box", "split": "train"}]
    return {"version": 3, "images": images, "videos": videos}


def _source(name: str, image: Image.Image, sha: str, **extra) -> detection_set.Source:
    data = _png(image)
    return detection_set.Source(
        name=name,
        package="debian:test",
        version="1",
        package_path=f"pkg/{name}.png",
        licence="CC0-1.0",
        author="test",
        origin="",
        source_sha256=sha,
        load=detection_set._image_loader(data),
        lossy=extra.pop("lossy", False),
        **extra,
    )


def test_select_refuses_training_images_and_records_objects(tmp_path):
    train_photo = _photo(1)
    manifest = _manifest([("train1", train_photo)], {"train1": "src-known"})
    forbidden = detection_set.forbidden_from(manifest)
    gray = Image.fromarray(np.full((240, 320, 3), 128, np.uint8))
    candidates = [
        _source("same-source", _photo(5), "src-known"),  # a training file's sha256
        _source("rescaled", train_photo.resize((640, 480)), "new1", lossy=True),  # perceptual
        _source("frame", _photo(6), "video-box", video_frame={"video": "box", "index": 0}),
        _source("gray", gray, "new2"),
        _source("tiny", _photo(7, (200, 120)), "new3"),
        _source("empty", _photo(8), "new4"),  # the detector finds nothing
        _source("kept", _photo(9), "new5"),
        _source("held", _photo(99), "new6"),  # like a held-out photo: allowed
        _source("kept-again", _photo(9), "new7"),  # a duplicate within the set
    ]
    nothing = np.asarray(_photo(8))

    def detect(pixels):
        return {} if np.array_equal(pixels, nothing) else {"cat": 1, "person": 2}

    entries, left = detection_set.select(candidates, forbidden, detect, tmp_path)
    reasons = {item["name"]: item["reason"] for item in left}
    assert [e["file"] for e in entries] == ["images/kept.png", "images/held.png"]
    assert "training file" in reasons["same-source"]
    assert "perceptual duplicate of training image images/train1.png" in reasons["rescaled"]
    assert "training file" in reasons["frame"]
    assert reasons["gray"] == "near-gray"
    assert "smaller than" in reasons["tiny"]
    assert reasons["empty"] == "no object found by the detector"
    assert reasons["kept-again"] == "perceptual duplicate of images/kept.png"
    kept = entries[0]
    assert kept["objects"] == {"cat": 1, "person": 2}
    assert kept["licence"] == "CC0-1.0" and kept["source_sha256"] == "new5"
    assert kept["sha256"] == detection_set._sha256((tmp_path / kept["file"]).read_bytes())
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["held.png", "kept.png"]
    assert detection_set.summary(entries) == {
        "images": 2,
        "objects": 6,
        "classes": 2,
        "per_class": {"person": 4, "cat": 2},
    }


def test_evaluation_set_images_are_forbidden(tmp_path):
    live1 = tmp_path / "live1"
    live1.mkdir()
    _photo(3).save(live1 / "bikes.bmp")
    forbidden = detection_set.forbidden_from({"images": [], "videos": []}, [live1])
    code = assemble.difference_hash(_photo(3).resize((160, 120)))
    assert "evaluation image" in forbidden.clash("a", "b", code)
    assert forbidden.clash("a", "b", assemble.difference_hash(_photo(4))) is None


def test_build_needs_the_photo_set_and_runs_once(tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    out = tmp_path / "detection"
    with pytest.raises(RuntimeError, match="assemble"):
        detection_set.build(out, photos, tmp_path / "cache")
    photos.mkdir()
    (photos / "manifest.json").write_text(json.dumps(_manifest([("t", _photo(1))], {})))
    calls = []

    def fake_gcompris(cache):
        calls.append("gcompris")
        refused = [{"package_path": "x.rcc:y.webp", "reason": "licence: GFDL-1.2"}]
        return [_source("a", _photo(11), "sa"), _source("b", _photo(12), "sb")], refused

    monkeypatch.setattr(detection_set, "gcompris_sources", fake_gcompris)
    monkeypatch.setattr(detection_set, "opencv_sources", lambda cache: [])
    monkeypatch.setattr(
        detection_set, "_detector", lambda: (lambda pixels: {"dog": 1}, {"name": "fake"})
    )
    manifest = detection_set.build(out, photos, tmp_path / "cache")
    assert manifest["counts"]["images"] == 2 and manifest["counts"]["objects"] == 2
    assert manifest["left_out"][0]["reason"] == "licence: GFDL-1.2"
    assert manifest["checked_against"]["training_images"] == 1
    assert detection_set.is_up_to_date(out)
    again = detection_set.build(out, photos, tmp_path / "cache")
    assert again == manifest and calls == ["gcompris"]
    assert not list(tmp_path.glob(".detection-*"))


def test_evaluate_names_the_detection_set(tmp_path, monkeypatch, capsys):
    """`--images detection` builds (or finds) the set and evaluates its folder; a set
    that cannot be built is an error message, not a traceback."""
    from jaxrestore import evaluate
    from jaxrestore.evaluation import protocol

    def no_set():
        raise detection_set.BuildError("detection set: no photo set")

    monkeypatch.setattr(detection_set, "ensure", no_set)
    assert evaluate.run(["--images", "detection", "--out", str(tmp_path / "r")]) == 1
    assert "no photo set" in capsys.readouterr().err

    asked = []
    monkeypatch.setattr(detection_set, "ensure", lambda: tmp_path / "set")

    def image_set(folder, limit=0):
        asked.append(folder)
        raise ValueError("stop here")

    monkeypatch.setattr(protocol, "image_set", image_set)
    assert evaluate.run(["--images", "detection", "--out", str(tmp_path / "r")]) == 1
    assert asked == [tmp_path / "set"]
