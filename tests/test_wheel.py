"""The wheel: built with `python -m build`, checked by twine, installed into a fresh
venv outside the checkout, restoring an image with its console script."""

import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from helpers import ROOT
from PIL import Image

import jaxrestore

pytest.importorskip("build", reason="pip install build twine (the test extra)")
pytest.importorskip("twine", reason="pip install build twine (the test extra)")

SOURCES = ("pyproject.toml", "README.md", "jaxrestore", "configs")


def run(*command, cwd, env=None):
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-3000:])
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel `python -m build` makes of the project (the sdist beside it).
    Built from a copy of what the distribution is made of, so the checkout gets no
    build/ or egg-info."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy(ROOT / name, source / name)
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--outdir", dist, source, cwd=tmp_path)
    (wheel,) = dist.glob("*.whl")
    return wheel


def test_wheel_holds_weights_templates_and_configs_and_passes_twine(wheel):
    assert wheel.name == f"jaxrestore-{jaxrestore.__version__}-py3-none-any.whl"
    run(
        sys.executable,
        "-m",
        "twine",
        "check",
        "--strict",
        *wheel.parent.iterdir(),
        cwd=wheel.parent,
    )

    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {str(p.parent.relative_to(ROOT)) for p in (ROOT / "jaxrestore").rglob("__init__.py")}
    assert {f"{p}/__init__.py" for p in packages} <= names  # no subpackage left out
    for config in (ROOT / "configs").glob("*.py"):
        assert f"jaxrestore/configs/{config.name}" in names
    for model in ("ssim_universal", "gan_universal", "quality"):
        assert f"jaxrestore/weights/{model}/model.json" in names
        assert any(n.startswith(f"jaxrestore/weights/{model}/params/") for n in names)
    assert "jaxrestore/study/templates/trial.html" in names


@pytest.mark.skipif(
    os.environ.get("JAXRESTORE_SLOW_TESTS") != "1",
    reason="about 5 minutes on 2 cores (a fresh venv gets every dependency); the wheel's "
    "contents are checked above; set JAXRESTORE_SLOW_TESTS=1 to run it",
)
def test_wheel_installs_outside_the_checkout_and_restores(wheel, tmp_path, photo):
    # A fresh venv far from the checkout; nothing of the checkout on its path (pip too
    # would take a jaxrestore on PYTHONPATH for the one to install).
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["JAX_PLATFORMS"] = "cpu"
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path, env=env)
    run(venv / "bin" / "python", "-m", "pip", "install", "-q", wheel, cwd=tmp_path, env=env)
    work = tmp_path / "work"
    work.mkdir()
    Image.fromarray(photo[:96, :128]).save(work / "photo.jpg", quality=20)
    shown = run(venv / "bin" / "jaxrestore-restore", "--version", cwd=work, env=env)
    assert shown.split()[-1] == jaxrestore.__version__
    run(
        venv / "bin" / "jaxrestore-restore", "photo.jpg", "--output", "photo.png", cwd=work, env=env
    )
    restored = np.asarray(Image.open(work / "photo.png"))
    compressed = np.asarray(Image.open(work / "photo.jpg"))
    assert restored.shape == compressed.shape == (96, 128, 3)
    assert 0 < np.abs(restored.astype(int) - compressed).mean() < 10
    where = run(
        venv / "bin" / "python",
        "-c",
        "import jaxrestore, jaxrestore.training.configs as c; "
        "print(jaxrestore.__file__); print(c.load('ssim:tiny').model.channels)",
        cwd=work,
        env=env,
    ).split()
    assert where[0].startswith(str(venv)) and where[1] == "8"  # the wheel's own configs
