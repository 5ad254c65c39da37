"""The grain input pipeline: image → random patch → degrade at a random strength → batch.

Each sample draws its degradation from `config.data.degradations` (a weighted
list of `degrade.KINDS`; 'jpeg' alone by default): JPEG, double JPEG, chroma
subsampling variants, and H.264 / MPEG-2 on a single patch or on a short clip cut
from the assembled videos (`config.data.videos`). Every sample carries its
JPEG-scale `quality` label (see `degrade`).

Decoding, cropping and compression run in grain worker processes
(`config.data.workers`; 0 keeps them in the main process). The whole stream is a
function of `config.seed` and the step: grain derives each element's generator
from the seed and the element's index, and the iterator state (saved with every
checkpoint) is just a position, so a resumed run sees the very same batches.
"""

from __future__ import annotations

import collections
import dataclasses

import grain
import numpy as np
from absl import flags
from PIL import Image

from jaxrestore.data import degrade, sources

# Rescaling keeps the margin double JPEG needs to shift its grid.
RESCALE_MARGIN = degrade.DOUBLE_JPEG_MARGIN


class CropAndCompress(grain.transforms.RandomMap):
    """Make one training pair from the index of an image in `images`.

    A clip degradation ignores the image and crops a clip of `clips` instead."""

    def __init__(
        self,
        images: sources.ImageSet,
        patch_size: int,
        quality_min: int,
        quality_max: int,
        flip: bool,
        cache_images: int,
        rotate: bool = False,
        degradations: str = "jpeg",
        ranges: degrade.Ranges | None = None,
        clips: sources.ClipSet | None = None,
        scale_min: float = 1.0,
    ):
        if not 0.25 <= scale_min <= 1.0:
            raise ValueError(f"config.data.scale_min={scale_min}: expected a value in [0.25, 1]")
        self.images = images
        self.scale_min = float(scale_min)
        self.patch_size = patch_size
        ranges = ranges or degrade.Ranges()
        ranges = dataclasses.replace(ranges, quality_min=quality_min, quality_max=quality_max)
        self.mix = degrade.DegradationMix(degradations, ranges)
        if self.mix.needs_clips and (clips is None or len(clips) == 0):
            raise ValueError(
                f"config.data.degradations={degradations!r} needs video clips "
                "(config.data.videos; `python -m jaxrestore.data.assemble` makes them)"
            )
        self.clips = clips
        self.flip = flip
        self.rotate = rotate
        self.cache_images = cache_images
        self._cache: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()

    def _image(self, index: int) -> np.ndarray:
        # Decoding a whole photo costs ~100× a patch's crop and JPEG round trip; each
        # worker keeps the most recently used decoded images.
        image = self._cache.get(index)
        if image is None:
            image = self.images.load(index)
            if self.cache_images > 0:
                self._cache[index] = image
                if len(self._cache) > self.cache_images:
                    self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(index)
        return image

    def _rescaled_window(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random region of `image` shrunk by a random factor in [scale_min, 1]
        (area-averaging Lanczos), large enough for the patch and its margin."""
        scale = float(rng.uniform(self.scale_min, 1.0))
        height, width = image.shape[:2]
        side = self.patch_size + RESCALE_MARGIN
        source = min(int(np.ceil(side / scale)), height, width)
        side = max(min(side, int(source * scale)), min(self.patch_size, source))
        top = int(rng.integers(0, height - source + 1))
        left = int(rng.integers(0, width - source + 1))
        region = Image.fromarray(image[top : top + source, left : left + source])
        return np.asarray(region.resize((side, side), Image.Resampling.LANCZOS))

    def _orient(self, patch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Random flip / 90° turn of the last-but-one two axes ([..., H, W, C])."""
        if self.flip and rng.random() < 0.5:
            patch = patch[..., ::-1, :]
        if self.rotate:  # with flips: all 8 orientations of the square patch
            patch = np.rot90(patch, k=int(rng.integers(0, 4)), axes=(-3, -2))
        return np.ascontiguousarray(patch)

    def random_map(self, index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        kind = self.mix.draw(rng)
        size = self.patch_size
        if kind in degrade.CLIP_KINDS:
            clip = self.clips.random_crop(size, self.mix.ranges.clip_frames, rng)
            degraded, target, quality = self.mix.clip_pair(kind, self._orient(clip, rng), rng)
        else:
            image = self._image(int(index))
            if self.scale_min < 1.0 and min(image.shape[:2]) >= size:
                image = self._rescaled_window(image, rng)
            height, width = image.shape[:2]
            if height < size or width < size:
                name = self.images.name(int(index))
                raise ValueError(f"{name}: {width}x{height} is smaller than the {size}px patch")
            top = int(rng.integers(0, height - size + 1))
            left = int(rng.integers(0, width - size + 1))

            def window(extra: int) -> np.ndarray:
                # The patch grown by up to `extra` pixels (double JPEG's shifted grid),
                # as far as the image allows, in one random orientation.
                extra = min(extra, height - size, width - size)
                y, x = min(top, height - size - extra), min(left, width - size - extra)
                return self._orient(image[y : y + size + extra, x : x + size + extra], rng)

            degraded, target, quality = self.mix.photo_pair(kind, window, size, rng)
        return {
            "degraded": degraded,
            "target": target,
            "quality": np.int32(quality),
            "kind": np.int32(degrade.KINDS.index(kind)),
        }


def process_shard(num_images: int, process_index: int, process_count: int) -> list[int]:
    """Indices of the training images process `process_index` reads (disjoint slices)."""
    return list(range(process_index, num_images, process_count))


def make_train_dataset(
    config,
    process_index: int = 0,
    process_count: int = 1,
    images: sources.ImageSet | None = None,
) -> grain.IterDataset:
    """The infinite training stream of this process: batches of its share of the batch.

    `images`: the training split of `config.data`, when the caller has resolved it."""
    data = config.data
    if config.batch_size % process_count:
        raise ValueError(
            f"config.batch_size={config.batch_size} does not divide over {process_count} processes"
        )
    if images is None:
        images = sources.resolve(data)["train"]
    clips = None
    if degrade.DegradationMix(
        data.get("degradations", "jpeg"), degrade.Ranges.from_config(data)
    ).needs_clips:
        clips = sources.resolve_clips(data)["train"]
    # Each process reads a disjoint slice of the images.
    shard = process_shard(len(images), process_index, process_count)
    if not shard:
        raise ValueError(f"process {process_index}: no training images in its shard")
    dataset = (
        grain.MapDataset.source(shard)
        .seed(config.seed)
        .shuffle()
        .repeat()
        .random_map(
            CropAndCompress(
                images,
                data.patch_size,
                data.quality_min,
                data.quality_max,
                data.flip,
                data.cache_images,
                data.rotate,
                data.get("degradations", "jpeg"),
                degrade.Ranges.from_config(data),
                clips,
                data.get("scale_min", 1.0),
            )
        )
        .batch(config.batch_size // process_count, drop_remainder=True)
        .to_iter_dataset()
    )
    if data.workers > 0:
        # grain's workers read absl flags; outside an absl app (tests, notebooks) use defaults.
        if not flags.FLAGS.is_parsed():
            flags.FLAGS.mark_as_parsed()
        dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=data.workers))
    return dataset
