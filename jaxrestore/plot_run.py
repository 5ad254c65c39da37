"""Plot a training run's curves from its metrics.jsonl.

    python -m jaxrestore.plot_run RUN [RUN ...] --out curves.png

Panels, each drawn when a run logged it: the training loss, the held-out PSNR
gain over JPEG per quality (`eval/psnr_gain_qN`), the held-out LPIPS of the
restored images relative to JPEG's (`eval/lpips_restored_qN / eval/lpips_jpeg_qN`,
below 1 = perceptually closer than JPEG) and, for the quality predictor, its
held-out error (`eval/quality_mae_qN`). Several runs share the axes, each quality
a colour and each run a line style.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

STYLES = ("-", "--", ":", "-.")


def read(workdir: Path) -> list[dict]:
    path = Path(workdir) / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{workdir}: no metrics.jsonl (not a training workdir?)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def curves(rows: list[dict]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """{'loss': {'loss': points}, 'gain' / 'lpips' / 'mae': {qN: points}}; a
    step that was logged twice (a resumed run) keeps its last value."""
    out: dict[str, dict[str, dict[int, float]]] = {"loss": {}, "gain": {}, "lpips": {}, "mae": {}}
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
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    drawn = {str(w): curves(read(w)) for w in workdirs}
    titles = (
        ("loss", "training loss"),
        ("gain", "held-out PSNR gain over JPEG (dB)"),
        ("lpips", "held-out LPIPS, restored / JPEG"),
        ("mae", "held-out quality error (QF units)"),
    )
    # Only the panels some run has data for.
    titles = tuple(t for t in titles if any(c[t[0]] for c in drawn.values()))
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


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jaxrestore.plot_run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        plot(args.runs, args.out)
    except (FileNotFoundError, ValueError) as error:
        print(f"jaxrestore.plot_run: {error}", file=sys.stderr)
        return 1
    print(f"jaxrestore.plot_run: wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run())
