"""Image files in and out: every reader of a user's or a data set's image goes here.

Files from anywhere are opened through `open_image`: a size declared over
`max_pixels` (default MAX_PIXELS) is refused before a pixel is decoded, 16-bit or
float samples are refused rather than cut to 8 bits, and any decoding failure is
one ImageError naming the file. `load_image` also keeps what a restored output
should carry over (EXIF orientation applied, ICC profile, EXIF, alpha, grayscale);
`save_image` writes it back atomically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from jaxrestore import files
from jaxrestore.errors import reason

# Larger images are refused from their header, before decoding: room for 100-megapixel
# camera files, and a bound on what a few KB of hostile PNG can make us allocate.
MAX_PIXELS = 120_000_000
# Output formats by file suffix (Pillow's names).
FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
IMAGE_SUFFIXES = tuple(FORMATS)  # what is read as an image is what can be written


def as_rgb8(array: np.ndarray, what: str) -> np.ndarray:
    """uint8 RGB [H, W, 3] from a decoded grey, grey+alpha, RGB or RGBA uint8 array."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"{what}: {array.dtype} pixels; expected 8-bit images")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"{what}: image of shape {array.shape}; expected [H, W, 1–4]")
    if array.shape[-1] in (2, 4):  # drop alpha
        array = array[..., :-1]
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array)


class ImageError(ValueError):
    """An image file that cannot be read; the message is one line naming it and why."""


def _sample_bits(image: Image.Image) -> str | None:
    """The raw layout of an image with samples over 8 bits (e.g. 'RGB;16B', 'I;16'),
    else None. Pillow opens 16-bit RGB(A) as 8-bit modes and drops the low byte on
    decoding, so the mode alone does not tell."""
    if image.mode in ("I", "F") or image.mode.startswith("I;"):
        return image.mode
    for tile in getattr(image, "tile", None) or ():
        args = tile.args
        raw = args if isinstance(args, str) else (args[0] if args else None)
        if isinstance(raw, str) and (";16" in raw or ";32" in raw):
            return raw
    return None


@contextlib.contextmanager
def open_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> Iterator[Image.Image]:
    """`Image.open` for files from anywhere: the size the header declares is checked
    against `max_pixels` before a pixel is decoded (a small file can declare
    gigapixels), samples over 8 bits are refused, and whatever Pillow raises while
    the caller decodes inside the `with` block becomes one ImageError naming `path`.
    Pillow's warnings (corrupt EXIF it skipped) are silenced inside the block: they
    would print several lines per file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pillow_limit = Image.MAX_IMAGE_PIXELS
        try:
            # Pillow's own guard, off while it reads the header: ours, below, decides
            # (whatever `max_pixels` is) and names the size.
            Image.MAX_IMAGE_PIXELS = None
            image = Image.open(path)
        except Exception as error:  # Pillow's plugins raise many types on bad headers
            raise ImageError(f"{path}: cannot decode image ({reason(error)})") from None
        finally:
            Image.MAX_IMAGE_PIXELS = pillow_limit
        with image:
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{path}: {width}x{height} is over {max_pixels:,} pixels; refused "
                    "before decoding (a decompression bomb?)"
                )
            if (bits := _sample_bits(image)) is not None:
                raise ImageError(
                    f"{path}: {bits} samples (16-bit or float); only 8-bit images are supported"
                )
            try:
                yield image
            except ImageError:
                raise
            except Exception as error:  # decoders: OSError, EOFError, struct.error, ...
                raise ImageError(f"{path}: cannot decode image ({reason(error)})") from None


def read_image(path: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image file to uint8 RGB [H, W, 3]; ImageError (one line) when it
    cannot be (see `open_image`)."""
    with open_image(path, max_pixels) as image:
        return np.asarray(image.convert("RGB"))


@dataclasses.dataclass
class Loaded:
    rgb: np.ndarray  # uint8 [H, W, 3]
    alpha: np.ndarray | None  # uint8 [H, W] or None
    grayscale: bool
    icc_profile: bytes | None
    exif: bytes | None


def load_image(path: Path, max_pixels: int = MAX_PIXELS) -> Loaded:
    """Decode an input file, EXIF-oriented, with what the output should carry over.
    ImageError (one line naming the file) for what cannot be restored whole:
    undecodable, over `max_pixels` as declared, over 8 bits, animated, under 8x8."""
    with open_image(path, max_pixels) as image:
        if getattr(image, "is_animated", False):  # a still output would lose frames
            raise ImageError(f"{path}: an animated image; only still images are restored")
        image.load()
        icc = image.info.get("icc_profile")
        exif = image.getexif()  # what Pillow could parse of it, when it is corrupt
        image = ImageOps.exif_transpose(image)
        if exif and 0x0112 in exif:
            del exif[0x0112]  # the pixels are now upright
        exif_bytes = exif.tobytes() if exif else None
        grayscale = image.mode in ("L", "LA", "1")
        alpha = None
        if image.mode in ("RGBA", "LA", "PA") or (
            image.mode == "P" and "transparency" in image.info
        ):
            image = image.convert("RGBA" if not grayscale else "LA")
            alpha = np.asarray(image)[..., -1].copy()
        rgb = np.asarray(image.convert("RGB"))
    if min(rgb.shape[:2]) < 8:
        raise ImageError(f"{path}: {rgb.shape[1]}x{rgb.shape[0]} is too small (at least 8x8)")
    return Loaded(rgb, alpha, grayscale, icc, exif_bytes)


def save_image(
    loaded: Loaded, restored: np.ndarray, output: Path, fmt: str, overwrite: bool = False
) -> None:
    """Write `output` atomically (`files.atomic_output`: a race-free temporary in the
    same folder, renamed when complete); an existing `output` is replaced only with
    `overwrite` (else `files.OutputExists`)."""
    if loaded.grayscale:
        # Back to one channel: the luma of the restored RGB.
        image = Image.fromarray(restored).convert("L")
        if loaded.alpha is not None:
            image = Image.merge("LA", (image, Image.fromarray(loaded.alpha)))
    else:
        image = Image.fromarray(restored)
        if loaded.alpha is not None:
            image = Image.merge("RGBA", (*image.split(), Image.fromarray(loaded.alpha)))
    if fmt in ("JPEG", "BMP") and image.mode in ("RGBA", "LA"):
        image = image.convert("RGB" if image.mode == "RGBA" else "L")  # no alpha there
    options: dict = {}
    if loaded.icc_profile and fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        options["icc_profile"] = loaded.icc_profile
    if loaded.exif and fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        options["exif"] = loaded.exif
    if fmt == "JPEG":
        options["quality"] = 95
    if fmt == "WEBP":
        options["lossless"] = True
    with files.atomic_output(output, overwrite) as temporary:
        image.save(temporary, fmt, **options)


def looks_like_image(path: Path) -> bool:
    """Whether `path` is an image file: by its suffix, else by Pillow recognising its
    header (nothing is decoded)."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path):
                return True
    except (OSError, ValueError):
        return False
