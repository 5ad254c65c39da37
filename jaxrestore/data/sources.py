"""Image sources: the assembled photo set, the embedded fallback, or a folder.

A source is resolved to two lists of image paths, `train` and `heldout`. The
held-out split is fixed by image (never by patch) so evaluation always sees
photographs the model was never trained on.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

# Colour photographs that ship inside scikit-image: no download needed, for tests
# and first runs. `coffee` and `rocket` are held out.
EMBEDDED_TRAIN = ("astronaut.png", "chelsea.png", "motorcycle_left.png", "ihc.png")
EMBEDDED_HELDOUT = ("coffee.png", "rocket.jpg")

HELDOUT_FRACTION_DENOMINATOR = 10


def default_data_dir() -> Path:
    """Where `jaxrestore.data.assemble` writes the photo set ($JAXRESTORE_DATA overrides)."""
    env = os.environ.get("JAXRESTORE_DATA")
    return Path(env) if env else Path.home() / ".cache" / "jaxrestore" / "photos"


def is_heldout(name: str) -> bool:
    """Stable split by image name: about one image in ten is held out."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "little") % HELDOUT_FRACTION_DENOMINATOR == 0


def embedded_dir() -> Path:
    import skimage.data

    return Path(skimage.data.__file__).parent


def _photo_set(root: Path) -> dict[str, list[str]]:
    manifest_path = root / "manifest.json"
    if not manifest_path.exists():
        raise FileNotFoundError(
            f"{manifest_path}: no assembled photo set; run `python -m jaxrestore.data.assemble`"
        )
    manifest = json.loads(manifest_path.read_text())
    splits: dict[str, list[str]] = {"train": [], "heldout": []}
    for entry in manifest["images"]:
        splits[entry["split"]].append(str(root / entry["file"]))
    return splits


def _folder(root: Path) -> dict[str, list[str]]:
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    splits: dict[str, list[str]] = {"train": [], "heldout": []}
    for path in files:
        rel = str(path.relative_to(root))
        splits["heldout" if is_heldout(rel) else "train"].append(str(path))
    return splits


def resolve(data_config) -> dict[str, list[str]]:
    """Return {'train': [...], 'heldout': [...]} image paths for `config.data`."""
    source = data_config.source
    if source == "embedded":
        root = embedded_dir()
        return {
            "train": [str(root / n) for n in EMBEDDED_TRAIN],
            "heldout": [str(root / n) for n in EMBEDDED_HELDOUT],
        }
    if source == "photos":
        return _photo_set(Path(data_config.dir) if data_config.dir else default_data_dir())
    path = Path(source).expanduser()
    if path.is_dir():
        return _folder(path)
    raise ValueError(
        f"config.data.source={source!r}: expected 'photos', 'embedded' or an image folder"
    )


def read_image(path: str) -> np.ndarray:
    """Decode an image file to uint8 RGB [H, W, 3]."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))
