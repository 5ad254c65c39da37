"""Plot a training run's curves from its metrics.jsonl.

    python -m jaxrestore.plot_run RUN [RUN ...] --out curves.png

The training loss, the held-out PSNR gain over JPEG and LPIPS relative to JPEG
per quality, and the quality predictor's held-out error, each panel drawn when a
run logged it (`jaxrestore.evaluation.curves`). Several runs share the axes. A
last line cut short by a kill is left out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jaxrestore.evaluation import curves


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jaxrestore.plot_run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        curves.plot(args.runs, args.out)
    except (FileNotFoundError, ValueError) as error:
        print(f"jaxrestore.plot_run: {error}", file=sys.stderr)
        return 1
    print(f"jaxrestore.plot_run: wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run())
