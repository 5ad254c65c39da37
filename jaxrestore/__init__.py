"""jaxrestore: compression-artifact removal for images and video in JAX/Flax.

    from jaxrestore import Restorer

    restorer = Restorer.from_pretrained("ssim")  # or "gan", a training workdir, an export
    restored = restorer.restore(pixels)            # uint8 array in, uint8 array out, any size
    restorer.restore_file("photo.jpg", "photo.png")

The names below are imported on first use, so `import jaxrestore` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "Restorer": "jaxrestore.inference.restorer",
    "Tiling": "jaxrestore.inference.restorer",
    "FileResult": "jaxrestore.inference.restorer",
    "QualityEstimator": "jaxrestore.inference.quality",
    "estimate_file": "jaxrestore.inference.quality",
}
__all__ = [
    "FileResult",
    "QualityEstimator",
    "Restorer",
    "Tiling",
    "__version__",
    "estimate_file",
]

if TYPE_CHECKING:
    from jaxrestore.inference.quality import QualityEstimator, estimate_file
    from jaxrestore.inference.restorer import FileResult, Restorer, Tiling


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'jaxrestore' has no attribute {name!r}")
