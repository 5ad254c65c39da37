"""Task-based evaluation: does a machine still see what the original showed?

Following Galteri et al., a restoration is judged by running off-the-shelf
recognisers (`task_models`: a COCO detector, an ImageNet classifier, a face
cascade) on the original, the compressed and the restored image, taking what
they find on the ORIGINAL as the reference and scoring each version against it:
mAP@0.5 and recall of the original's detections, agreement of the top-1 class,
recall of the original's faces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from jaxrestore.evaluation.task_models import Detection, TaskModels


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
