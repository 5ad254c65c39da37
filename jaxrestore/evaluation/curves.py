"""A training run's curves, from its metrics.jsonl (`jaxrestore.plot_run`).

Panels, each drawn when a run logged it: the training loss, the held-out PSNR
gain over JPEG per quality (`eval/psnr_gain_qN`), the held-out LPIPS of the
restored images relative to JPEG's (`eval/lpips_restored_qN / eval/lpips_jpeg_qN`,
below 1 = perceptually closer than JPEG) and, for the quality predictor, its
held-out error (`eval/quality_mae_qN`). Several runs share the axes, each quality
a colour and each run a line style. Rows are read by `training.workdir.read_metrics`,
which leaves out a line a kill cut short.
"""

from __future__ import annotations

import re
from pathlib import Path

from jaxrestore.evaluation.report import pyplot
from jaxrestore.training import workdir as workdir_lib

STYLES = ("-", "--", ":", "-.")
PANELS = (
    ("loss", "training loss"),
    ("gain", "held-out PSNR gain over JPEG (dB)"),
    ("lpips", "held-out LPIPS, restored / JPEG"),
    ("mae", "held-out quality error (QF units)"),
)


def read(workdir: str | Path) -> list[dict]:
    """The rows of WORKDIR/metrics.jsonl; FileNotFoundError when there is none."""
    if not (workdir_lib.as_dir(workdir) / workdir_lib.METRICS_FILE).exists():
        raise FileNotFoundError(f"{workdir}: no metrics.jsonl (not a training workdir?)")
    return workdir_lib.read_metrics(workdir)


def curves(rows: list[dict]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """{'loss': {'loss': points}, 'gain' / 'lpips' / 'mae': {qN: points}}; a
    step that was logged twice (a resumed run) keeps its last value."""
    out: dict[str, dict[str, dict[int, float]]] = {panel: {} for panel, _ in PANELS}
    for row in rows:
        step = int(row["step"])
        if "loss" in row:
            out["loss"].setdefault("loss", {})[step] = float(row["loss"])
        for key, value in row.items():
            match = re.fullmatch(r"eval/psnr_gain_q(\d+)", key)
            if match:
                out["gain"].setdefault(f"q{match[1]}", {})[step] = float(value)
            match = re.fullmatch(r"eval/quality_mae_q(\d+)", key)
            if match:
                out["mae"].setdefault(f"q{match[1]}", {})[step] = float(value)
            match = re.fullmatch(r"eval/lpips_restored_q(\d+)", key)
            if match and row.get(f"eval/lpips_jpeg_q{match[1]}"):
                ratio = float(value) / float(row[f"eval/lpips_jpeg_q{match[1]}"])
                out["lpips"].setdefault(f"q{match[1]}", {})[step] = ratio
    return {
        panel: {name: sorted(points.items()) for name, points in series.items()}
        for panel, series in out.items()
    }


def plot(workdirs: list[Path], out: Path) -> dict:
    """Write the figure; returns the curves drawn, by run."""
    plt = pyplot()
    drawn = {str(w): curves(read(w)) for w in workdirs}
    # Only the panels some run has data for.
    titles = tuple(t for t in PANELS if any(c[t[0]] for c in drawn.values()))
    figure, axes = plt.subplots(1, len(titles), figsize=(5 * len(titles), 4), squeeze=False)
    for axis, (panel, title) in zip(axes[0], titles):
        for style, (run, series) in zip(STYLES * 8, drawn.items()):
            for index, (name, points) in enumerate(sorted(series[panel].items())):
                if points:
                    steps, values = zip(*points)
                    label = name if len(drawn) == 1 else f"{Path(run).name} {name}"
                    marker = "o" if len(points) < 30 else None
                    axis.plot(steps, values, style, marker=marker, color=f"C{index}", label=label)
        if panel == "lpips":
            axis.axhline(1.0, color="gray", lw=0.8)
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("step")
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return drawn
