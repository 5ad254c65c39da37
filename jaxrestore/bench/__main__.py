"""`python -m jaxrestore.bench`: the benchmarks (see `jaxrestore.bench.cases`)."""

import sys

from jaxrestore.bench.cases import run

if __name__ == "__main__":
    sys.exit(run())
