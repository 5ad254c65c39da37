"""Regenerate the hand-made bad inputs in this folder (deterministic: fixed seeds).

    python tests/bad_inputs/make_corpus.py

Every file is small (the whole corpus is well under 1 MB); README.md lists each
one, how it is made and what the restore command must do with it.
"""

from __future__ import annotations

import io
import struct
import sys
import zlib
from pathlib import Path

import av
import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the tests' own helpers

from helpers import make_video  # noqa: E402

from jaxrestore.data import sources  # noqa: E402
from jaxrestore.media import image as image_io  # noqa: E402


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height RGB pixels and holds none of them."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b"")


def png_bilevel_zeros(side: int) -> bytes:
    """A real decompression bomb: a side x side 1-bit PNG of zeros, a few dozen KB
    that decode to side² pixels (side² × 3 bytes as RGB)."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    row = b"\0" * (1 + side // 8)  # filter byte, then side bits
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", data)
        + png_chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int, valid: bytes) -> bytes:
    """A valid JPEG with the frame header's size replaced by width x height."""
    at = valid.index(b"\xff\xc0") + 5  # SOF0: length (2), precision (1), then H, W
    return valid[:at] + struct.pack(">HH", height, width) + valid[at + 4 :]


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def overwrite_middle(data: bytes, start_fraction: float, length: int, seed: int) -> bytes:
    """`data` with `length` random bytes written over it from `start_fraction` of the way."""
    start = int(len(data) * start_fraction)
    noise = np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()
    return data[:start] + noise + data[start + length :]


def audio_only(path: Path) -> None:
    """An MP4 holding one second of AAC audio and no video stream."""
    with av.open(str(path), "w") as out:
        sound = out.add_stream("aac", rate=48000)
        sound.layout = "mono"
        for start in range(0, 48000, 1024):
            tone = 0.2 * np.sin(2 * np.pi * 440 * (start + np.arange(1024)) / 48000)
            frame = av.AudioFrame.from_ndarray(
                tone.astype(np.float32)[None], format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 48000, start
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))


def build(folder: Path) -> list[str]:
    """Write every corpus file into `folder`; returns their names."""
    photo = image_io.read_image(str(sources.embedded_dir() / "chelsea.png"))
    crop = Image.fromarray(photo[100:196, 150:278])  # 128x96 of the cat
    rng = np.random.default_rng(20240501)
    files: dict[str, bytes] = {}
    jpeg = encoded(crop, "JPEG", quality=40)
    png = encoded(crop, "PNG")
    for name in ("empty.jpg", "empty.png", "empty.mp4"):
        files[name] = b""
    for name in ("random.jpg", "random.png", "random.webp", "random.mp4", "random.mkv"):
        files[name] = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    files["text.mp4"] = b"these are words, not frames\n" * 4
    files["truncated.jpg"] = jpeg[: len(jpeg) // 2]
    files["truncated.png"] = png[: len(png) // 2]
    files["corrupt_middle.jpg"] = overwrite_middle(jpeg, 0.5, 64, seed=1)
    # The last IDAT chunk's CRC inverted (IEND, the last 12 bytes, follows it).
    files["bad_crc.png"] = png[:-16] + bytes(b ^ 0xFF for b in png[-16:-12]) + png[-12:]
    files["bomb_header.png"] = png_header_only(100_000, 100_000)
    files["bomb_header.jpg"] = jpeg_declaring(65_000, 65_000, jpeg)
    files["bomb_bilevel.png"] = png_bilevel_zeros(12_000)  # 144 Mpx: Pillow only warns
    files["huge.y4m"] = b"YUV4MPEG2 W60000 H60000 F25:1 Ip A1:1 C420jpeg\n"
    files["cmyk.jpg"] = encoded(crop.convert("CMYK"), "JPEG", quality=90)
    files["palette.png"] = encoded(crop.quantize(64), "PNG")
    paletted = crop.quantize(64)
    paletted.info["transparency"] = 0  # palette entry 0 fully transparent
    files["palette_transparent.png"] = encoded(paletted, "PNG", transparency=0)
    files["bilevel.png"] = encoded(crop.convert("1"), "PNG")
    gray16 = (np.asarray(crop.convert("L")).astype(np.uint16) * 257).astype(np.uint16)
    files["gray16.png"] = encoded(Image.fromarray(gray16), "PNG")
    small = np.asarray(crop)[:24, :32].astype(">u2") * 257  # Pillow writes no RGB;16
    rows = b"".join(b"\0" + row.tobytes() for row in small)
    files["rgb16.png"] = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 32, 24, 16, 2, 0, 0, 0))
        + png_chunk(b"IDAT", zlib.compress(rows, 9))
        + png_chunk(b"IEND", b"")
    )
    files["animated.png"] = encoded(
        crop, "PNG", save_all=True, append_images=[crop.rotate(180)], duration=100
    )
    exif = Image.Exif()
    exif[0x0112] = 6
    broken = bytearray(exif.tobytes())
    broken[10:] = rng.integers(0, 256, len(broken) - 10, dtype=np.uint8).tobytes()
    files["bad_exif.jpg"] = encoded(crop, "JPEG", quality=40, exif=bytes(broken))
    ramp = np.tile(np.linspace(0, 255, crop.width).astype(np.uint8), (crop.height, 1))
    files["gray_alpha.png"] = encoded(
        Image.merge("LA", (crop.convert("L"), Image.fromarray(ramp))), "PNG"
    )
    files["rgba.png"] = encoded(Image.merge("RGBA", (*crop.split(), Image.fromarray(ramp))), "PNG")
    for name, data in files.items():
        (folder / name).write_bytes(data)
    clip = folder / "clip.mp4"  # 48 frames of 96x64 H.264 + AAC; corrupted below
    make_video(clip, photo, frames=48, audio=True)
    data = clip.read_bytes()
    clip.unlink()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])
    box = data.index(b"mdat") - 4  # the media data box: its size, then b"mdat"
    middle = box + struct.unpack(">I", data[box : box + 4])[0] // 2
    (folder / "corrupt_middle.mp4").write_bytes(
        data[:middle] + rng.integers(0, 256, 512, dtype=np.uint8).tobytes() + data[middle + 512 :]
    )
    audio_only(folder / "audio_only.mp4")
    unknown = folder / "unknown_codec.mkv"  # FFV1 in Matroska, its codec ID renamed
    make_video(unknown, photo, frames=4, size=(32, 24), audio=False, codec="ffv1")
    unknown.write_bytes(unknown.read_bytes().replace(b"V_FFV1", b"V_ZZZ1"))
    made = ["truncated.mp4", "corrupt_middle.mp4", "audio_only.mp4", "unknown_codec.mkv"]
    return sorted([*files, *made])


if __name__ == "__main__":
    names = build(HERE)
    total = sum((HERE / n).stat().st_size for n in names)
    print(f"{len(names)} files, {total / 1024:.0f} KiB")
