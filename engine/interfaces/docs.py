"""The registry tables of ``docs/model.md``, rendered from the axis and variable registries.

``python -m engine.interfaces.docs [docs/model.md]`` rewrites the text between the
``<!-- BEGIN name -->`` and ``<!-- END name -->`` markers; a test checks the page is up to
date, so every assumption and variable is documented with its real default and bounds.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from engine.axes import AXES, GRID_AXES, PARAMETERS
from engine.model import variables as V

READS = (
    ("all", V.COST), ("serving", V.SERVING), ("roofline", V.ROOFLINE),
    ("price", V.PRICE), ("replica", V.REPLICA), ("memory fit", V.FIT),
)  # fmt: skip


def _default(value) -> str:
    return (
        value
        if isinstance(value, str)
        else ", ".join(f"{v:g}" for v in value)
        if isinstance(value, tuple)
        else f"{value:g}"
    )


def assumptions_table() -> str:
    rows = ["| name | default | allowed | unit | meaning | source / reasoning |", "|---|---|---|---|---|---|"]
    for name in PARAMETERS:
        a = AXES[name]
        allowed = ", ".join(a.choices) if a.role == "choice" else a.bounds_text()
        rows.append(f"| `{name}` | {_default(a.default)} | {allowed} | {a.units} | {a.long_name} | {a.note} |")
    return "\n".join(rows)


def axes_table() -> str:
    rows = ["| axis | unit | allowed | default in a sweep | meaning |", "|---|---|---|---|---|"]
    for name in GRID_AXES:
        a = AXES[name]
        default = (
            _default(a.default) if a.default is not None else ("required" if name == "isl" else "from the workload mix")
        )
        whole = ", whole numbers" if a.integer else ""
        rows.append(f"| `{name}` | {a.units} | {a.bounds_text()}{whole} | {default} | {a.long_name} |")
    return "\n".join(rows)


def variables_table() -> str:
    rows = ["| variable | dims | unit | meaning | assumptions read |", "|---|---|---|---|---|"]
    for v in V.VARIABLES:
        dims = ", ".join("isl[, osl]" if d == V.CONTEXT else d for d in v.dims)
        reads = next((label for label, group in READS if group == v.reads), ", ".join(sorted(v.reads)) or "none")
        rows.append(f"| `{v.name}` | {dims} | {v.units} | {v.long_name} | {reads} |")
    return "\n".join(rows)


def uncertainty_table() -> str:
    """The shipped profile's prediction intervals and their measured coverage."""
    import math

    from engine.model.catalog import DEFAULT_PROFILE, load_catalog

    found = load_catalog().profile(DEFAULT_PROFILE).uncertainty
    groupings = list(found["coverage"])
    rows = [
        f"| metric | measured / predicted, {found['level']:.0%} interval | quantiles used | "
        + " | ".join(f"coverage, new {by}" for by in groupings)
        + " |",
        "|---|---|---|" + "---|" * len(groupings),
    ]
    for metric, (lo, hi) in found["log_ratio_quantiles"].items():
        level = found["quantile_levels"][metric]
        cover = " | ".join(f"{found['coverage'][by].get(metric, math.nan):.0%}" for by in groupings)
        rows.append(f"| {metric} | x{math.exp(lo):.3g} to x{math.exp(hi):.3g} | {level:.0%} | {cover} |")
    every = " | ".join(f"{found['coverage'][by]['all']:.0%}" for by in groupings)
    rows.append(f"| every metric | | | {every} |")
    return "\n".join(rows)


TABLES = {
    "axes": axes_table,
    "assumptions": assumptions_table,
    "variables": variables_table,
    "uncertainty": uncertainty_table,
}


def render(text: str) -> str:
    """``text`` with every marked table replaced by its current rendering."""
    for name, table in TABLES.items():
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n)(?:.*?\n)?(<!-- END {name} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"no <!-- BEGIN {name} --> ... <!-- END {name} --> markers")
        rendered = table()
        text = pattern.sub(lambda m, t=rendered: m.group(1) + t + "\n" + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    path = Path((argv if argv is not None else sys.argv[1:] or ["docs/model.md"])[0])
    path.write_text(render(path.read_text()))
    print(f"updated {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
