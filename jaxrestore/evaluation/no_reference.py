"""No-reference image quality: BRISQUE, from the `brisque` package (the `eval` extra).

Lower is better. The scorer needs no original: the evaluation scores the
originals, the compressed and the restored images with it.
"""

from __future__ import annotations

import numpy as np

from jaxrestore.evaluation.task_models import INSTALL_HINT


def brisque_scorer():
    """(a BRISQUE scorer with `.score(rgb) -> float`, None) or (None, why it is missing)."""
    try:
        from brisque import BRISQUE
    except ImportError as error:
        return None, f"brisque not installed ({error.name}); {INSTALL_HINT}"

    class Scorer(BRISQUE):
        # brisque 0.2.0 keeps some features as 1-element arrays, which NumPy ≥ 2.4
        # refuses to turn into floats; hand it plain floats.
        def scale_features(self, features):
            flat = [float(np.ravel(np.asarray(f, np.float64))[0]) for f in features]
            return super().scale_features(np.array(flat))

    return Scorer(url=False), None
