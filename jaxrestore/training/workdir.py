"""A run's directory: its files other than checkpoints, and the one reader of metrics.jsonl.

WORKDIR may be a local path or a bucket URL (gs://…; for pods every process must
see the same directory). It holds checkpoints/ (`checkpoint`), metrics.jsonl (one
JSON object per logged step, process 0 only), eval/step_N.json (per-image held-out
scores), data_shards/ (which training images each process reads) and tensorboard/
(the same metrics as event files, `events`).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import jax
from etils import epath

METRICS_FILE = "metrics.jsonl"


def as_dir(path: str | Path | epath.Path) -> epath.Path:
    """A run directory as an absolute `epath.Path` (local paths) or a URL (gs://…)."""
    text = str(path)
    return epath.Path(text) if "://" in text else epath.Path(Path(text).absolute())


def default_workdir(config_path: str, variant: str) -> Path:
    """runs/<config file's stem>_<variant>."""
    return Path("runs") / f"{Path(config_path.split(':')[0]).stem}_{variant}"


def write_text_atomic(path: epath.Path, text: str) -> None:
    """Replace `path` with `text` whole: a kill leaves the old or the new file, never
    a mix (object stores replace objects whole anyway)."""
    if "://" in str(path):
        path.write_text(text)
        return
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as f:
            f.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def check_writable(workdir: epath.Path) -> None:
    """Fail now, with the reason, if WORKDIR cannot be created or written."""
    probe = workdir / f".write_test_{jax.process_index()}"
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        reason = error.strerror or str(error)
        raise ValueError(f"{workdir}: the workdir is not writable ({reason})") from None


def parse_metrics_line(line: str) -> dict | None:
    """A metrics.jsonl row, or None for a blank line or one a kill cut short."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None
    return row if isinstance(row, dict) and "step" in row else None


def read_metrics(workdir: str | Path | epath.Path) -> list[dict]:
    """Every row of WORKDIR/metrics.jsonl in order; a line cut short by a kill (or
    blank) is left out. Empty when the file does not exist."""
    path = as_dir(workdir) / METRICS_FILE
    if not path.exists():
        return []
    rows = (parse_metrics_line(line) for line in path.read_text().splitlines())
    return [row for row in rows if row is not None]


def eval_rows(workdir: str | Path | epath.Path) -> list[dict]:
    """The rows of metrics.jsonl that hold held-out evaluation (`eval/...` keys)."""
    return [row for row in read_metrics(workdir) if any(k.startswith("eval/") for k in row)]


class MetricsLog:
    """WORKDIR/metrics.jsonl, written by process 0 only.

    Appended to locally; rewritten whole on object stores, which cannot append."""

    def __init__(self, workdir: epath.Path, resume_step: int, enabled: bool):
        self.path = workdir / METRICS_FILE
        self.enabled = enabled
        self.appendable = "://" not in str(self.path)
        self.lines: list[str] = []
        if enabled and self.path.exists():
            # Steps after the restored checkpoint are about to be run again.
            self.lines = [
                json.dumps(row) for row in read_metrics(workdir) if row["step"] <= resume_step
            ]
            write_text_atomic(self.path, "".join(line + "\n" for line in self.lines))

    def write(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        line = json.dumps({"step": step, **metrics})
        self.lines.append(line)
        if self.appendable:
            with open(self.path, "a") as f:
                f.write(line + "\n")
        else:
            write_text_atomic(self.path, "".join(line + "\n" for line in self.lines))


def write_eval(workdir: epath.Path, step: int, per_image: dict) -> None:
    """WORKDIR/eval/step_N.json: the per-image held-out scores of one evaluation."""
    (workdir / "eval").mkdir(parents=True, exist_ok=True)
    write_text_atomic(workdir / "eval" / f"step_{step}.json", json.dumps(per_image, indent=1))


OVERLAP_FILE = "evaluation_overlap.json"


def read_overlap(source) -> list[dict]:
    """The evaluation-set images the weights at `source` were trained on: an export's
    model.json `evaluation_overlap`, or a training workdir's OVERLAP_FILE (written when
    it started from such weights); [] when neither records any."""
    source = epath.Path(source)
    for name in ("model.json", OVERLAP_FILE):
        path = source / name
        if path.exists():
            return list(json.loads(path.read_text()).get("evaluation_overlap", []))
    return []


def record_overlap(workdir: epath.Path, init_from) -> None:
    """WORKDIR/OVERLAP_FILE: what the weights a run starts from (`init_from`, resolved)
    had trained on, so that its exports and its fine-tunes carry the record on."""
    overlap = read_overlap(init_from)
    if overlap:
        record = {"init_from": str(init_from), "evaluation_overlap": overlap}
        (epath.Path(workdir) / OVERLAP_FILE).write_text(json.dumps(record, indent=1))


def record_data_shard(workdir: epath.Path, source: str, num_images: int, indices: list[int]):
    """WORKDIR/data_shards/process_I-of-N.json: the training images this process reads."""
    index, count = jax.process_index(), jax.process_count()
    record = {
        "source": source,
        "process_index": index,
        "process_count": count,
        "num_images": num_images,
        "indices": indices,
    }
    directory = workdir / "data_shards"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"process_{index}-of-{count}.json").write_text(json.dumps(record))
