"""`python -m bench [--quick] [--no-e2e] [--output-dir DIR]`: run the benchmarks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.suite import run_all


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="reduced grids, about a minute")
    parser.add_argument("--no-e2e", action="store_true", help="skip the end-to-end sweeps")
    parser.add_argument("--output-dir", default="outputs/bench", help="where results.json and results.md go")
    args = parser.parse_args(argv)
    size = "quick" if args.quick else "full"
    run_all(size, Path(args.output_dir), include_e2e=not args.no_e2e, log=lambda m: print(m, file=sys.stderr))
    print((Path(args.output_dir) / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
