"""The study command: `python -m jaxrestore.study prepare|serve|report` (see the package)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from absl import logging

import jaxrestore.study as package

NAME = "jaxrestore.study"


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog=NAME, description=package.__doc__.split("\n\n")[0])
    commands = main.add_subparsers(dest="command", required=True)

    prepare = commands.add_parser("prepare", help="build a study from images and video frames")
    prepare.add_argument("inputs", nargs="+", type=Path, help="image/video files or folders")
    prepare.add_argument("--out", "-o", type=Path, required=True, help="the new study folder")
    prepare.add_argument(
        "--quality", type=int, nargs="+", default=[10, 20], help="JPEG QFs (or CRFs, quantisers)"
    )
    prepare.add_argument("--codec", default="jpeg", help="jpeg, h264 (CRF) or mpeg2 (quantiser)")
    prepare.add_argument(
        "--methods", nargs="+", help="packaged models (ssim, gan) or NAME=PATH; default ssim gan"
    )
    prepare.add_argument(
        "--checkpoint", action="append", metavar="NAME=PATH", help="a workdir or export, repeatable"
    )
    prepare.add_argument("--frames", type=int, default=4, help="frames taken from each video")
    prepare.add_argument("--crop", help="W or WxH: the centred window shown (default whole)")
    prepare.add_argument("--seed", type=int, default=0)
    prepare.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")

    serve = commands.add_parser("serve", help="run the study's web app")
    serve.add_argument("study", type=Path)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--reference", default="toggle", help="the source picture: toggle, on or off"
    )
    serve.add_argument("--zoom", type=float, default=2.0, help="magnification of the zoom")

    report = commands.add_parser("report", help="preference rates, tests and a plot")
    report.add_argument("study", type=Path)
    report.add_argument("--out", "-o", type=Path, help="default STUDY/report")
    return main


def run(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    logging.set_verbosity(logging.ERROR)
    try:
        if args.command == "prepare":
            from jaxrestore.study import prepare

            args.argv = argv
            out = prepare.prepare(args)
            print(f"{NAME}: study in {out}", file=sys.stderr)
        elif args.command == "serve":
            try:
                from jaxrestore.study import app
            except ImportError as error:
                raise ValueError(f"serve needs {error.name}: pip install -e '.[study]'") from None

            app.serve(args.study, args.host, args.port, args.reference, args.zoom)
        else:
            from jaxrestore.study import report

            out = report.write_report(args.study, args.out)
            print(f"{NAME}: report in {out}", file=sys.stderr)
    except (ValueError, FileNotFoundError, OSError) as error:
        print(f"{NAME}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run())
