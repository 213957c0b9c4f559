"""The tornado figure of ``tokensweep sensitivity``: one bar per assumption, from the figure at
its low value to the figure at its high value, largest first, around the base value."""

from __future__ import annotations

import math
from pathlib import Path

from engine.analysis.sensitivity import units_of
from engine.interfaces.figures.common import pyplot, save


def draw_tornado(base: float, rows, what: str, where: str, output) -> None:
    """``what``: the figure swung (with its unit); ``where``: the point it is taken at."""
    plt = pyplot()
    shown = [r for r in rows if math.isfinite(r.figure_low) and math.isfinite(r.figure_high)]
    fig, ax = plt.subplots(figsize=(8.0, 1.2 + 0.38 * max(1, len(shown))), layout="constrained")
    for i, r in enumerate(reversed(shown)):
        for value, color in ((r.figure_low, "#2166ac"), (r.figure_high, "#b2182b")):
            ax.barh(i, value - base, left=base, color=color, height=0.6)
        unit = units_of(r.name)
        label = f"  {r.low:.3g} .. {r.high:.3g} {'' if unit == '1' else unit}".rstrip()  # a bare 1 is no unit
        ax.text(max(r.figure_low, r.figure_high), i, label, va="center", fontsize=7)
    ax.set_yticks(range(len(shown)), [r.name for r in reversed(shown)], fontsize=8)
    ax.axvline(base, color="black", linewidth=1)
    if " / on " in what:  # a ratio of two sides: where the winner flips
        ax.axvline(1.0, color="grey", linestyle="--", linewidth=1, label="ratio 1: equal cost")
        fig.legend(loc="outside lower center", fontsize=8)  # beside the axes: never over a bar's label
    ax.set_xlabel(f"{what} (base {base:.4g})")
    ax.set_title(f"Sensitivity of {what}\nat {where}\none assumption or price at a time: blue at its low "
                 "value, red at its high value", fontsize=9)  # fmt: skip
    ax.margins(x=0.25)
    save(fig, Path(output), dpi=120)
    plt.close(fig)
