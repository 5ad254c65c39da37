"""The field's JPEG artifact-removal benchmark: LIVE1 colour and Classic5 grey.

    python -m jaxrestore.evaluation.benchmark [--live1 DIR] [--classic5 DIR]
        [--sets live1,classic5] [--checkpoint ssim] [--qualities 10,20,30,40]
        [--max-images N] [--json OUT] [--markdown OUT]

The protocol of the published tables (QGAC, FBCNN, JDEC, SwinIR): every original
is compressed by OpenCV's `imencode` (libjpeg's standard tables; 4:2:0 for
colour, one channel for Classic5) at each QF and written as a .jpg; that file is
restored by the restore path (`Restorer.restore_file`: the QF read from its
tables, the command's tiling, grey in → grey out, so Classic5 goes through the
same RGB model). Scores over the whole image, no border cropped, averaged over
images:

- colour: PSNR and SSIM on RGB (the published colour rows), PSNR-B on luma Y
  (BT.601 studio range), LPIPS (AlexNet);
- grey: PSNR, SSIM and PSNR-B on the grey values, LPIPS on the grey image as RGB.

The metrics' definitions are in `jaxrestore.metrics`. The images: `--live1` is
`testsets/LIVE1_color` (29 BMPs) and `--classic5` is `testsets/Classic5` (5)
of the FBCNN repository (github.com/jiaxi-jiang/FBCNN); the defaults are
~/.cache/jaxrestore/live1 and ~/.cache/jaxrestore/classic5. Evaluation only:
never train on them.

Weights whose model.json lists `evaluation_overlap` (images of these sets that
were in their training data: the packaged weights of assembly versions 2 and 3
saw LIVE1's parrots and monarch and Classic5's barbara, `gan` also its baboon)
get a second table per set, over the images they never saw; an image is matched
by its difference hash, whatever its file name.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from absl import logging
from PIL import Image

from jaxrestore import metrics

DEFAULT_QUALITIES = "10,20,30,40"
CACHE = Path.home() / ".cache" / "jaxrestore"
# Published RGB PSNR (dB) on LIVE1 colour at QF 10/20/30/40, the papers' own tables.
PEERS = {
    "QGAC (ECCV'20)": (27.65, 29.88, 31.17, 32.08),
    "FBCNN (ICCV'21)": (27.77, 30.11, 31.43, 32.34),
    "JDEC (CVPR'24)": (27.95, 30.26, 31.59, 32.50),
    "SwinIR (one model per QF)": (28.06, 30.45, 31.82, 32.75),
}
PEER_QUALITIES = (10, 20, 30, 40)
SCORES = ("psnr", "ssim", "psnr_b", "lpips")


@dataclasses.dataclass(frozen=True)
class TestSet:
    name: str
    grey: bool
    folder: Path

    def files(self, limit: int = 0) -> list[Path]:
        if not self.folder.is_dir():
            raise FileNotFoundError(
                f"{self.folder}: no {self.name} images here; copy them from the FBCNN "
                "repository's testsets/ (see --help)"
            )
        found = sorted(
            p for p in self.folder.iterdir() if p.suffix.lower() in (".bmp", ".png", ".tif")
        )
        if not found:
            raise FileNotFoundError(f"{self.folder}: no .bmp/.png/.tif images")
        return found[:limit] if limit else found


def encode(original: np.ndarray, quality: int) -> bytes:
    """OpenCV's JPEG at `quality` of an RGB [H, W, 3] or grey [H, W] uint8 image."""
    import cv2

    pixels = original if original.ndim == 2 else original[..., ::-1]  # OpenCV is BGR
    ok, data = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"OpenCV could not encode a JPEG at QF {quality}")
    return data.tobytes()


