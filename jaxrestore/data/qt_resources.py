"""Files inside a compiled Qt resource bundle (`.rcc`), read without Qt.

GCompris ships each activity's pictures in such a bundle. Layout (big-endian):
a header `qres`, format version, and the offsets of the tree, the data and the
names; the tree is a table of nodes (name offset, flags, then for a folder its
child count and first child, for a file its locale and data offset; from format
2 on, an 8-byte modification time follows); a name is a 16-bit length, a 32-bit
hash and UTF-16 characters; a file's data is a 32-bit size and the bytes, zlib
compressed behind a 4-byte length (flag 1) or zstd compressed (flag 4).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

COMPRESSED = 0x01
DIRECTORY = 0x02
COMPRESSED_ZSTD = 0x04


class ResourceError(ValueError):
    pass


def _header(blob: bytes) -> tuple[int, int, int, int]:
    if blob[:4] != b"qres":
        raise ResourceError("not a Qt resource bundle (no 'qres' header)")
    version, tree, data, names = struct.unpack_from(">4I", blob, 4)
    if version not in (1, 2, 3):
        raise ResourceError(f"unsupported resource format version {version}")
    return version, tree, data, names


def _name(blob: bytes, names: int, offset: int) -> str:
    (length,) = struct.unpack_from(">H", blob, names + offset)
    start = names + offset + 6  # the length, then a 32-bit hash
    return blob[start : start + 2 * length].decode("utf-16-be")


def _payload(blob: bytes, data: int, offset: int, flags: int) -> bytes:
    (size,) = struct.unpack_from(">I", blob, data + offset)
    raw = blob[data + offset + 4 : data + offset + 4 + size]
    if flags & COMPRESSED:
        return zlib.decompress(raw[4:])
    if flags & COMPRESSED_ZSTD:
        raise ResourceError("zstd-compressed resource: not supported")
    return raw


def files(blob: bytes) -> dict[str, bytes]:
    """Every file of the bundle, by its path inside it (no leading slash)."""
    version, tree, data, names = _header(blob)
    node_size = 14 if version == 1 else 22
    out: dict[str, bytes] = {}
    pending = [(0, "")]  # (node index, path of its folder)
    while pending:
        index, parent = pending.pop()
        at = tree + index * node_size
        name_offset, flags = struct.unpack_from(">IH", blob, at)
        name = "" if index == 0 else _name(blob, names, name_offset)
        path = f"{parent}/{name}" if parent else name
        if flags & DIRECTORY:
            count, first = struct.unpack_from(">II", blob, at + 6)
            pending += [(first + i, path) for i in range(count)]
        else:
            (offset,) = struct.unpack_from(">I", blob, at + 10)
            out[path] = _payload(blob, data, offset, flags)
    return out


def read(path: Path) -> dict[str, bytes]:
    return files(path.read_bytes())
