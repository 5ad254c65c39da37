"""Image sources: the assembled photo set, the embedded fallback, a folder, or TFDS.

A source resolves to two image sets, `train` and `heldout`: random-access
sequences of uint8 RGB photos (`load(i)`) with a name each. The held-out split
is fixed by image (never by patch) so evaluation always sees photographs the
model was never trained on.

`config.data.source`:
  'photos'        the set `python -m jaxrestore.data.assemble` writes (config.data.dir)
  'embedded'      scikit-image's bundled colour photos (tests, no download)
  a folder        every image below it; held out by a hash of the relative path
  'tfds:NAME'     a TFDS dataset read with `tfds.data_source` (array_record, random
                  access, no TensorFlow), e.g. one packed by `jaxrestore.data.tfds_pack`;
                  config.data.dir is its data_dir (a local path or a bucket URL),
                  splits config.data.train_split / config.data.heldout_split

Image files are read through `media.image` (sizes, bit depths and decoding
failures checked there; an ImageError names the file).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from absl import logging

from jaxrestore.errors import reason
from jaxrestore.media.image import IMAGE_SUFFIXES, ImageError, as_rgb8, read_image

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


class ImageSet:
    """A random-access set of photos: `len`, `load(i)` (uint8 RGB [H, W, 3]), `name(i)`."""

    def __len__(self) -> int:
        raise NotImplementedError

    def load(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def name(self, index: int) -> str:
        raise NotImplementedError

    def select(self, indices: Sequence[int]) -> ImageSet:
        """The images at `indices`, as an image set."""
        return _Selection(self, list(indices))


class _Selection(ImageSet):
    def __init__(self, base: ImageSet, indices: list[int]):
        self.base, self.indices = base, indices

    def __len__(self) -> int:
        return len(self.indices)

    def load(self, index: int) -> np.ndarray:
        return self.base.load(self.indices[index])

    def name(self, index: int) -> str:
        return self.base.name(self.indices[index])


class FileImages(ImageSet):
    """Image files on disk."""

    def __init__(self, paths: Sequence[str]):
        self.paths = [str(p) for p in paths]

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> np.ndarray:
        return read_image(self.paths[index])

    def name(self, index: int) -> str:
        return Path(self.paths[index]).stem

    def __eq__(self, other) -> bool:
        return isinstance(other, FileImages) and self.paths == other.paths


class TfdsImages(ImageSet):
    """One split of a TFDS dataset, read through `tfds.data_source` (array_record)."""

    def __init__(self, name: str, split: str, data_dir: str | None, image_key: str = "image"):
        self.dataset, self.split, self.data_dir, self.image_key = name, split, data_dir, image_key
        self._source = None

    def __getstate__(self) -> dict:
        # grain workers get a pickled copy: they reopen the files themselves.
        return {**self.__dict__, "_source": None}

    @property
    def source(self):
        if self._source is None:
            self._source = open_tfds(self.dataset, self.split, self.data_dir)
        return self._source

    def __len__(self) -> int:
        return len(self.source)

    def _record(self, index: int) -> dict:
        try:
            record = self.source[index]
        except Exception as error:  # array_record / feature decoding: damaged files
            raise ImageError(
                f"tfds:{self.dataset} {self.split}[{index}]: unreadable record ({reason(error)})"
            ) from None
        if self.image_key not in record:
            raise ValueError(
                f"tfds:{self.dataset}: records have no {self.image_key!r} feature "
                f"(features: {', '.join(record)}); set config.data.image_key"
            )
        return record

    def load(self, index: int) -> np.ndarray:
        return as_rgb8(self._record(index)[self.image_key], f"tfds:{self.dataset}[{index}]")

    def name(self, index: int) -> str:
        value = self._record(index).get("name")
        if isinstance(value, bytes):
            value = value.decode()
        return str(value) if value else f"{self.split}_{index:06d}"


def open_tfds(name: str, split: str, data_dir: str | None):
    """`tfds.data_source` with a one-line error when the dataset or split is missing."""
    import tensorflow_datasets as tfds

    from jaxrestore.data import tfds_builder  # noqa: F401  registers the project's builder

    try:
        return tfds.data_source(name, split=split, data_dir=data_dir or None)
    except Exception as error:  # tfds raises many types; the message is what matters
        where = data_dir or os.environ.get("TFDS_DATA_DIR") or "the default TFDS data_dir"
        raise FileNotFoundError(
            f"tfds:{name} split {split!r} in {where}: {reason(error)}"
        ) from None


def resolve_photo_set(root: Path) -> dict[str, ImageSet]:
    manifest_path = root / "manifest.json"
    if not manifest_path.exists():
        raise FileNotFoundError(
            f"{manifest_path}: no assembled photo set; run `python -m jaxrestore.data.assemble`"
        )
    manifest = json.loads(manifest_path.read_text())
    from jaxrestore.data import assemble  # (it imports this module)

    if manifest.get("version", 0) < assemble.ASSEMBLY_VERSION:
        logging.warning(
            "%s: photo set version %s, older than %d (versions 2 and 3 held LIVE1 and "
            "Classic5 images); assemble it again: python -m jaxrestore.data.assemble",
            root,
            manifest.get("version"),
            assemble.ASSEMBLY_VERSION,
        )
    splits: dict[str, list[str]] = {"train": [], "heldout": []}
    for entry in manifest["images"]:
        splits[entry["split"]].append(str(root / entry["file"]))
    return {split: FileImages(paths) for split, paths in splits.items()}


def folder_splits(root: Path) -> dict[str, list[Path]]:
    """Every image file below `root`, split by a hash of its relative path."""
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    splits: dict[str, list[Path]] = {"train": [], "heldout": []}
    for path in files:
        splits["heldout" if is_heldout(str(path.relative_to(root))) else "train"].append(path)
    return splits


def resolve(data_config) -> dict[str, ImageSet]:
    """Return {'train': ImageSet, 'heldout': ImageSet} for `config.data`."""
    source = data_config.source
    if source == "embedded":
        root = embedded_dir()
        return {
            "train": FileImages([root / n for n in EMBEDDED_TRAIN]),
            "heldout": FileImages([root / n for n in EMBEDDED_HELDOUT]),
        }
    if source == "photos":
        return resolve_photo_set(Path(data_config.dir) if data_config.dir else default_data_dir())
    if source.startswith("tfds:"):
        name = source.removeprefix("tfds:")
        data_dir = data_config.dir or None
        image_key = getattr(data_config, "image_key", "image")
        return {
            split: TfdsImages(name, getattr(data_config, field, split), data_dir, image_key)
            for split, field in (("train", "train_split"), ("heldout", "heldout_split"))
        }
    path = Path(source).expanduser()
    if path.is_dir():
        return {split: FileImages(paths) for split, paths in folder_splits(path).items()}
    raise ValueError(
        f"config.data.source={source!r}: expected 'photos', 'embedded', an image folder "
        "or 'tfds:NAME'"
    )


class ClipSet:
    """Short video clips for inter-frame degradations: every `*.npy` file in a folder,
    each uint8 [clips, frames, H, W, 3] (or one clip [frames, H, W, 3]).

    Files are memory-mapped, lazily, in each grain worker."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.paths = sorted(self.folder.glob("*.npy")) if self.folder.is_dir() else []
        self._arrays: list[np.ndarray] | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_arrays": None}

    @property
    def arrays(self) -> list[np.ndarray]:
        if self._arrays is None:
            arrays = []
            for path in self.paths:
                array = np.load(path, mmap_mode="r")
                if array.ndim == 4:
                    array = array[None]
                if array.ndim != 5 or array.shape[-1] != 3 or array.dtype != np.uint8:
                    raise ValueError(
                        f"{path}: clips must be uint8 [clips, frames, H, W, 3], got "
                        f"{array.dtype} {array.shape}"
                    )
                arrays.append(array)
            self._arrays = arrays
        return self._arrays

    def __len__(self) -> int:
        return sum(a.shape[0] for a in self.arrays)

    def clip(self, index: int) -> np.ndarray:
        for array in self.arrays:
            if index < array.shape[0]:
                return array[index]
            index -= array.shape[0]
        raise IndexError(index)

    def random_crop(self, size: int, frames: int, rng: np.random.Generator) -> np.ndarray:
        """[frames, size, size, 3]: the same window over consecutive frames of a clip."""
        clip = self.clip(int(rng.integers(0, len(self))))
        count, height, width = clip.shape[:3]
        if count < frames or height < size or width < size:
            raise ValueError(
                f"{self.folder}: a clip of {count} frames of {width}x{height} cannot give "
                f"{frames} frames of {size}²"
            )
        start = int(rng.integers(0, count - frames + 1))
        top = int(rng.integers(0, height - size + 1))
        left = int(rng.integers(0, width - size + 1))
        return np.array(clip[start : start + frames, top : top + size, left : left + size])


def resolve_clips(data_config) -> dict[str, ClipSet]:
    """{'train', 'heldout'} clip sets of `config.data.videos` ('' = the assembled set's
    videos/ folder)."""
    folder = data_config.get("videos", "")
    if not folder:
        root = Path(data_config.dir) if data_config.dir else default_data_dir()
        folder = root / "videos"
    folder = Path(folder).expanduser()
    splits = {split: ClipSet(folder / split) for split in ("train", "heldout")}
    if not splits["train"].paths:
        raise FileNotFoundError(
            f"{folder / 'train'}: no video clips (*.npy); run `python -m jaxrestore.data.assemble`"
        )
    return splits
