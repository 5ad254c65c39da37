"""Re-saved JPEGs: how `--quality auto` restores pictures compressed more than once.

    python -m jaxrestore.evaluation.resave [--images DIR] [--checkpoint ssim]
        [--cases 10,10-30s,10-50s,...] [--manual 5,10,15,20,30,40,50,75,90]
        [--crop 256] [--max-images N] [--json OUT]

Each original is saved as JPEG at QF1 (Pillow/libjpeg, 4:2:0), then — per case —
cropped by SHIFT pixels (so the 8×8 grids no longer align), optionally resized
(bicubic, as image tools do) and saved again at QF2 (or as PNG). The reference is
the original cropped and resized the same way. Every case is restored by the
generator as the restore command would restore the file: with `auto` (the QF
`Restorer.choose_quality` finds from the file: its tables, an earlier compression
seen through them, or the predictor), with the QF `auto` gave before it looked for
earlier compressions (the last save's tables; the predictor for a PNG), and with
each QF of `--manual`; the
table gives the PSNR of each (RGB, mean over images) and the best manual QF.

Cases: `Q` (one save at Q), `Q1-Q2s` (Q1, shifted, Q2), `Q1-rF-Q2` (Q1, shifted,
resized by F percent, Q2), `Q1-png` (Q1, shifted, saved losslessly).
The images: `--images DIR` (LIVE1, for instance), else the held-out photos.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from absl import logging
from PIL import Image

from jaxrestore import metrics
from jaxrestore.evaluation import protocol

DEFAULT_CASES = "10,10-30s,10-50s,10-75s,10-90s,30-50s,10-r75-90,10-r60-90,20-r90-75,10-png"
DEFAULT_MANUAL = "5,10,15,20,30,40,50,75,90"
SHIFT = (3, 5)  # rows, columns cropped before the second save


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    first: int
    second: int | None  # None: saved as PNG
    shift: bool
    scale: float | None

    @classmethod
    def parse(cls, text: str) -> Case:
        parts = text.split("-")
        try:
            if len(parts) == 1:
                return cls(text, int(parts[0]), None, False, None)
            first = int(parts[0])
            if parts[1] == "png":
                return cls(text, first, None, True, None)
            if parts[1].startswith("r"):
                return cls(text, first, int(parts[2]), True, int(parts[1][1:]) / 100)
            if parts[1].endswith("s"):
                return cls(text, first, int(parts[1][:-1]), True, None)
        except (ValueError, IndexError):
            pass
        raise ValueError(f"--cases: cannot read {text!r} (e.g. 10, 10-50s, 10-r75-90, 10-png)")

    def make(self, original: np.ndarray, folder: Path, stem: str) -> tuple[Path, np.ndarray]:
        """The degraded file (written in `folder`) and the reference it is scored on."""
        buffer = io.BytesIO()
        Image.fromarray(original).save(buffer, "JPEG", quality=self.first)
        once = np.asarray(Image.open(buffer).convert("RGB"))
        reference = original
        if self.shift:
            once, reference = once[SHIFT[0] :, SHIFT[1] :], original[SHIFT[0] :, SHIFT[1] :]
        if self.scale is not None:
            size = (round(once.shape[1] * self.scale), round(once.shape[0] * self.scale))
            once = np.asarray(Image.fromarray(once).resize(size, Image.BICUBIC))
            reference = np.asarray(Image.fromarray(reference).resize(size, Image.BICUBIC))
        if self.second is None and not self.shift:  # a single save
            path = folder / f"{stem}.jpg"
            path.write_bytes(buffer.getvalue())
        elif self.second is None:
            path = folder / f"{stem}.png"
            Image.fromarray(once).save(path)
        else:
            path = folder / f"{stem}.jpg"
            Image.fromarray(once).save(path, "JPEG", quality=self.second)
        return path, np.ascontiguousarray(reference)


def centre_crop(image: np.ndarray, side: int) -> np.ndarray:
    if not side:
        return image
    top = max(0, (image.shape[0] - side) // 2)
    left = max(0, (image.shape[1] - side) // 2)
    return image[top : top + side, left : left + side]


class _Scorer:
    """PSNR of `degraded` restored at a QF, each QF restored once."""

    def __init__(self, restorer, degraded: np.ndarray, reference: np.ndarray):
        self.restorer, self.degraded, self.reference = restorer, degraded, reference
        self.cache: dict[float, float] = {}

    def __call__(self, quality: float) -> float:
        if quality not in self.cache:
            restored = self.restorer.restore_pixels(self.degraded, quality)
            self.cache[quality] = float(metrics.psnr(restored, self.reference))
        return self.cache[quality]


def evaluate(
    restorer,
    images,
    cases: list[Case],
    manual: list[int],
    crop: int = 0,
    progress=None,
) -> list[dict]:
    """One row per case: mean PSNRs of the JPEG, of `auto`, of the last save's QF and
    of each manual QF, with the best manual QF and how `auto` chose."""
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for case in cases:
            scores: dict[str, list[float]] = {"jpeg": [], "auto": [], "last_save": []}
            scores.update({f"q{q}": [] for q in manual})
            chosen, befores, methods = [], [], {}
            for index in range(len(images)):
                original = centre_crop(images.load(index), crop)
                path, reference = case.make(original, folder, f"{index}")
                degraded = np.asarray(Image.open(path).convert("RGB"))
                choice = restorer.choose_quality("auto", degraded, path)
                chosen.append(choice.quality)
                methods[choice.method] = methods.get(choice.method, 0) + 1
                psnr_at = _Scorer(restorer, degraded, reference)
                scores["jpeg"].append(float(metrics.psnr(degraded, reference)))
                scores["auto"].append(psnr_at(choice.quality))
                # What auto gave before it looked for earlier compressions: the last
                # save's tables (or, for a PNG, the predictor).
                before = choice.last_save if choice.last_save is not None else choice.quality
                befores.append(before)
                scores["last_save"].append(psnr_at(float(before)))
                for q in manual:
                    scores[f"q{q}"].append(psnr_at(float(q)))
                if progress is not None:
                    progress.update(1)
            means = {key: float(np.mean(values)) for key, values in scores.items()}
            best = max(manual, key=lambda q: means[f"q{q}"])
            rows.append(
                {
                    "case": case.name,
                    "images": len(images),
                    "jpeg": means["jpeg"],
                    "last_save_qf": float(np.median(befores)),
                    "last_save": means["last_save"],
                    "auto": means["auto"],
                    "auto_qf_median": float(np.median(chosen)),
                    "auto_methods": methods,
                    "best_manual_qf": best,
                    "best_manual": means[f"q{best}"],
                    "manual": {q: means[f"q{q}"] for q in manual},
                }
            )
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| case | JPEG | auto before (last save's QF) | auto (QF, how) | best manual (QF) "
        "| auto gain | auto − best |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        how = ", ".join(f"{m} {n}" for m, n in sorted(row["auto_methods"].items()))
        lines.append(
            f"| {row['case']} | {row['jpeg']:.2f} | {row['last_save']:.2f} "
            f"(QF {round(row['last_save_qf'], 1):g}) | {row['auto']:.2f} "
            f"(QF {round(row['auto_qf_median'], 1):g}; "
            f"{how}) | {row['best_manual']:.2f} (QF {row['best_manual_qf']}) | "
            f"{row['auto'] - row['jpeg']:+.2f} | {row['auto'] - row['best_manual']:+.2f} |"
        )
    return "\n".join(lines)


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jaxrestore.evaluation.resave",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--images", default="", help="a folder of originals (default: held-out)")
    parser.add_argument("--data-dir", default="", help="assembled photo set ('' = default)")
    parser.add_argument("--checkpoint", default="ssim", help="generator: ssim, gan, run, export")
    parser.add_argument("--predictor", default="quality", help="quality predictor")
    parser.add_argument("--cases", default=DEFAULT_CASES)
    parser.add_argument("--manual", default=DEFAULT_MANUAL, help="QFs tried by hand")
    parser.add_argument("--crop", type=int, default=0, help="centre crops of this side (0: whole)")
    parser.add_argument("--max-images", type=int, default=0, help="the first N images (0: all)")
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--json", default="", help="also write the rows here")
    args = parser.parse_args(argv)
    logging.set_verbosity(logging.ERROR)
    import tqdm

    from jaxrestore import Restorer

    try:
        cases = [Case.parse(c) for c in args.cases.split(",") if c]
        manual = [int(q) for q in args.manual.split(",") if q]
        images = protocol.image_set(args.images, data_dir=args.data_dir, limit=args.max_images)
        restorer = Restorer.from_pretrained(args.checkpoint, args.predictor, tile=args.tile)
    except (FileNotFoundError, ValueError) as error:
        print(f"jaxrestore.evaluation.resave: {error}", file=sys.stderr)
        return 2
    with tqdm.tqdm(total=len(cases) * len(images), unit="image", disable=None) as bar:
        rows = evaluate(restorer, images, cases, manual, args.crop, bar)
    print(markdown(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(run())
