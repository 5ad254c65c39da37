"""Export a trained model as a small params-only checkpoint.

    python -m jaxrestore.export RUN OUT [--step N]

OUT gets `params/` (an orbax checkpoint of the model's parameters alone: no
optimizer state, no data position) and `model.json` (the stage, the model
config, the training data settings it was trained for, where it came from,
and its last held-out evaluation). `inference.load_params` reads either a
training workdir or such an export.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import orbax.checkpoint as ocp
from absl import logging

from jaxrestore import checkpoint

DATA_FIELDS = ("patch_size", "degradations", "quality_min", "quality_max", "crf_min", "crf_max")


def export(run: str | Path, out: str | Path, step: int | None = None) -> dict:
    """Write the params-only export of `run` to `out` (replaced atomically)."""
    run, out = Path(run), Path(out).resolve()
    config = checkpoint.load_config(run, step)
    tree = checkpoint.load_state_tree(run, step)
    params = tree["generator"]["params"] if "generator" in tree else tree["params"]
    with ocp.CheckpointManager(checkpoint.as_dir(run) / "checkpoints") as manager:
        saved_step = step if step is not None else manager.latest_step()
    evaluation = {}
    metrics = run / "metrics.jsonl"
    if metrics.exists():
        for line in metrics.read_text().splitlines():
            record = json.loads(line)
            if record["step"] <= saved_step and any(k.startswith("eval/") for k in record):
                evaluation = {
                    k: v for k, v in record.items() if k.startswith("eval/") or k == "step"
                }
    info = {
        "format": 1,
        "stage": config.stage,
        "kind": "quality" if config.stage == "quality" else "generator",
        "model": config.model.to_dict(),
        "data": {k: config.data[k] for k in DATA_FIELDS if k in config.data},
        "source": {"run": run.name, "step": int(saved_step), "config_variant": config.variant},
        "steps": int(saved_step),
        "batch_size": int(config.batch_size),
        "evaluation": evaluation,
    }
    write_export(out, params, info)
    return info


def write_export(out: str | Path, params: Any, info: dict) -> None:
    """`out`/params (orbax, params only) and `out`/model.json, replaced atomically.
    `info` needs at least "stage" and "model" (a model config dict)."""
    out = Path(out).resolve()
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(staging / "params", params)
    checkpointer.wait_until_finished()
    (staging / "model.json").write_text(json.dumps(info, indent=1) + "\n")
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jaxrestore.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="training workdir")
    parser.add_argument("out", help="export directory (replaced)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: newest)")
    args = parser.parse_args(argv)
    logging.set_verbosity(logging.ERROR)
    try:
        info = export(args.run, args.out, args.step)
    except (FileNotFoundError, ValueError) as error:
        print(f"jaxrestore.export: {error}", file=sys.stderr)
        return 1
    size = sum(p.stat().st_size for p in Path(args.out).rglob("*") if p.is_file())
    what = f"{info['kind']} ({info['stage']}, step {info['steps']})"
    print(f"exported {what} to {args.out}: {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(run())
