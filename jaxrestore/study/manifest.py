"""study.json: what a study shows, written by `prepare`, read by `serve` and `report`.

    {"format": 1, "created": ISO time, "seed": int, "codec": "jpeg"|"h264"|"mpeg2",
     "qualities": [QF or CRF/quantiser, ...], "methods": {name: checkpoint path},
     "pairs": [[A, B], ...],
     "items": {name: {"source": path, "frame": k or null, "crop": [x, y, w, h],
                      "images": {"original": file, "<quality>": {version: file}}}},
     "trials": [{"id", "item", "quality", "a", "b", "left", "right"}, ...],
     "frames_per_video": N, "command": [argv]}

A video gives the items NAME#0 .. NAME#N-1, its N frames spread evenly from the
first to the last (media.video.sample_frames); "frame" is that k.

Versions are "compressed" and the method names; image files are PNGs in images/
under opaque names (design.image_name).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from jaxrestore.study import design

FILENAME = "study.json"
IMAGES = "images"
FORMAT = 1


@dataclasses.dataclass
class Study:
    """A prepared study folder and its manifest."""

    folder: Path
    manifest: dict

    @classmethod
    def load(cls, folder: str | Path) -> Study:
        folder = Path(folder)
        path = folder / FILENAME
        if not path.is_file():
            raise ValueError(f"{folder}: not a study folder (no {FILENAME}; run prepare first)")
        try:
            manifest = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: cannot read the manifest ({error})") from None
        if manifest.get("format") != FORMAT:
            raise ValueError(f"{path}: manifest format {manifest.get('format')}, expected {FORMAT}")
        return cls(folder, manifest)

    @property
    def seed(self) -> int:
        return int(self.manifest["seed"])

    @property
    def qualities(self) -> list[int]:
        return list(self.manifest["qualities"])

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [tuple(pair) for pair in self.manifest["pairs"]]

    @property
    def trials(self) -> list[design.Trial]:
        return [trial_from_json(entry) for entry in self.manifest["trials"]]

    def trial(self, trial_id: str) -> design.Trial:
        for entry in self.manifest["trials"]:
            if entry["id"] == trial_id:
                return trial_from_json(entry)
        raise KeyError(trial_id)

    def image(self, item: str, quality: int | None, version: str) -> str:
        """The file name of one picture (quality None: the original)."""
        images = self.manifest["items"][item]["images"]
        return images[design.ORIGINAL] if quality is None else images[str(quality)][version]

    @property
    def image_dir(self) -> Path:
        return self.folder / IMAGES


def trial_to_json(trial: design.Trial) -> dict:
    return {
        "id": trial.id,
        "item": trial.item,
        "quality": trial.quality,
        "a": trial.pair[0],
        "b": trial.pair[1],
        "left": trial.left,
        "right": trial.right,
    }


def trial_from_json(entry: dict) -> design.Trial:
    pair = (entry["a"], entry["b"])
    return design.Trial(
        entry["id"], entry["item"], int(entry["quality"]), pair, entry["left"] == pair[0]
    )


def write(folder: Path, manifest: dict) -> None:
    (folder / FILENAME).write_text(json.dumps(manifest, indent=1) + "\n")
