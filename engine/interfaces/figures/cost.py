"""Cost per Mtok against concurrency, per hardware, with the break-even against an API price."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.interfaces.figures.common import (
    caption,
    display_name,
    display_words,
    fix_dims,
    hardware_color,
    new_figure,
    pyplot,
    save,
    size_dim,
)
from engine.interfaces.figures.registry import Figure, full_cube_only, register
from engine.units import parse_quantity


def cost_data(ds, chosen: dict | None = None, model: str | None = None, api_price: float = 0.60):
    """Cost per Mtok vs concurrency per hardware, and break-even concurrencies.

    Returns ``(cost, break_even, fixed)``; ``break_even`` maps "<hw> below <other>" and
    "<hw> below API" to the smallest concurrency (None if never).
    """
    from engine.analysis.compare import break_even_concurrency

    chosen = dict(chosen or {})
    size = size_dim(ds)
    if model is not None:
        chosen[size] = model if size == "model" else parse_quantity(model, "--model")
    cost, fixed = fix_dims(ds["cost_per_mtok_usd"], ("concurrency", "hardware"), chosen)
    cost = cost.transpose("hardware", "concurrency").load()
    names = [str(h) for h in cost["hardware"].values]
    result: dict[str, int | None] = {}
    for a in names:
        for b in names:
            if a != b:
                result[f"{a} below {b}"] = _maybe_int(
                    break_even_concurrency(cost.sel(hardware=a), cost.sel(hardware=b))
                )
        result[f"{a} below API"] = _maybe_int(break_even_concurrency(cost.sel(hardware=a), api_price))
    return cost, result, fixed


def _maybe_int(value) -> int | None:
    v = float(value)
    return None if np.isnan(v) else int(v)


def draw_cost(ds, output: Path, chosen=None, model=None, api_price: float = 0.60):
    plt = pyplot()

    cost, break_even, fixed = cost_data(ds, chosen, model, api_price)
    from matplotlib.ticker import FuncFormatter

    fig, ax = new_figure(plt, (9, 6), caption_lines=5)
    r = cost["concurrency"].values
    for name in cost["hardware"].values:
        series = cost.sel(hardware=name)
        (line,) = ax.plot(r, series.values, marker="o", label=display_name(str(name)), color=hardware_color(str(name)))
        at = break_even.get(f"{name} below API")
        if at is not None:  # first concurrency below the API price: a star on the line
            ax.plot(
                at,
                series.sel(concurrency=at).item(),
                marker="*",
                markersize=16,
                color=line.get_color(),
                markeredgecolor="black",
                zorder=5,
            )
    ax.axhline(api_price, color="black", linestyle="--", label=f"reference API price ${api_price:g}/Mtok")
    if any(k.endswith("below API") and v is not None for k, v in break_even.items()):
        ax.plot([], [], marker="*", markersize=12, color="grey", markeredgecolor="black", linestyle="none",
                label="first R below the API price")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else ""))
    ax.set_xlabel("concurrent requests per replica, R (log2)")
    ax.set_ylabel("hardware cost per million tokens, blended (USD/Mtok, log)")
    size = size_dim(ds)
    ax.set_title(f"Cost per Mtok vs concurrency: {fixed.get(size)}")
    ax.legend()
    pairs = [f"{display_words(k)}: R={v}" for k, v in break_even.items() if v is not None]
    text = "Break-even (smallest R where cheaper; stars mark the API crossing): " + (
        "; ".join(pairs) if pairs else "none in range"
    )
    fig.text(0.01, 0.005, text + "\n" + caption(ds, fixed), fontsize=7, ha="left", va="bottom", wrap=True)
    save(fig, output, dpi=130)
    plt.close(fig)
    return break_even


register(
    Figure(
        "cost",
        "cost per Mtok against concurrency, per hardware, with the API break-even",
        lambda ds, output, chosen=None, **o: draw_cost(ds, output, chosen, o.get("model"), o.get("api_price", 0.60)),
        check=full_cube_only,
    )
)
