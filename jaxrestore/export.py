"""Export a trained model as a small params-only checkpoint, or a generator as ONNX.

    python -m jaxrestore.export RUN OUT [--step N]
    python -m jaxrestore.export RUN [RUN ...] OUT --best-lpips Q
    python -m jaxrestore.export RUN|ssim|gan OUT.onnx [--format onnx] [--quality Q]

OUT gets `params/` (an orbax checkpoint of the model's parameters alone: no
optimizer state, no data position) and `model.json` (the stage, the model
config, the training data settings it was trained for, where it came from,
its last held-out evaluation and, for a fine-tune of weights that had seen
images of an evaluation set, which ones: `evaluation_overlap`).
`inference.loader` reads either a training workdir or such an export.
`--best-lpips Q` exports the kept checkpoint whose held-out LPIPS at QF Q is
lowest among those that still gain PSNR over the JPEG at every evaluated
quality, over all the RUNs given (the adversarial stage's pick among weight
variants).

`--format onnx` (the default for an OUT ending in .onnx) writes the generator of a
training workdir's newest checkpoint, an export or a packaged name as one ONNX file
(`inference.onnx_export`: NCHW float32 image in [0, 1] with dynamic height and
width, plus the quality factor when the generator is conditioned; opset and layout
in the file's metadata), for onnxruntime, TensorRT, vs-mlrt or chaiNNer.
`--quality Q` builds QF Q into the file instead, whose only input is then the image
(for tools that feed nothing else).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from absl import logging

from jaxrestore.inference import loader, onnx_export
from jaxrestore.training import checkpoint, stages, workdir

DATA_FIELDS = ("patch_size", "degradations", "quality_min", "quality_max", "crf_min", "crf_max")


def export(run: str | Path, out: str | Path, step: int | None = None) -> dict:
    """Write the params-only export of `run` to `out` (replaced atomically)."""
    run, out = Path(run), Path(out).resolve()
    if (run / "model.json").exists():
        raise ValueError(f"{run}: already an export")
    config, params = loader.read_params(run, step=step)
    saved_step = step if step is not None else checkpoint.newest_step(run)
    evaluation = {}
    for record in workdir.eval_rows(run):
        if record["step"] <= saved_step:
            evaluation = {k: v for k, v in record.items() if k.startswith("eval/") or k == "step"}
    info = {
        "format": 1,
        "stage": config.stage,
        "kind": stages.get(config.stage).kind,
        "model": config.model.to_dict(),
        "data": {k: config.data[k] for k in DATA_FIELDS if k in config.data},
        "source": {"run": run.name, "step": int(saved_step), "config_variant": config.variant},
        "steps": int(saved_step),
        "batch_size": int(config.batch_size),
        "evaluation": evaluation,
    }
    overlap = workdir.read_overlap(run) or inherited_overlap(config)
    if overlap:
        info["evaluation_overlap"] = overlap
    loader.write_export(out, params, info)
    return info


def inherited_overlap(config) -> list[dict]:
    """The evaluation-set images that the weights a run started from (`init_from`)
    were trained on: a fine-tune has seen them too, and the benchmark reports its rows
    without them as well. The run's own record (`workdir.OVERLAP_FILE`, written when it
    started) comes first; this reads `init_from` again for runs older than that record,
    and warns when it cannot."""
    start = config.get("init_from", "")
    if not start:
        return []
    source = loader.resolve(start)
    if not source.exists():
        logging.warning("init_from=%s is not here: its evaluation_overlap is not carried", start)
        return []
    return workdir.read_overlap(source)


def export_onnx(source: str | Path, out: str | Path, quality: float | None = None) -> int:
    """Write the generator of `source` (workdir, export or packaged name) to the ONNX
    file `out`, with `quality` built in when given; returns its size in bytes."""
    model = loader.load(source, "generator")
    if quality is not None and not model.conditioned:
        raise ValueError(f"{source}: its generator takes no quality (--quality)")
    return onnx_export.write(model, out, quality)


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jaxrestore.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("run", nargs="+", help="training workdir(s); several need --best-lpips")
    parser.add_argument("out", help="export directory, or .onnx file (replaced)")
    parser.add_argument(
        "--format",
        choices=("orbax", "onnx"),
        default=None,
        help="orbax (params-only checkpoint) or onnx (default: onnx for OUT.onnx, else orbax)",
    )
    parser.add_argument(
        "--quality",
        type=float,
        default=None,
        metavar="Q",
        help="onnx: build JPEG QF Q (1-100) in; the image is then the only input",
    )
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--step", type=int, default=None, help="checkpoint step (default: newest)")
    choice.add_argument(
        "--best-lpips",
        type=int,
        metavar="Q",
        help="the kept checkpoint with the lowest held-out LPIPS at QF Q (PSNR gain at every QF)",
    )
    args = parser.parse_args(argv)
    logging.set_verbosity(logging.ERROR)
    if (args.format or ("onnx" if args.out.endswith(".onnx") else "orbax")) == "onnx":
        if len(args.run) > 1 or args.step is not None or args.best_lpips is not None:
            parser.error("--format onnx takes one RUN (its newest checkpoint), an export or a name")
        if args.quality is not None and not 1 <= args.quality <= 100:
            parser.error(f"--quality must be in 1..100, got {args.quality:g}")
        try:
            size = export_onnx(args.run[0], args.out, args.quality)
        except (FileNotFoundError, ValueError) as error:
            print(f"jaxrestore.export: {error}", file=sys.stderr)
            return 1
        print(f"exported the generator of {args.run[0]} to {args.out}: {size / 1e6:.1f} MB")
        return 0
    if args.quality is not None:
        parser.error("--quality goes with --format onnx")
    try:
        run, step = args.run[0], args.step
        if args.best_lpips is not None:
            key = f"eval/lpips_restored_q{args.best_lpips}"
            picks = []
            for candidate in args.run:
                try:
                    picks.append(
                        (candidate, *checkpoint.best_lpips_step(candidate, args.best_lpips))
                    )
                except ValueError as error:  # this run has nothing eligible; others may
                    print(f"jaxrestore.export: {error}", file=sys.stderr)
            if not picks:
                raise ValueError(f"no eligible checkpoint in {', '.join(args.run)}")
            for candidate, candidate_step, record in picks:
                print(f"{candidate}: step {candidate_step}, {key} {record[key]:.4f}")
            run, step, _ = min(picks, key=lambda pick: pick[2][key])
        elif len(args.run) > 1:
            parser.error("several runs need --best-lpips")
        info = export(run, args.out, step)
    except (FileNotFoundError, ValueError) as error:
        print(f"jaxrestore.export: {error}", file=sys.stderr)
        return 1
    size = sum(p.stat().st_size for p in Path(args.out).rglob("*") if p.is_file())
    what = f"{info['kind']} ({info['stage']}, step {info['steps']})"
    print(f"exported {what} to {args.out}: {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(run())
