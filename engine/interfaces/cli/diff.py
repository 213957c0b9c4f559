"""``tokensweep diff A B``: how B differs from A, variable by variable, over the labels both hold."""

from __future__ import annotations

import sys

from engine.interfaces.cli.common import open_cube_arg

#: The attribute that marks a store ``diff --output`` wrote (only such a store is replaced).
DIFF_MARK = "tokensweep_diff"


def add_parser(sub) -> None:
    p = sub.add_parser("diff", help="compare two cubes: B / A (or B - A) of shared variables over shared labels")
    p.add_argument("a", help="the reference cube")
    p.add_argument("b", help="the cube compared with it")
    p.add_argument("--var", action="append", help="variable to compare (repeatable; default: every shared one)")
    p.add_argument("--difference", action="store_true", help="B - A in the variables' units instead of B / A")
    p.add_argument("--output", help="also write the ratios (or differences) as a Zarr cube (a local .zarr path)")
    p.add_argument("--json", action="store_true", help="the summary as JSON")


def run(args) -> int:
    from engine.analysis.diff import diff, summary
    from engine.interfaces.panels import cube_price_note

    if args.output:
        from engine.sweep.destination import check_derived_store

        check_derived_store(args.output, [args.a, args.b], DIFF_MARK)
    from engine.sweep.cube import CubeInfo

    a, b = open_cube_arg(args.a, "A"), open_cube_arg(args.b, "B")
    complete = {"a": CubeInfo.of(a).complete, "b": CubeInfo.of(b).complete}
    incomplete = [side.upper() for side, done in complete.items() if not done]
    incomplete_note = (
        f"{' and '.join(incomplete)} {'is' if len(incomplete) == 1 else 'are'} incomplete: uncomputed points read as "
        "missing and are not compared; run the sweep again to complete it"
        if incomplete
        else ""
    )
    how = "difference" if args.difference else "ratio"
    result = diff(a, b, args.var, how)
    from engine.escape import redact

    # ``complete``: 1 only when both inputs were (read by every command like a sweep's own flag).
    result.attrs.update(
        {"a": redact(str(args.a)), "b": redact(str(args.b)), DIFF_MARK: 1, "complete": int(not incomplete)}
    )
    rows = summary(result)
    notes = {side: cube_price_note(cube) for side, cube in (("a", a), ("b", b))}
    notes = {side: note for side, note in notes.items() if note}
    for side, note in notes.items():  # e.g. spot against on-demand, where spot fell back to TCO somewhere
        print(f"tokensweep: note: {side.upper()}: {note}", file=sys.stderr)
    if args.json:
        from engine.interfaces.jsonout import dumps

        print(
            dumps(
                {
                    "how": how,
                    "a": str(args.a),
                    "b": str(args.b),
                    "complete": not incomplete,
                    "a_complete": complete["a"],
                    "b_complete": complete["b"],
                    "incomplete_note": incomplete_note,
                    "price_notes": notes,
                    "variables": rows,
                }
            )
        )
    else:
        shape = " x ".join(f"{d} {n}" for d, n in result.sizes.items())
        print(f"B = {args.b} against A = {args.a}: {'B / A' if how == 'ratio' else 'B - A'} over {shape}")
        word = "B < A" if how == "ratio" else "B - A < 0"
        for row in rows:
            units = "" if how == "ratio" else f" {result[row['variable']].attrs['units']}"
            if not row["compared"]:  # nothing finite on both sides: no statistics to print
                print(f"  {row['variable']:<28} no cell holds a number in both cubes (of {row['cells']:,} cells)")
                continue
            print(
                f"  {row['variable']:<28} min {row['min']:.4g}  median {row['median']:.4g}  max {row['max']:.4g}{units}"
                f"  ({row['compared']:,} of {row['cells']:,} cells; {word} in {row['b_below_a']:.0%})"
            )
        if incomplete_note:
            print(f"note: {incomplete_note}")
    if args.output:
        import warnings

        from engine.sweep.destination import replace_derived_store

        with warnings.catch_warnings(), replace_derived_store(args.output, DIFF_MARK) as temporary:
            warnings.simplefilter("ignore", UserWarning)  # consolidated metadata is a Zarr v3 extension
            result.to_zarr(temporary, mode="w", zarr_format=3, consolidated=True)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0
