"""Pack the assembled photo set small enough to travel with the code to a lent machine.

    python -m jaxrestore.data.carry_pack [--photos DIR] --out OUT [--budget-mb 40]
    python -m jaxrestore.main ... --config.data.dir=OUT      # source 'photos', as before

A GPU machine that sees only the working tree (and a size limit on it: 64 MiB
for the lent H200) cannot read the 250 MB photo set. This writes a photo set of
the same layout (images/ + manifest.json, same splits, same provenance per image)
that fits a byte budget:

- held-out images stay lossless PNG, so the held-out numbers of a run there are
  comparable with runs here (`--heldout-count N` keeps the first N only, for a
  progress check there when the full evaluation is run here afterwards);
- training images are re-encoded as JPEG with 4:4:4 chroma at the highest
  quality (at most 98, at least 90) at which the whole pack fits. The training
  QFs go up to 95, so targets are cleaner than any input at or below QF 90;
  quality 96–98 leaves a 44–48 dB error, far under the degradations trained on.
  When not all fit even at 90, as many as fit there, taken from every source in
  proportion, in a fixed order (assembly version 4: 573 training images are
  44.8 MiB at 90, the pack 47.8 MiB with 8 held-out PNGs; with a 19 MiB export
  committed beside the code, 338 of them travel);
- video clips are left out: the `*_clip` degradations need `--videos` from
  elsewhere (single-frame H.264/MPEG-2 degradations work on the photos).

Each manifest entry records `packed_as` (format, quality) and the sha256 of the
packed bytes beside the original's. Nothing is written unless the whole pack
fits; OUT must not exist (it is built beside, then renamed).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from pathlib import Path

from PIL import Image

from jaxrestore import files
from jaxrestore.data import assemble, sources

QUALITIES = (98, 97, 96, 95, 94, 93, 92, 91, 90)


def _jpeg(image: Image.Image, quality: int) -> bytes:
    """4:4:4 JPEG at `quality`, Huffman tables optimised where Pillow can: it gives
    libjpeg one buffer of width × height bytes (twice that from quality 95, at least
    64 KiB) for an optimised file, which a finely textured photo at these qualities
    outgrows ("Suspension not allowed here"); that photo keeps the standard tables."""
    plain = io.BytesIO()
    image.save(plain, "JPEG", quality=quality, subsampling=0)
    room = max(2**16, image.width * image.height * (2 if quality >= 95 else 1))
    if plain.tell() > room * 0.9:
        return plain.getvalue()
    optimised = io.BytesIO()
    try:
        image.save(optimised, "JPEG", quality=quality, subsampling=0, optimize=True)
    except OSError:
        return plain.getvalue()
    return optimised.getvalue()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def plan(
    photos: Path, budget: int, heldout_count: int | None = None
) -> tuple[dict, dict[str, bytes]]:
    """(manifest, {relative path: bytes}) of the pack that fits `budget` bytes, with
    the first `heldout_count` held-out images (None: all). Training images take the
    highest quality of QUALITIES at which all fit; when none does, as many as fit at
    the lowest, in `_proportional_order` (the manifest records how many:
    `packed_from.training_images`)."""
    manifest = json.loads((photos / "manifest.json").read_text())
    entries = manifest["images"]
    held, train = [], []
    for entry in entries:
        (held if entry["split"] == "heldout" else train).append(entry)
    held = held[:heldout_count] if heldout_count is not None else held
    packed: dict[str, bytes] = {}
    out_entries = []
    for entry in held:
        with Image.open(photos / entry["file"]) as image:
            data = _png(image.convert("RGB"))
        name = f"images/{Path(entry['file']).stem}.png"
        packed[name] = data
        out_entries.append({**entry, "file": name, "packed_as": {"format": "PNG"}})
    fixed = sum(map(len, packed.values()))
    pictures = []
    for entry in train:
        with Image.open(photos / entry["file"]) as image:
            pictures.append((entry, image.convert("RGB")))
    for quality in QUALITIES:
        encoded = [_jpeg(image, quality) for _, image in pictures]
        total = fixed + sum(map(len, encoded))
        if total <= budget:
            break
    else:
        kept, used = [], fixed
        for i in _proportional_order(train):
            if used + len(encoded[i]) <= budget:
                kept.append(i)
                used += len(encoded[i])
        if not kept:
            raise ValueError(
                f"{photos}: {len(train)} training images do not fit "
                f"{budget / 2**20:.0f} MiB even at JPEG {QUALITIES[-1]} "
                f"({total / 2**20:.1f} MiB); raise --budget-mb"
            )
        chosen = sorted(kept)
        pictures = [pictures[i] for i in chosen]
        encoded = [encoded[i] for i in chosen]
    for (entry, _), data in zip(pictures, encoded):
        name = f"images/{Path(entry['file']).stem}.jpg"
        packed[name] = data
        out_entries.append(
            {
                **entry,
                "file": name,
                "packed_as": {"format": "JPEG", "quality": quality, "subsampling": "4:4:4"},
                "packed_sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    out = {key: value for key, value in manifest.items() if key not in ("images", "videos")}
    out["images"] = out_entries
    out["counts"] = {
        "total": len(out_entries),
        "train": len(pictures),
        "heldout": len(held),
    }
    out["packed_from"] = {
        "manifest_version": manifest.get("version"),
        "training_jpeg_quality": quality,
        "training_images": {"packed": len(pictures), "of": len(train)},
        "videos": "left out",
    }
    return out, packed


def _proportional_order(entries: list[dict]) -> list[int]:
    """Indices of `entries` in the order a partial pack takes them: within each source
    package by sha256 of the file name, the packages interleaved by the fraction of
    each already taken, so any prefix holds every package in proportion."""
    groups: dict[str, list[int]] = {}
    for i, entry in enumerate(entries):
        groups.setdefault(entry.get("package", ""), []).append(i)
    keyed = []
    for members in groups.values():
        members.sort(key=lambda i: hashlib.sha256(Path(entries[i]["file"]).stem.encode()).digest())
        keyed += [((rank + 0.5) / len(members), i) for rank, i in enumerate(members)]
    return [i for _, i in sorted(keyed)]


def write(out: Path, manifest: dict, packed: dict[str, bytes]) -> None:
    """OUT/images/* and OUT/manifest.json, built in a temporary folder and renamed."""
    with files.atomic_folder(out) as building:
        (building / "images").mkdir()
        for name, data in packed.items():
            (building / name).write_bytes(data)
        (building / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jaxrestore.data.carry_pack",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--photos", default="", help="assembled photo set ('' = default)")
    parser.add_argument("--out", required=True, help="the folder to write (must not exist)")
    parser.add_argument("--budget-mb", type=float, default=40.0, help="size limit, MiB")
    parser.add_argument(
        "--heldout-count", type=int, default=None, help="held-out images kept (default: all)"
    )
    args = parser.parse_args(argv)
    photos = Path(args.photos).expanduser() if args.photos else sources.default_data_dir()
    try:
        if not (photos / "manifest.json").is_file():
            raise FileNotFoundError(
                f"{files.shown(photos)}: no assembled photo set "
                "(run `python -m jaxrestore.data.assemble`)"
            )
        version = json.loads((photos / "manifest.json").read_text()).get("version")
        if version != assemble.ASSEMBLY_VERSION:
            raise ValueError(
                f"{files.shown(photos)}: photo set version {version}, not this code's "
                f"{assemble.ASSEMBLY_VERSION} (run `python -m jaxrestore.data.assemble`)"
            )
        if args.budget_mb <= 0:
            raise ValueError(f"--budget-mb {args.budget_mb:g} must be > 0")
        if args.heldout_count is not None and args.heldout_count < 1:
            raise ValueError(f"--heldout-count {args.heldout_count} must be ≥ 1")
        manifest, packed = plan(photos, int(args.budget_mb * 2**20), args.heldout_count)
        write(Path(args.out), manifest, packed)
    except (OSError, ValueError) as error:
        print(f"jaxrestore.data.carry_pack: {error}", file=sys.stderr)
        return 1
    size = sum(map(len, packed.values())) / 2**20
    counts = {s: sum(e["split"] == s for e in manifest["images"]) for s in ("train", "heldout")}
    quality = manifest["packed_from"]["training_jpeg_quality"]
    of = manifest["packed_from"]["training_images"]["of"]
    some = f" of {of}" if of != counts["train"] else ""
    print(
        f"packed {counts['train']}{some} training images (JPEG {quality}, 4:4:4) and "
        f"{counts['heldout']} held-out (PNG), {size:.1f} MiB, into {files.shown(Path(args.out))}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(run())
