"""The training stages, by the name `config.stage` gives (see `base.Stage`).

    ssim     stage 1: the generator alone, for SSIM
    gan      stage 2: the generator against a conditional sub-patch discriminator
    quality  the quality predictor

A new stage is one module defining its `STAGE`, added here, and its config file.
"""

from __future__ import annotations

from jaxrestore.training.stages import gan, quality, ssim
from jaxrestore.training.stages.base import Stage

STAGES: dict[str, Stage] = {stage.name: stage for stage in (ssim.STAGE, gan.STAGE, quality.STAGE)}


def get(name: str) -> Stage:
    """The stage called `name`; ValueError naming the known ones otherwise."""
    if name not in STAGES:
        raise ValueError(f"config.stage={name!r}: expected one of {', '.join(STAGES)}")
    return STAGES[name]
