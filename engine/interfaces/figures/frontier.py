"""The cost-interactivity frontier per hardware."""

from __future__ import annotations

from pathlib import Path

from engine.axes import DEPLOYMENT_DIMS
from engine.errors import UserError
from engine.interfaces.figures.common import (
    caption,
    display_name,
    fix_dims,
    hardware_color,
    new_figure,
    pyplot,
    save,
)
from engine.interfaces.figures.labels import Label, freeze_layout, place
from engine.interfaces.figures.registry import Figure, full_cube_only, register


def frontier_data(ds, chosen: dict | None = None, cost: str = "cost_per_mtok_output_usd"):
    """The cost-interactivity frontier per hardware, every other dim fixed (the user's choice or a default)."""
    from engine.analysis.decisions import frontier

    if "hardware" not in ds.dims:
        raise UserError("cube: the frontier figure needs a hardware dim")
    keep = ("hardware", *(d for d in DEPLOYMENT_DIMS if d in ds.dims and d not in (chosen or {})))
    if len(keep) == 1:
        raise UserError(
            "cube: every deployment dim is fixed by --sel, so there is one configuration per hardware and no "
            "frontier; leave one of them free (or use tokensweep slice for the values)"
        )
    _, fixed = fix_dims(ds[cost], keep, chosen or {})
    sub = ds.sel(fixed)
    return frontier(sub, cost=cost, by=["hardware"], over=[d for d in keep if d != "hardware"]), fixed


def _deployment_label(row, dims) -> str:
    short = {"concurrency": "R", "replica_units": "n", "weight_bits": "w", "kv_bits": "kv"}
    parts = []
    for d in dims:
        value = row[d]
        if d == "parallelism":
            parts.append(str(value))
        elif d == "replica_units" and value == 0:
            parts.append("n=fewest")  # the fewest units that hold the replica
        else:
            parts.append(f"{short.get(d, d)}={value:g}")
    return " ".join(parts)


def draw_frontier(ds, output: Path, chosen=None, cost: str = "cost_per_mtok_output_usd"):
    """Cost per Mtok against tokens/s per user, log axes, one curve per hardware, deployments at the knees."""
    plt = pyplot()
    from matplotlib.ticker import FuncFormatter

    table, fixed = frontier_data(ds, chosen, cost)
    if table.empty:
        raise UserError("cube: no configuration has both a cost and an interactivity at this selection")
    dims = [d for d in DEPLOYMENT_DIMS if d in table.columns]
    fig, ax = new_figure(plt, (9.5, 6.5), caption_lines=2)
    ends, knees, points = [], [], []
    for hardware, group in table.groupby("hardware", sort=False):
        group = group.sort_values("interactivity_tps")
        (line,) = ax.step(group["interactivity_tps"], group[cost], where="post", marker="o", markersize=4,
                          label=display_name(str(hardware)), color=hardware_color(str(hardware)))  # fmt: skip
        # Knees: where the next point's cost jumps by more than 25 %, and the two ends.
        costs = group[cost].to_numpy()
        points += list(zip(group["interactivity_tps"], costs))
        jumps = {i for i in range(1, len(group) - 1) if costs[i] > 1.25 * costs[i - 1]}
        for i in sorted({0, len(group) - 1} | jumps):
            row = group.iloc[i]
            label = Label(_deployment_label(row, dims), (row["interactivity_tps"], row[cost]),
                          {"fontsize": 7, "color": line.get_color()}, optional=i in jumps)  # fmt: skip
            (knees if label.optional else ends).append(label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("interactivity, output tokens/s per user (log)")
    unit = ds[cost].attrs.get("units", "")
    ax.set_ylabel(f"{ds[cost].attrs.get('long_name', cost)} ({unit}, log)")
    ax.set_title("Cost-interactivity frontier: the cheapest deployment at each speed")
    ax.legend(title="hardware")
    # Labels on the frozen layout, each at a free offset: every curve's two ends, then the knees that fit.
    for axis in (ax.xaxis, ax.yaxis):  # plain numbers on log axes (60, not 6 x 10^1)
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if str(f"{v:g}")[0] in "25" else ""))
    place(ax, ends + knees, freeze_layout(fig), avoid=points)
    words = {
        "concurrency": "R concurrent requests per replica",
        "replica_units": "n units per replica",
        "weight_bits": "w weight bits",
        "kv_bits": "kv KV-cache bits",
        "parallelism": "the layout",
    }
    labels = "Labels: " + ", ".join(words.get(d, d) for d in dims)
    fig.text(0.01, 0.005, labels + "\n" + caption(ds, fixed), fontsize=7, ha="left", va="bottom", wrap=True)
    save(fig, output, dpi=130)
    plt.close(fig)
    return table


register(
    Figure(
        "frontier",
        "the cost-interactivity frontier per hardware",
        lambda ds, output, chosen=None, **o: draw_frontier(
            ds, output, chosen, o.get("cost") or "cost_per_mtok_output_usd"
        ),
        check=full_cube_only,
    )
)
