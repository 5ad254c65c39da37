"""Trained models at use time, for the commands and for Python callers.

    from jaxrestore import inference

    restorer = inference.Restorer.from_pretrained("ssim")  # with the packaged predictor
    restored = restorer.restore(pixels, "auto", path="photo.jpg")
    restorer.restore_file("clip.mp4", "clip_restored.mp4")
    inference.estimate_file("clip.mp4", inference.QualityEstimator())

(`from jaxrestore import Restorer` is the same class.)

- `loader`: one loader for a packaged name, a training workdir or an export;
- `quality`: the quality predictor and the one place a QF is chosen;
- `restorer`: the generator applied in tiles to images and video frames.
"""

from jaxrestore.inference.loader import PACKAGED, Model, load
from jaxrestore.inference.quality import QualityEstimator, choose, estimate_file
from jaxrestore.inference.restorer import FileResult, Restorer, Tiling

__all__ = [
    "PACKAGED",
    "FileResult",
    "Model",
    "QualityEstimator",
    "Restorer",
    "Tiling",
    "choose",
    "estimate_file",
    "load",
]
