import subprocess
import sys

import pytest
from helpers import ROOT

from jaxrestore.training import config_check, configs

VARIANTS = [
    (
        "ssim",
        ("default", "cpu", "universal", "universal_cpu", "universal_unet", "universal_unet_cpu")
        + ("h264", "h264_cpu", "tiny"),
    ),
    ("gan", ("default", "cpu", "universal", "universal_cpu", "universal_unet", "tiny")),
    ("quality", ("default", "cpu")),
]


@pytest.mark.parametrize(
    "stage,variant", [(s, v) for s, variants in VARIANTS for v in variants], ids=str
)
def test_every_shipped_variant_is_valid(stage, variant):
    config = configs.load(stage if variant == "default" else f"{stage}:{variant}")
    assert config_check.problems(config, configs.reference(config.stage)) == []


@pytest.mark.parametrize(
    "stage,changes,expected",
    [
        ("ssim", {"data.quality_max": 120}, "data.quality_max=120 is outside 1..100"),
        ("ssim", {"data.quality_min": 0}, "data.quality_min=0 is outside 1..100"),
        ("ssim", {"data.quality_min": 50, "data.quality_max": 40}, "quality_min=50 is above"),
        ("ssim", {"data.patch_size": 8}, "data.patch_size=8 must be ≥ 16"),
        ("ssim", {"data.patch_size": 36}, "data.patch_size=36 must be a multiple of 8"),
        ("ssim", {"data.crf_max": 60}, "data.crf_max=60 is outside 0..51"),
        ("ssim", {"batch_size": 0}, "batch_size=0 must be ≥ 1"),
        ("ssim", {"batch_size": 10, "mesh.data": 4}, "batch_size=10 does not divide over"),
        ("ssim", {"optimizer.learning_rate": 0.0}, "optimizer.learning_rate=0.0 must be > 0"),
        ("ssim", {"data.degradations": "jpeg,webp"}, "unknown kind 'webp'"),
        ("ssim", {"data.degradations": "jpeg:0"}, "no kind with a positive weight"),
        ("ssim", {"eval.qualities": (10, 101)}, "eval.qualities has 101, outside 1..100"),
        ("ssim", {"nonfinite": "ignore"}, "nonfinite='ignore' is not one of stop, skip"),
        ("ssim", {"model.dtype": "float16"}, "model.dtype='float16' is not one of"),
        ("ssim", {"model.arch": "vit"}, "model.arch='vit' is not one of residual, unet"),
        (
            "ssim",
            {"model.arch": "unet", "model.channel_mults": (1, 0)},
            "model.channel_mults=(1, 0) must be 1 to 5 integers ≥ 1",
        ),
        (
            "ssim",
            {"model.arch": "unet", "model.channel_mults": (1, 2), "model.scale_blocks": (2, 1, 1)},
            "model.scale_blocks=(2, 1, 1) must be empty (num_blocks at every scale) or one "
            "integer ≥ 1 per scale of model.channel_mults=(1, 2)",
        ),
        (
            "ssim",
            {"model.arch": "unet", "model.channel_mults": (1, 2), "model.scale_blocks": (2, 0)},
            "model.scale_blocks=(2, 0) must be empty",
        ),
        ("ssim", {"init_from": "/no/such/run"}, "init_from='/no/such/run' does not exist"),
        ("gan", {"discriminator.sub_patch": 64}, "sub_patch=64 must tile data.patch_size=32"),
        ("gan", {"discriminator.sub_patch": 12}, "sub_patch=12 must be a power of two"),
        ("gan", {"gan.loss": "wgan"}, "gan.loss='wgan' is not one of bce, hinge"),
        ("gan", {"gan.perceptual_layers": ("relu9_9",)}, "['relu9_9'], not among"),
        ("quality", {"model.hidden": 0}, "model.hidden=0 must be ≥ 1"),
    ],
)
def test_bad_values_are_named(stage, changes, expected):
    config = configs.load(f"{stage}:tiny" if stage != "quality" else "quality:cpu")
    for name, value in changes.items():
        *parents, key = name.split(".")
        target = config
        for parent in parents:
            target = target[parent]
        with target.unlocked():
            target[key] = value
    found = config_check.problems(config, configs.reference(stage))
    assert len(found) == 1 and expected in found[0], found


def test_video_kinds_without_pyav_are_named_before_training(monkeypatch):
    """A bare image without PyAV (e.g. a lent GPU machine): the video kinds are named at
    the start, not by a worker's traceback once the first video sample is drawn."""
    config = configs.load("ssim:universal_unet_cpu")
    reference = configs.reference("ssim")
    assert config_check.problems(config, reference) == []
    monkeypatch.setitem(sys.modules, "av", None)  # how Python marks a module unimportable
    (found,) = config_check.problems(config, reference)
    assert found.startswith("data.degradations has h264, h264_clip, mpeg2, mpeg2_clip, which")
    assert "pip install av" in found
    config.data.degradations = "jpeg:6,double_jpeg:2,chroma:2,resave:3,h264:0"
    assert config_check.problems(config, reference) == []


def test_unknown_and_missing_fields_against_the_reference():
    config = configs.load("ssim:tiny")
    reference = configs.reference("ssim")
    with config.unlocked():
        config.data.qualty_min = 5  # a typo in a hand-written config
        del config["nonfinite"]
    assert config_check.problems(config, reference) == [
        "unknown field data.qualty_min",
        "missing field nonfinite",
    ]
    # Fields of another stage are unknown to this one.
    assert "unknown field discriminator.channels" in config_check.problems(
        configs.load("gan:tiny"), reference
    )
    with pytest.raises(config_check.ConfigError, match="^invalid config: unknown field"):
        config_check.validate(config, reference)


@pytest.mark.parametrize(
    "override,message",
    [
        (
            "--config.batchsize=8",
            "jaxrestore.main: --config: no field 'batchsize' "
            '(Did you mean "batch_size" instead of "batchsize"?)',
        ),
        (
            "--config.data.quality_max=120",
            "jaxrestore.main: configs/ssim.py: invalid config: data.quality_max=120 is "
            "outside 1..100",
        ),
    ],
)
def test_main_rejects_a_bad_config_in_one_line(tmp_path, override, message):
    workdir = tmp_path / "run"
    command = [sys.executable, "-m", "jaxrestore.main", "--config", "configs/ssim.py:tiny"]
    result = subprocess.run(
        [*command, "--workdir", str(workdir), override],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [message]
    assert not workdir.exists()  # nothing was written
