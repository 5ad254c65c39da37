"""Trained models at use time, for the commands and for Python callers.

    from jaxrestore import inference

    restorer = inference.Restorer("ssim", inference.QualityEstimator())
    restored, quality = restorer.restore(pixels, "auto", path="photo.jpg")
    inference.estimate_file("clip.mp4", inference.QualityEstimator())

- `loader`: one loader for a packaged name, a training workdir or an export;
- `quality`: the quality predictor and the one place a QF is chosen;
- `restorer`: the generator applied in tiles to images and video frames.
"""

from jaxrestore.inference.loader import PACKAGED, Model, load
from jaxrestore.inference.quality import QualityEstimator, choose, estimate_file
from jaxrestore.inference.restorer import Restorer, Tiling

__all__ = [
    "PACKAGED",
    "Model",
    "QualityEstimator",
    "Restorer",
    "Tiling",
    "choose",
    "estimate_file",
    "load",
]
