"""The evaluation report: report.md and the figures, from `protocol.evaluate`'s report.

- `markdown`: report.md, the tables a reader checks first;
- `plots`: gain_vs_quality.png, task_vs_quality.png, crops.png and, with clips,
  video_frames.png.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxrestore import metrics
from jaxrestore.evaluation.protocol import KINDS, VIDEO_METRICS


def pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def markdown(report: dict) -> str:
    """report.md: the tables a reader checks first."""
    settings, model = report["settings"], report["model"]
    codec = settings["codec"]
    label = {"jpeg": "QF", "h264": "CRF", "mpeg2": "quantiser"}[codec]
    lines = [
        f"# jaxrestore evaluation: {settings['images']} images, {codec}",
        "",
        f"Model: `{model['checkpoint']}` ({model['stage']}, {model['parameters']:,} parameters, "
        f"{'QF-conditioned' if model['conditioned'] else 'unconditioned'}); "
        f"{settings['seconds_per_image']} s per image on {model['device']}.",
        "",
        f"Conventions: {settings['conventions']}",
        "",
    ]
    first = report["qualities"][str(settings["qualities"][0])]
    columns = list(first["jpeg"])
    header = " | ".join(f"{c} {codec} → restored" for c in columns)
    lines += [f"| {label} | {header} |", "|---" * (len(columns) + 1) + "|"]
    for quality, row in report["qualities"].items():
        cells = [f"{row['jpeg'][c]:.4g} → **{row['restored'][c]:.4g}**" for c in columns]
        lines.append(f"| {quality} | {' | '.join(cells)} |")
    if "brisque_original" in report:
        lines += ["", f"BRISQUE of the originals: {report['brisque_original']:.2f}."]
    task = report["task"]
    lines += ["", "## Task-based (original's detections as ground truth)", ""]
    if "note" in task:
        lines.append(f"Not run: {task['note']}")
    else:
        info = task["models"]
        for role, model in info.get("models", {}).items():
            lines.append(f"- {role}: {model.get('name', model)}")
        packages = ", ".join(f"{k} {v}" for k, v in info.get("packages", {}).items())
        lines.append(f"- packages: {packages}")
        lines += ["", f"| {label} | version | mAP@0.5 | recall | top-1 agreement | faces found |"]
        lines.append("|---|---|---|---|---|---|")
        for quality in settings["qualities"]:
            for kind in KINDS:
                row = task[str(quality)][kind]
                cells = [
                    _fmt(row.get(k)) for k in ("map50", "recall", "top1_agreement", "face_recall")
                ]
                lines.append(f"| {quality} | {kind} | {' | '.join(cells)} |")
        reference = task[str(settings["qualities"][0])].get("reference")
        if reference:
            found = ", ".join(f"{v} {k}" for k, v in reference.items())
            lines += ["", f"Found on the originals: {found}."]
    for clip in report["video"]:
        lines += [
            "",
            f"## Video: {clip['clip']} ({clip['frames']} frames "
            f"{clip['size'][0]}x{clip['size'][1]}, {clip['codec']} {clip['strength']}, "
            f"QF used {clip['quality_used']})",
            "",
            "| version | PSNR | SSIM | LPIPS | temporal (lower = steadier) |",
            "|---|---|---|---|---|",
        ]
        for kind in KINDS:
            row = clip[kind]
            lines.append(
                f"| {kind if kind != 'jpeg' else clip['codec']} | {row['psnr']:.2f} | "
                f"{row['ssim']:.4f} | {row['lpips']:.4f} | {row['temporal']:.3f} |"
            )
    if report.get("plots"):
        lines += ["", "Plots: " + ", ".join(f"[{p}]({p})" for p in report["plots"])]
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}"


def plots(report: dict, extras: dict, out: Path, count: int) -> list[str]:
    """The PNG figures (`count` images in crops.png); returns their names."""
    plt = pyplot()
    written = []
    qualities = report["settings"]["qualities"]
    rows = [report["qualities"][str(q)] for q in qualities]
    names = list(rows[0]["jpeg"])
    columns = min(4, len(names))
    rows_needed = -(-len(names) // columns)
    figure, axes = plt.subplots(
        rows_needed, columns, figsize=(3.2 * columns, 3 * rows_needed), squeeze=False
    )
    for axis in axes.flat[len(names) :]:
        axis.axis("off")
    for axis, name in zip(axes.flat, names):
        gain = [row["restored"][name] - row["jpeg"][name] for row in rows]
        axis.plot(qualities, gain, "o-")
        axis.axhline(0.0, color="gray", lw=0.8)
        better = "higher" if metrics.HIGHER_IS_BETTER.get(name, False) else "lower"
        axis.set_title(f"{name} gain ({better} is better)", fontsize=9)
        axis.set_xlabel(report["settings"]["codec"] + " quality")
    figure.tight_layout()
    figure.savefig(out / "gain_vs_quality.png", dpi=110)
    plt.close(figure)
    written.append("gain_vs_quality.png")

    task = report["task"]
    if "note" not in task:
        keys = ("map50", "recall", "top1_agreement", "face_recall")
        figure, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3), squeeze=False)
        for axis, key in zip(axes[0], keys):
            for kind in KINDS:
                values = [task[str(q)][kind].get(key) for q in qualities]
                if all(v is not None for v in values):
                    axis.plot(qualities, values, "o-", label=kind)
            axis.set_title(key if axis.lines else f"{key}: not measured", fontsize=9)
            axis.set_ylim(0, 1.05)
            if axis.lines:
                axis.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(out / "task_vs_quality.png", dpi=110)
        plt.close(figure)
        written.append("task_vs_quality.png")

    written += crops(extras, out, qualities[0], count)

    if report["video"]:
        figure, axes = plt.subplots(
            len(report["video"]), 3, figsize=(11, 3 * len(report["video"])), squeeze=False
        )
        for row, clip in zip(axes, report["video"]):
            for axis, metric in zip(row, VIDEO_METRICS):
                for kind in KINDS:
                    axis.plot(
                        clip[kind]["per_frame"][metric],
                        label=clip["codec"] if kind == "jpeg" else kind,
                    )
                axis.set_title(f"{clip['clip']}: {metric} per frame", fontsize=9)
                axis.set_xlabel("frame")
                axis.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(out / "video_frames.png", dpi=110)
        plt.close(figure)
        written.append("video_frames.png")
    return written


def crops(extras: dict, out: Path, quality: int, count: int) -> list[str]:
    """Original / compressed / restored, zoomed 3× on the 96² window where compression
    did the most damage, for `count` images spread through the set."""
    originals = extras["originals"]
    names = sorted(originals)
    if not names or count <= 0:
        return []
    plt = pyplot()
    chosen = [names[i] for i in np.unique(np.linspace(0, len(names) - 1, count).astype(int))]
    figure, axes = plt.subplots(len(chosen), 3, figsize=(9, 3 * len(chosen)), squeeze=False)
    size = 96
    for row, name in zip(axes, chosen):
        original = originals[name]
        compressed = extras["kept"][quality]["jpeg"][name]
        restored = extras["kept"][quality]["restored"][name]
        error = np.square(original.astype(np.float32) - compressed).mean(-1)
        window = min(size, *original.shape[:2])
        # Damage summed over every window position (a box filter by cumulative sums).
        sums = np.pad(error, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
        box = (
            sums[window:, window:]
            - sums[:-window, window:]
            - sums[window:, :-window]
            + sums[:-window, :-window]
        )
        top, left = np.unravel_index(int(np.argmax(box)), box.shape)
        for axis, (title, image) in zip(
            row,
            (
                ("original", original),
                (f"compressed q{quality}", compressed),
                ("restored", restored),
            ),
        ):
            crop = image[top : top + window, left : left + window]
            axis.imshow(np.kron(crop, np.ones((3, 3, 1), np.uint8)), interpolation="nearest")
            axis.set_title(f"{name}: {title}", fontsize=9)
            axis.axis("off")
    figure.tight_layout()
    figure.savefig(out / "crops.png", dpi=100)
    plt.close(figure)
    return ["crops.png"]
