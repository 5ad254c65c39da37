"""The quality factor of a JPEG file, read from its quantisation tables.

libjpeg (and libjpeg-turbo, and so Pillow, OpenCV and imagecodecs) writes the
example tables of ITU-T T.81 Annex K scaled by the quality factor QF:
scale = 5000 / QF below 50, else 200 − 2·QF; entry = ⌊(T·scale + 50) / 100⌋
clamped to 1..255 (baseline). Every QF 1–100 gives a different pair of tables,
so a file written that way maps back to its QF exactly. Tables of other
encoders (camera firmware, FFmpeg's MJPEG, mozjpeg) are matched to the QF whose
libjpeg tables are nearest in log scale, and reported as not exact.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

# ITU-T T.81, Annex K, tables K.1 (luminance) and K.2 (chrominance), row-major.
ANNEX_K_LUMINANCE = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ]
)
ANNEX_K_CHROMINANCE = np.array(
    [
        [17, 18, 24, 47, 99, 99, 99, 99],
        [18, 21, 26, 66, 99, 99, 99, 99],
        [24, 26, 56, 99, 99, 99, 99, 99],
        [47, 66, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
    ]
)
QUALITIES = np.arange(1, 101)


def scaled_table(base: np.ndarray, quality: int) -> np.ndarray:
    """The table libjpeg writes for `base` at `quality` (baseline: entries 1..255)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((base * scale + 50) // 100, 1, 255)


# [100, 2, 8, 8]: libjpeg's luminance and chrominance tables at QF 1..100.
LIBJPEG_TABLES = np.stack(
    [
        np.stack([scaled_table(ANNEX_K_LUMINANCE, q), scaled_table(ANNEX_K_CHROMINANCE, q)])
        for q in QUALITIES
    ]
)


@dataclasses.dataclass(frozen=True)
class TableQuality:
    quality: int  # QF on libjpeg's scale
    exact: bool  # the tables are libjpeg's at exactly this QF


def quality_from_tables(tables: dict[int, np.ndarray] | list[np.ndarray]) -> TableQuality:
    """QF of quantisation tables (8×8 or 64 row-major entries; table 0 is luma,
    table 1, when present, chroma)."""
    if isinstance(tables, dict):
        tables = [tables[k] for k in sorted(tables)]
    if not tables:
        raise ValueError("no quantisation table")
    found = [np.asarray(t, dtype=np.int64).reshape(8, 8) for t in tables[:2]]
    candidates = LIBJPEG_TABLES[:, : len(found)]
    found_stack = np.stack(found)
    exact = np.flatnonzero((candidates == found_stack).all(axis=(1, 2, 3)))
    if exact.size:
        return TableQuality(int(QUALITIES[exact[0]]), True)
    distance = np.mean((np.log(candidates) - np.log(np.maximum(found_stack, 1))) ** 2, (1, 2, 3))
    return TableQuality(int(QUALITIES[int(np.argmin(distance))]), False)


def read_tables(path: str | Path) -> list[np.ndarray] | None:
    """The quantisation tables of a JPEG file (row-major 8×8), or None for another
    format. Raises ValueError for a file that cannot be parsed."""
    try:
        with Image.open(path) as image:
            if image.format != "JPEG":
                return None
            tables = getattr(image, "quantization", None)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot read image ({error})") from None
    if not tables:
        raise ValueError(f"{path}: JPEG without quantisation tables")
    # Pillow gives the tables in natural (row-major) order.
    return [np.asarray(tables[k]).reshape(8, 8) for k in sorted(tables)]
