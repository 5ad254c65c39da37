r"""The quality predictor: the JPEG quality factor (QF) of an image or frame.

Trained with the main command on the same pipeline as the generators, over QF
5–95 with single and double JPEG, the chroma subsampling variants and H.264 /
MPEG-2 frames (intra-coded patches, and inter-coded frames of clips cut from the
assembled videos) labelled with their JPEG-equivalent QF, and untouched patches
(QF 100):
  python -m jaxrestore.main --config configs/quality.py:cpu
Evaluated on the held-out photos saved as JPEG at QF 10, 20, …, 90: mean
absolute error per QF (eval/quality_mae_qN in metrics.jsonl).

Use: `python -m jaxrestore.estimate_quality FILE...` (a JPEG file's quantisation
tables give its QF exactly; the network serves decoded frames and re-saves).
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = arg or "default"
    config = ml_collections.ConfigDict()
    config.variant = variant
    config.stage = "quality"
    config.seed = 0
    config.total_steps = 6_000
    config.batch_size = 32
    config.init_from = ""

    config.data = ml_collections.ConfigDict()
    config.data.source = "photos"
    config.data.dir = ""
    config.data.train_split = "train"
    config.data.heldout_split = "heldout"
    config.data.image_key = "image"
    config.data.patch_size = 128  # 256 8×8 blocks per patch
    # Not `resave`: trained with it (resave:3, the `cpu` budget) the predictor still
    # reads the last save's lattice on a re-saved JPEG (QF 90 for QF 10 → 0.75× →
    # 90) and its held-out error on single saves doubled (0.10 → 0.23 QF); re-saves
    # are found from the earlier compression's own lattice (inference/quality.py).
    config.data.degradations = "jpeg:6,chroma:2,double_jpeg:1,h264:1,mpeg2:1,h264_clip:1,none:1"
    config.data.quality_min = 5
    config.data.quality_max = 95
    config.data.crf_min = 20
    config.data.crf_max = 45
    config.data.mpeg2_min = 2
    config.data.mpeg2_max = 31
    config.data.clip_frames = 6
    config.data.videos = ""
    config.data.flip = False  # flips and turns would move the 8×8 grid of odd crops
    config.data.rotate = False
    config.data.workers = 4
    config.data.cache_images = 512

    config.model = ml_collections.ConfigDict()
    config.model.features = 16
    config.model.hidden = 128

    config.optimizer = ml_collections.ConfigDict()
    config.optimizer.learning_rate = 2e-3
    config.optimizer.warmup_steps = 200
    config.optimizer.end_learning_rate_fraction = 0.01
    config.optimizer.b1 = 0.9
    config.optimizer.b2 = 0.999
    config.optimizer.weight_decay = 0.0
    config.optimizer.grad_clip_norm = 10.0

    config.mesh = ml_collections.ConfigDict()
    config.mesh.data = -1
    config.mesh.cpu_devices = 0

    config.eval = ml_collections.ConfigDict()
    config.eval.qualities = (10, 20, 30, 40, 50, 60, 70, 80, 90)
    config.eval.max_images = 0
    config.eval.every_steps = 2_000
    config.eval.lpips = False
    config.eval.at_start = False

    config.log_every_steps = 100
    config.checkpoint_every_steps = 500
    config.keep_checkpoints = 3
    # A step whose loss or gradient is not finite never updates the state; 'stop' ends
    # the run naming it, 'skip' goes on and counts it (at most max_skipped_steps).
    config.nonfinite = "stop"
    config.max_skipped_steps = 100

    if variant == "cpu":
        config.total_steps = 1_500
        config.batch_size = 16
        config.data.workers = 0
        config.mesh.cpu_devices = 8
        config.eval.every_steps = 1_500
        config.log_every_steps = 50
        config.checkpoint_every_steps = 250
    elif variant == "tiny":
        config.total_steps = 60
        config.batch_size = 8
        config.optimizer.learning_rate = 1e-2
        config.optimizer.warmup_steps = 2
        config.data.source = "embedded"
        config.data.patch_size = 64
        config.data.degradations = "jpeg:8,double_jpeg:1,h264:1"  # no clips in the test data
        config.data.workers = 0
        config.model.features = 4
        config.model.hidden = 16
        config.eval.qualities = (20, 80)
        config.eval.every_steps = 60
        config.log_every_steps = 10
        config.checkpoint_every_steps = 20
    elif variant != "default":
        raise ValueError(f"configs/quality.py: unknown variant {variant!r} (default, cpu, tiny)")
    return config
