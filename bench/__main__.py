"""`python -m bench [--quick | --tiny] [--no-e2e] [--search] [--scaling 1,2] [--output-dir DIR]`: run the benchmarks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.suite import run_all


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="reduced grids, about a minute")
    parser.add_argument(
        "--tiny", action="store_true", help="tiny grids, a smoke test of every benchmark (no figures worth reading)"
    )
    parser.add_argument("--no-e2e", action="store_true", help="skip the end-to-end sweeps")
    parser.add_argument("--output-dir", default="outputs/bench", help="where results.json and results.md go")
    parser.add_argument(
        "--search",
        action="store_true",
        help="only the search benchmark: a 1e9-point reduction end to end and compute only at 1 and 2 workers, "
        "plan estimate vs actual, llm-analysis, cost per draw (to search.md)",
    )
    parser.add_argument(
        "--scaling", metavar="N,N,...", help="only the scaling table for these worker counts (e.g. 1,2), to scaling.md"
    )
    args = parser.parse_args(argv)
    size = "tiny" if args.tiny else "quick" if args.quick else "full"
    if args.search:
        from bench.suite import run_search, search_markdown

        result = run_search(size, Path(args.output_dir), log=lambda m: print(m, file=sys.stderr))
        print(search_markdown(result))
        return 0
    if args.scaling:
        import json

        from bench.scaling import run_scaling, scaling_markdown

        try:
            workers = sorted({int(w) for w in args.scaling.split(",")})
        except ValueError:
            parser.error(f"--scaling: expected worker counts such as 1,2, got {args.scaling!r}")
        if not workers or workers[0] < 1:
            parser.error("--scaling: worker counts must be >= 1")
        out = Path(args.output_dir)
        result = run_scaling(workers, size, out, log=lambda m: print(m, file=sys.stderr))
        (out / "scaling.json").write_text(json.dumps(result, indent=2))
        (out / "scaling.md").write_text(scaling_markdown(result))
        print(scaling_markdown(result))
        return 0
    run_all(size, Path(args.output_dir), include_e2e=not args.no_e2e, log=lambda m: print(m, file=sys.stderr))
    print((Path(args.output_dir) / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
