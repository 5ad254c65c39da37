"""Shared fixtures: tiny configs on the embedded images, no download needed."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for `from configs import ...`
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Every test (and every `jaxrestore.main` it starts) sees 8 CPU devices, so the
# sharded code paths run as on an 8-accelerator host.
os.environ.setdefault("JAX_NUM_CPU_DEVICES", "8")


@pytest.fixture
def tiny_config():
    from configs import ssim

    return ssim.get_config("tiny")