def scores(reference: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """PSNR, SSIM, PSNR-B and LPIPS of `test` against `reference` (see the module
    docstring for which channels)."""
    grey = reference.ndim == 2
    as_rgb = (lambda x: np.repeat(x[..., None], 3, -1)) if grey else (lambda x: x)
    found = metrics.full_reference(as_rgb(reference)[None], as_rgb(test)[None])
    result = {name: float(found[name][0]) for name in ("psnr", "ssim", "lpips")}
    if grey:
        pair = (reference[None, ..., None].astype(np.float32), test[None, ..., None])
        result["psnr_b"] = float(metrics.psnr_b(pair[0], pair[1].astype(np.float32))[0])
    else:
        result["psnr_b"] = float(found["psnr_b"][0])
    return result


def trained_on(files: list[Path], overlap: list[dict]) -> set[str]:
    """Names of `files` that are images a model trained on: within the assembly's
    duplicate distance of a difference hash in `overlap` (model.json's
    `evaluation_overlap`)."""
    from jaxrestore.data import assemble

    known = [(int(entry["dhash"], 16), entry) for entry in overlap]
    found = set()
    for path in files:
        with Image.open(path) as image:
            code = assemble.difference_hash(image)
        if assemble.same_photo(code, known) is not None:
            found.add(path.name)
    return found


def _means(per_image: list[dict]) -> dict:
    return {
        kind: {s: float(np.mean([r[kind][s] for r in per_image])) for s in SCORES}
        for kind in ("jpeg", "restored")
    }


def evaluate(
    restorer, test_set: TestSet, qualities, limit: int = 0, progress=None, overlap=()
) -> dict:
    """Per QF: the mean scores of the JPEG and of the restoration, the QFs `auto`
    read, and every image's numbers; with `overlap` (see `trained_on`), also the
    means over the images not trained on (`unseen`)."""
    files = test_set.files(limit)
    seen = trained_on(files, list(overlap)) if overlap else set()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for quality in qualities:
            per_image = []
            for path in files:
                with Image.open(path) as image:
                    original = np.asarray(image.convert("L" if test_set.grey else "RGB"))
                jpeg_path = folder / f"{path.stem}_q{quality}.jpg"
                jpeg_path.write_bytes(encode(original, quality))
                with Image.open(jpeg_path) as image:
                    compressed = np.asarray(image)
                out = folder / f"{path.stem}_q{quality}.png"
                result = restorer.restore_file(jpeg_path, out)
                with Image.open(out) as image:
                    restored = np.asarray(image)
                per_image.append(
                    {
                        "image": path.name,
                        "trained_on": path.name in seen,
                        "qf_used": result.quality,
                        "jpeg": scores(original, compressed),
                        "restored": scores(original, restored),
                    }
                )
                out.unlink()
                jpeg_path.unlink()
                if progress is not None:
                    progress.update(1)
            used = [r["qf_used"] for r in per_image if r["qf_used"] is not None]
            row = {
                "quality": quality,
                **_means(per_image),
                "qf_used_median": float(np.median(used)) if used else None,
            }
            unseen = [r for r in per_image if not r["trained_on"]]
            if seen and unseen:
                row["unseen"] = _means(unseen)
            rows.append({**row, "images": per_image})
    return {
        "set": test_set.name,
        "grey": test_set.grey,
        "count": len(files),
        "trained_on": sorted(seen),
        "rows": rows,
    }


def _score_rows(rows: list[dict], pick) -> list[str]:
    """Markdown lines `| QF | JPEG | restored | PSNR gain |` of `pick(row)` (a dict
    with 'jpeg' and 'restored' means)."""
    lines = []
    for row in rows:
        means = pick(row)
        cells = [
            " / ".join(f"{means[kind][s]:.{3 if s in ('ssim', 'lpips') else 2}f}" for s in SCORES)
            for kind in ("jpeg", "restored")
        ]
        gain = means["restored"]["psnr"] - means["jpeg"]["psnr"]
        lines.append(f"| {row['quality']} | {cells[0]} | {cells[1]} | {gain:+.2f} |")
    return lines


def markdown(results: list[dict], label: str) -> str:
    """One table per set: JPEG and restored PSNR / SSIM / PSNR-B / LPIPS per QF;
    LIVE1 adds the published PSNR of the peers at their QFs."""
    blocks = []
    for result in results:
        header = (
            f"**{result['set']}** ({result['count']} image{'s' if result['count'] != 1 else ''}"
            f"{', grey' if result['grey'] else ', colour'}), {label}; PSNR / SSIM / PSNR-B "
            "/ LPIPS\n\n| QF | JPEG | restored | PSNR gain |\n|---|---|---|---|"
        )
        blocks.append("\n".join([header, *_score_rows(result["rows"], lambda row: row)]))
        seen = result.get("trained_on", [])
        if seen and len(seen) == result["count"]:
            blocks.append(
                f"All {len(seen)} of these images were in {label}'s training data: "
                "no row over unseen images."
            )
        elif seen:
            unseen = result["count"] - len(seen)
            blocks.append(
                "\n".join(
                    [
                        f"{len(seen)} of these {result['count']} images ({', '.join(seen)}) "
                        f"{'was' if len(seen) == 1 else 'were'} in {label}'s training data; "
                        f"over the other {unseen}:\n",
                        "| QF | JPEG | restored | PSNR gain |",
                        "|---|---|---|---|",
                        *_score_rows(result["rows"], lambda row: row["unseen"]),
                    ]
                )
            )
        if result["set"] == "LIVE1" and any(r["quality"] in PEER_QUALITIES for r in result["rows"]):
            ours = {r["quality"]: r for r in result["rows"]}
            shown = [q for q in PEER_QUALITIES if q in ours]
            peer = [f"| RGB PSNR on LIVE1 | {' | '.join(f'QF {q}' for q in shown)} |"]
            peer.append("|---|" + "---|" * len(shown))
            peer.append(
                "| JPEG | " + " | ".join(f"{ours[q]['jpeg']['psnr']:.2f}" for q in shown) + " |"
            )
            peer.append(
                f"| jaxrestore {label} | "
                + " | ".join(f"{ours[q]['restored']['psnr']:.2f}" for q in shown)
                + " |"
            )
            for name, values in PEERS.items():
                row = dict(zip(PEER_QUALITIES, values))
                peer.append(f"| {name} | " + " | ".join(f"{row[q]:.2f}" for q in shown) + " |")
            blocks.append("\n".join(peer))
    return "\n\n".join(blocks)


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jaxrestore.evaluation.benchmark",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--live1", default=str(CACHE / "live1"), help="LIVE1 colour folder")
    parser.add_argument("--classic5", default=str(CACHE / "classic5"), help="Classic5 folder")
    parser.add_argument("--sets", default="live1,classic5", help="which sets, in order")
    parser.add_argument("--checkpoint", default="ssim", help="ssim, gan, a run or an export")
    parser.add_argument("--qualities", default=DEFAULT_QUALITIES)
    parser.add_argument("--max-images", type=int, default=0, help="the first N of each (0: all)")
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--json", default="", help="write every number here")
    parser.add_argument("--markdown", default="", help="write the tables here")
    args = parser.parse_args(argv)
    logging.set_verbosity(logging.ERROR)
    import tqdm

    from jaxrestore import Restorer

    known = {
        "live1": TestSet("LIVE1", False, Path(args.live1).expanduser()),
        "classic5": TestSet("Classic5", True, Path(args.classic5).expanduser()),
    }
    try:
        chosen = [name.strip().lower() for name in args.sets.split(",") if name.strip()]
        unknown = [name for name in chosen if name not in known]
        if unknown or not chosen:
            raise ValueError(f"--sets {args.sets!r}: choose from live1, classic5")
        qualities = [int(q) for q in args.qualities.split(",") if q.strip()]
        if not qualities or not all(1 <= q <= 100 for q in qualities):
            raise ValueError(f"--qualities {args.qualities!r}: QFs in 1..100")
        sets = [known[name] for name in chosen]
        count = sum(len(s.files(args.max_images)) for s in sets)
        restorer = Restorer.from_pretrained(args.checkpoint, tile=args.tile)
    except (FileNotFoundError, ValueError) as error:
        print(f"jaxrestore.evaluation.benchmark: {error}", file=sys.stderr)
        return 2
    overlap = (restorer.model.export_info or {}).get("evaluation_overlap", [])
    results = []
    with tqdm.tqdm(total=count * len(qualities), unit="image", disable=None) as bar:
        for test_set in sets:
            results.append(evaluate(restorer, test_set, qualities, args.max_images, bar, overlap))
    table = markdown(results, args.checkpoint)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    if args.json:
        info = {"checkpoint": args.checkpoint, "results": results}
        Path(args.json).write_text(json.dumps(info, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(run())
