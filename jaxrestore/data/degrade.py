"""Host-side degradations that make the compressed side of a training pair.

Still-image codecs: JPEG at a quality factor (QF, libjpeg's 1–100 scale) with
4:2:0, 4:2:2 or 4:4:4 chroma, double JPEG (two qualities, the second 8×8 grid
shifted against the first), and `resave`: the chain most pictures people have
went through — JPEG, then cropped (grid shifted), often resized (0.5–1×,
bicubic, bilinear or Lanczos as image tools do), then saved again as JPEG or
WebP at a higher quality, or as PNG. Video codecs through PyAV's FFmpeg: H.264
(libx264 at a constant rate factor, CRF) and MPEG-2 (a fixed quantiser scale),
either on one frame (intra coding) or on a short clip (motion-compensated
inter frames, the artifacts of real video).

Every function is deterministic: the same input and parameters give the same
bytes (libx264 runs single-threaded for that), so a training stream stays a
function of its seed. `DegradationMix` draws one degradation per sample from
the config's weighted list.

The `quality` label of a pair is on the JPEG QF scale for every degradation,
so one quality predictor and one QF-conditioned generator serve them all:
the QF itself for a single JPEG, and for the others the JPEG-equivalent QF —
the QF at which a plain JPEG of the same target has the closest PSNR. The kind
`none` passes the patch through untouched, labelled QF 100, so the predictor
learns what a pristine picture looks like.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from fractions import Fraction

import numpy as np

from jaxrestore import metrics

try:  # libjpeg-turbo, 2–3× faster than Pillow per patch; Pillow writes the same bytes
    import imagecodecs
except ImportError:  # pragma: no cover - a minimal install (e.g. a bare GPU image)
    imagecodecs = None

SUBSAMPLINGS = ("444", "422", "420")
PILLOW_SUBSAMPLING = {"444": 0, "422": 1, "420": 2}
VIDEO_CODECS = {"h264": ("libx264", "h264"), "mpeg2": ("mpeg2video", "mpeg2video")}
# H.264 CRF 0–51 (higher = worse); MPEG-2 quantiser scale 1–31 (higher = worse).
STRENGTH_RANGES = {"h264": (0, 51), "mpeg2": (1, 31)}
KINDS = (
    "jpeg",
    "chroma",
    "double_jpeg",
    "h264",
    "mpeg2",
    "h264_clip",
    "mpeg2_clip",
    "none",
    "resave",
)
CLIP_KINDS = ("h264_clip", "mpeg2_clip")
VIDEO_KINDS = ("h264", "mpeg2", *CLIP_KINDS)  # encoded with FFmpeg through PyAV
DOUBLE_JPEG_MARGIN = 8  # extra pixels cropped so the second grid can shift by 0..7
# Re-saves: what the picture is saved as the second time, and how image tools resize.
RESAVE_FORMATS = (("jpeg", 0.6), ("png", 0.2), ("webp", 0.2))
RESAVE_KERNELS = ("bicubic", "bilinear", "lanczos")
RESAVE_SCALE_MIN = 0.5


def jpeg_roundtrip(image: np.ndarray, quality: int, subsampling: str = "420") -> np.ndarray:
    """Encode uint8 RGB at `quality` (libjpeg scale) and decode it again.

    libjpeg-turbo through imagecodecs: with 4:2:0 byte-identical to Pillow's
    default JPEG writer at the same quality, and 2–3× faster per small patch.
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    if subsampling not in SUBSAMPLINGS:
        raise ValueError(f"JPEG subsampling must be one of {SUBSAMPLINGS}, got {subsampling!r}")
    image = np.ascontiguousarray(image)
    if imagecodecs is not None:
        encoded = imagecodecs.jpeg8_encode(image, level=int(quality), subsampling=subsampling)
        return imagecodecs.jpeg8_decode(encoded)
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(
        buffer, "JPEG", quality=int(quality), subsampling=PILLOW_SUBSAMPLING[subsampling]
    )
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"))


def double_jpeg(
    window: np.ndarray, first_quality: int, second_quality: int, shift: tuple[int, int], size: int
) -> tuple[np.ndarray, np.ndarray]:
    """JPEG `window` at `first_quality`, crop `size`² at `shift`, JPEG that again.

    The second 8×8 grid is offset by `shift` (each 0..7) against the first, as when
    a compressed picture is cropped and saved again. Returns (degraded, target)."""
    dy, dx = shift
    if window.shape[0] < size + dy or window.shape[1] < size + dx:
        raise ValueError(f"window {window.shape[:2]} too small for {size}² at shift {shift}")
    once = jpeg_roundtrip(window, first_quality)
    crop = (slice(dy, dy + size), slice(dx, dx + size))
    return jpeg_roundtrip(once[crop], second_quality), np.ascontiguousarray(window[crop])


def resave(
    window: np.ndarray,
    first_quality: int,
    shift: tuple[int, int],
    scale: float,
    kernel: str,
    second: tuple[str, int],
    size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The life of a picture people have: JPEG at `first_quality`, cropped at `shift`
    (its grid no longer the image's), resized by `scale` (≤ 1) with `kernel`, then
    saved again as `second` = ('jpeg', QF), ('webp', quality) or ('png', 0).
    Returns (degraded, target), both `size`²; the target is the original cropped
    and resized the same way."""
    from PIL import Image

    dy, dx = shift
    side = int(np.ceil(size / scale - 1e-6))
    if window.shape[0] < side + dy or window.shape[1] < side + dx:
        raise ValueError(f"window {window.shape[:2]} too small for {side}² at shift {shift}")
    resample = {
        "bicubic": Image.BICUBIC,
        "bilinear": Image.BILINEAR,
        "lanczos": Image.LANCZOS,
    }[kernel]
    crop = (slice(dy, dy + side), slice(dx, dx + side))

    def resized(pixels: np.ndarray) -> np.ndarray:
        if side == size:
            return np.ascontiguousarray(pixels)
        return np.asarray(Image.fromarray(pixels).resize((size, size), resample))

    once = resized(jpeg_roundtrip(window, first_quality)[crop])
    target = resized(window[crop])
    codec, quality = second
    if codec == "jpeg":
        return jpeg_roundtrip(once, quality), target
    if codec == "webp":
        buffer = io.BytesIO()
        Image.fromarray(once).save(buffer, "WEBP", quality=quality, method=4)
        return np.asarray(Image.open(buffer).convert("RGB")), target
    if codec == "png":  # lossless: the first compression as it was resized
        return once, target
    raise ValueError(f"resave: unknown second format {codec!r}")


def video_roundtrip(frames: np.ndarray, codec: str, strength: int) -> np.ndarray:
    """Encode uint8 RGB frames [T, H, W, 3] as one video stream and decode them again.

    `codec`: 'h264' (`strength` = CRF 0–51) or 'mpeg2' (`strength` = quantiser scale
    1–31). The first frame is intra-coded, the others predicted from it (inter
    frames); a single frame is an intra-only encode. Colour goes through 4:2:0
    YUV, as in nearly all distributed video. H and W must be even."""
    if codec not in VIDEO_CODECS:
        raise ValueError(f"video codec must be one of {sorted(VIDEO_CODECS)}, got {codec!r}")
    low, high = STRENGTH_RANGES[codec]
    if not low <= strength <= high:
        raise ValueError(f"{codec} strength must be in {low}..{high}, got {strength}")
    frames = np.asarray(frames)
    count, height, width = frames.shape[:3]
    if height % 2 or width % 2:
        raise ValueError(f"video frames need even sizes, got {width}x{height}")
    import av  # PyAV: only the video degradations need FFmpeg

    encoder_name, decoder_name = VIDEO_CODECS[codec]
    encoder = av.CodecContext.create(encoder_name, "w")
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, 25)
    encoder.framerate = Fraction(25, 1)
    if codec == "h264":
        # Single-threaded: libx264's output is then a function of its input alone.
        encoder.options = {"crf": str(strength), "preset": "veryfast", "threads": "1"}
    else:
        encoder.options = {"qmin": str(strength), "qmax": str(strength), "threads": "1"}
        encoder.gop_size = 12
        encoder.max_b_frames = 2
    packets = []
    for index, frame in enumerate(frames):
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame.pts = index
        packets += encoder.encode(video_frame)
    packets += encoder.encode(None)
    decoder = av.CodecContext.create(decoder_name, "r")
    decoded = []
    for packet in packets + [None]:
        decoded += decoder.decode(packet)
    if len(decoded) != count:
        raise RuntimeError(f"{codec}: {count} frames in, {len(decoded)} decoded")
    decoded.sort(key=lambda f: f.pts if f.pts is not None else 0)
    return np.stack([f.to_ndarray(format="rgb24") for f in decoded])


def jpeg_equivalent_quality(target: np.ndarray, degraded: np.ndarray) -> int:
    """The QF whose 4:2:0 JPEG of `target` has the PSNR closest to `degraded`'s.

    Bisection over 1..100 (PSNR rises with QF; seven encodes of a patch)."""
    goal = metrics.psnr(degraded, target)
    low, high = 1, 100
    while low < high:  # smallest QF whose JPEG is at least as good as `degraded`
        middle = (low + high) // 2
        if metrics.psnr(jpeg_roundtrip(target, middle), target) >= goal:
            high = middle
        else:
            low = middle + 1
    if low > 1:
        above = abs(metrics.psnr(jpeg_roundtrip(target, low), target) - goal)
        below = abs(metrics.psnr(jpeg_roundtrip(target, low - 1), target) - goal)
        if below < above:
            return low - 1
    return low


@dataclasses.dataclass(frozen=True)
class Ranges:
    """The strengths each kind draws from (inclusive)."""

    quality_min: int = 10
    quality_max: int = 40
    crf_min: int = 20
    crf_max: int = 45
    mpeg2_min: int = 2
    mpeg2_max: int = 31
    clip_frames: int = 6

    @classmethod
    def from_config(cls, data) -> Ranges:
        return cls(
            quality_min=data.quality_min,
            quality_max=data.quality_max,
            crf_min=data.get("crf_min", cls.crf_min),
            crf_max=data.get("crf_max", cls.crf_max),
            mpeg2_min=data.get("mpeg2_min", cls.mpeg2_min),
            mpeg2_max=data.get("mpeg2_max", cls.mpeg2_max),
            clip_frames=data.get("clip_frames", cls.clip_frames),
        )


def parse_mix(spec: str) -> list[tuple[str, float]]:
    """'jpeg:4,double_jpeg:1,h264_clip' -> [(kind, probability)] (weights default to 1)."""
    entries = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        kind, _, weight = part.partition(":")
        if kind not in KINDS:
            raise ValueError(f"config.data.degradations: unknown kind {kind!r} (one of {KINDS})")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"config.data.degradations: bad weight in {part!r}") from None
        if value < 0:
            raise ValueError(f"config.data.degradations: negative weight in {part!r}")
        entries.append((kind, value))
    total = sum(w for _, w in entries)
    if not entries or total <= 0:
        raise ValueError(f"config.data.degradations={spec!r}: no kind with a positive weight")
    return [(kind, weight / total) for kind, weight in entries]


class DegradationMix:
    """Draws a degradation per sample and applies it.

    `photo_pair(window_fn, size, rng)` takes `window_fn(extra)`, which returns a
    target crop of (size + extra)² (already oriented), so double JPEG can shift its
    second grid; `clip_pair(clip, rng)` degrades a [T, size, size, 3] clip and keeps
    one of its predicted frames."""

    def __init__(self, spec: str, ranges: Ranges):
        self.mix = parse_mix(spec)
        self.kinds = [k for k, _ in self.mix]
        self.probabilities = np.array([p for _, p in self.mix])
        self.ranges = ranges
        for low, high, name in (
            (ranges.quality_min, ranges.quality_max, "quality"),
            (ranges.crf_min, ranges.crf_max, "crf"),
            (ranges.mpeg2_min, ranges.mpeg2_max, "mpeg2"),
        ):
            if low > high:
                raise ValueError(f"config.data.{name}_min={low} > {name}_max={high}")

    @property
    def needs_clips(self) -> bool:
        return any(k in CLIP_KINDS for k in self.kinds)

    def draw(self, rng: np.random.Generator) -> str:
        if len(self.kinds) == 1:
            return self.kinds[0]
        return self.kinds[int(rng.choice(len(self.kinds), p=self.probabilities))]

    def _quality(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.ranges.quality_min, self.ranges.quality_max + 1))

    def _strength(self, codec: str, rng: np.random.Generator) -> int:
        r = self.ranges
        low, high = (r.crf_min, r.crf_max) if codec == "h264" else (r.mpeg2_min, r.mpeg2_max)
        return int(rng.integers(low, high + 1))

    def photo_pair(
        self,
        kind: str,
        window_fn: Callable[[int], np.ndarray],
        size: int,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """(degraded, target, JPEG-scale quality) of a photo crop."""
        if kind == "none":  # an undegraded input: QF 100, nothing to undo
            target = window_fn(0)
            return target.copy(), target, 100
        if kind == "jpeg":
            target = window_fn(0)
            quality = self._quality(rng)
            return jpeg_roundtrip(target, quality), target, quality
        if kind == "chroma":
            target = window_fn(0)
            quality = self._quality(rng)
            subsampling = SUBSAMPLINGS[int(rng.integers(0, len(SUBSAMPLINGS)))]
            return jpeg_roundtrip(target, quality, subsampling), target, quality
        if kind == "double_jpeg":
            window = window_fn(DOUBLE_JPEG_MARGIN)
            first, second = self._quality(rng), self._quality(rng)
            room = min(window.shape[0] - size, DOUBLE_JPEG_MARGIN - 1) + 1
            shift = (int(rng.integers(0, room)), int(rng.integers(0, room)))
            degraded, target = double_jpeg(window, first, second, shift, size)
            return degraded, target, jpeg_equivalent_quality(target, degraded)
        if kind == "resave":
            window = window_fn(size + DOUBLE_JPEG_MARGIN)  # room for a 0.5× resize
            first = self._quality(rng)
            room = min(window.shape[:2]) - size
            shift = (int(rng.integers(0, min(room, 7) + 1)), int(rng.integers(0, min(room, 7) + 1)))
            lowest = max(RESAVE_SCALE_MIN, size / (min(window.shape[:2]) - max(shift)))
            scale = 1.0 if rng.random() < 0.5 else float(rng.uniform(lowest, 1.0))
            kernel = RESAVE_KERNELS[int(rng.integers(0, len(RESAVE_KERNELS)))]
            formats = [name for name, _ in RESAVE_FORMATS]
            weights = np.array([w for _, w in RESAVE_FORMATS])
            codec = formats[int(rng.choice(len(formats), p=weights / weights.sum()))]
            second = int(rng.integers(first, max(first, 95) + 1))  # saved again, higher
            degraded, target = resave(window, first, shift, scale, kernel, (codec, second), size)
            return degraded, target, jpeg_equivalent_quality(target, degraded)
        if kind in ("h264", "mpeg2"):
            target = window_fn(0)
            degraded = video_roundtrip(target[None], kind, self._strength(kind, rng))[0]
            return degraded, target, jpeg_equivalent_quality(target, degraded)
        raise ValueError(f"{kind!r} is not a photo degradation")

    def clip_pair(
        self, kind: str, clip: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """(degraded, target, JPEG-scale quality) of one inter-coded frame of `clip`."""
        codec = kind.removesuffix("_clip")
        decoded = video_roundtrip(clip, codec, self._strength(codec, rng))
        index = int(rng.integers(1, len(clip))) if len(clip) > 1 else 0
        target = np.ascontiguousarray(clip[index])
        return decoded[index], target, jpeg_equivalent_quality(target, decoded[index])
