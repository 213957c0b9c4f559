"""Where the WSE-3 is cheaper than GPUs at equal interactivity, over model size x ISL."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import UserError
from engine.interfaces.figures.common import (
    caption,
    count_ticks,
    display_name,
    pyplot,
    save,
    size_dim,
    wafer_of,
)
from engine.interfaces.figures.registry import Figure, register
from engine.units import format_count

ADVANTAGE_TARGETS = (30.0, 100.0, 300.0, 1000.0)


def advantage_data(ds, targets=ADVANTAGE_TARGETS, wafer: str | None = None, cost: str = "cost_per_mtok_output_usd"):
    """Over model size x ISL: cheapest wafer deployment / cheapest GPU deployment meeting each target.

    Returns a DataArray (target, size, isl): < 1 where the wafer is cheaper; 0 where no GPU
    reaches the target but the wafer does; inf where only GPUs do; NaN where neither does.
    """
    import xarray as xr

    from engine.analysis.decisions import cheapest

    wafer = wafer or wafer_of(ds)
    if "hardware" not in ds.dims or wafer not in [str(h) for h in ds["hardware"].values]:
        raise UserError(f"cube: the advantage figure needs a hardware dim with {wafer} and GPUs")
    size = size_dim(ds)
    gpus = [str(h) for h in ds["hardware"].values if str(h) != wafer]
    if not gpus:
        raise UserError("cube: the advantage figure needs at least one GPU beside the wafer")
    keep = (size, "isl")
    # Index coordinates only: lazy auxiliary coordinates would be computed at every arithmetic step.
    ds = ds.reset_coords(drop=True)
    level = "min_interactivity_tps"  # a reduced cube's frontier form: the cheapest at >= each level
    if level in ds.dims:
        missing = [t for t in targets if not np.isclose(ds[level].values, float(t)).any()]
        if missing:
            raise UserError(
                f"cube: the reduced cube has no {level} level {missing[0]:g} "
                f"(levels: {', '.join(f'{v:g}' for v in ds[level].values)})"
            )
    out = []
    for target in targets:
        where = {"interactivity_tps": {"ge": float(target)}}
        at = ds
        if level in ds.dims:
            at = ds.sel({level: float(target)}, method="nearest").drop_vars(level)
            where = None
        best = {}
        for side, names in (("wafer", [wafer]), ("gpu", gpus)):
            sub = at.sel(hardware=names)
            over = [d for d in sub[cost].dims if d not in keep and d != "token_type"]
            best[side] = cheapest(sub, cost=cost, where=where, over=over)[cost]
        w, g = best["wafer"], best["gpu"]
        ratio = (w / g).where(~(w.isnull() & g.notnull()), np.inf).where(~(w.notnull() & g.isnull()), 0.0)
        out.append(ratio.expand_dims(target=[float(target)]))
    return xr.concat(out, "target").transpose("target", size, "isl")


def advantage_summary(ratio) -> str:
    """What the advantage figure shows, in words computed from its data (the README quotes it).

    Per target: the share of cells where the WSE-3 is cheaper, where GPUs are, where only one
    side reaches the target and where neither does; over every cell both reach, the ratio's
    range and median.

    >>> import xarray as xr
    >>> r = xr.DataArray([[[0.5, 2.0], [0.0, np.nan]]], dims=("target", "params", "isl"), coords={"target": [30.0]})
    >>> print(advantage_summary(r))
    - at >= 30 tokens/s per user: WSE-3 cheaper in 25 % of cells, GPUs cheaper in 25 %, only the WSE-3 reaches it in 25 %, only GPUs in 0 %, neither in 25 %
    - where both reach a target, the WSE-3 / GPU cost ratio runs from 0.5 to 2 (median 1.2; GPUs cheaper in 50 % of those cells)
    """
    lines = []
    values = ratio.values.astype(float)
    for i, target in enumerate(ratio["target"].values):
        z = values[i]
        both = np.isfinite(z) & (z > 0)

        def share(mask, cells=z.size):
            return f"{100.0 * mask.sum() / cells:.0f} %"

        lines.append(
            f"- at >= {target:g} tokens/s per user: WSE-3 cheaper in {share(both & (z < 1))} of cells, "
            f"GPUs cheaper in {share(both & (z > 1))}, only the WSE-3 reaches it in {share(z == 0)}, "
            f"only GPUs in {share(np.isinf(z))}, neither in {share(np.isnan(z))}"
        )
    both = values[np.isfinite(values) & (values > 0)]
    if both.size:
        lines.append(
            f"- where both reach a target, the WSE-3 / GPU cost ratio runs from {both.min():.2g} to {both.max():.3g} "
            f"(median {np.median(both):.2g}; GPUs cheaper in {100.0 * (both > 1).mean():.0f} % of those cells)"
        )
    return "\n".join(lines)


def wafer_break_even(ds, ratio, wafer: str | None = None):
    """Per cell of :func:`advantage_data` where both sides reach the target: the WSE-3's hourly
    rate per system (``break_even_usd_per_hour``) and its system price at TCO
    (``break_even_capex_usd``) at which it would cost what the cheapest GPU deployment does.

    Exact: the wafer's cost is proportional to its rate, so the rate is ``rate / ratio``. Also
    returns the wafer's listed rate and catalog price, for comparison."""
    from engine.analysis.breakeven import assumption, break_even_prices, unit_rate

    wafer = wafer or wafer_of(ds)
    at = ds.sel(hardware=wafer)
    rate = float(np.nanmax(np.asarray(unit_rate(at, over=list(at.dims)), dtype=float)))
    both = np.isfinite(ratio) & (ratio > 0)
    power = float(at["power_kw"]) if "power_kw" in at.coords else np.nan
    years = assumption(ds, "amortisation_years")
    prices = break_even_prices(
        ratio.where(both), 1.0, rate, power, years, assumption(ds, "pue"), assumption(ds, "usd_per_kwh")
    )
    listed = {"usd_per_hour": rate, "capex_usd": float(at["capex_per_unit_usd"]) if "capex_per_unit_usd" in at.coords
              else np.nan, "price_source": str(at["price_source"].values) if "price_source" in at.coords else ""}  # fmt: skip
    return prices, listed


def break_even_summary(prices, listed) -> str:
    """One line over the grid: the range and median of the WSE-3's break-even rate and system price."""
    from engine.units import format_usd

    rates = prices["break_even_usd_per_hour"].values.astype(float)
    rates = rates[np.isfinite(rates)]
    if not rates.size:
        return "- no cell is reached by both sides, so no break-even price"
    capex = prices["break_even_capex_usd"].values.astype(float)
    capex = capex[np.isfinite(prices["break_even_usd_per_hour"].values.astype(float))]
    priced = capex[np.isfinite(capex)]
    line = (
        f"- break-even WSE-3 price, where both reach a target: {format_usd(rates.min())} to {format_usd(rates.max())} "
        f"per system-hour (median {format_usd(float(np.median(rates)))}; listed {format_usd(listed['usd_per_hour'])}/h)"
    )
    if priced.size:
        line += (
            f", or a system price at TCO of {format_usd(priced.min())} to {format_usd(priced.max())} "
            f"(median {format_usd(float(np.median(capex[np.isfinite(capex)])))}; catalog "
            f"{format_usd(listed['capex_usd'])})"
        )
        if priced.size < capex.size:
            line += f"; in {100 * (1 - priced.size / capex.size):.0f} % of those cells no system price is low enough"
    return line


#: How sure a cell's winner must be to count as robust.
ROBUST = 0.9


def wafer_win_probability(ds, ratio, wafer: str | None = None):
    """Per cell both sides reach: the probability the WSE-3 is really cheaper than the cheapest
    GPU deployment, from the cube profile's recorded errors (None if it records none)."""
    from engine.analysis.uncertainty import cost_error, win_probability
    from engine.sweep.cube import CubeInfo

    profile = CubeInfo.of(ds).spec.get("profile", {})
    mine, theirs = cost_error(profile, "wafer"), cost_error(profile, "gpu")
    if mine is None or theirs is None:
        return None
    both = np.isfinite(ratio) & (ratio > 0)
    return ratio.copy(data=win_probability(ratio.where(both).values, 1.0, *mine, *theirs))


def robustness_summary(probability) -> str:
    if probability is None:
        return "- no robustness: the cube's profile records no uncertainty"
    p = probability.values.astype(float)
    both = p[np.isfinite(p)]
    if not both.size:
        return "- no cell is reached by both sides"
    sure = (both > ROBUST) | (both < 1 - ROBUST)
    return (
        f"- robust (one side at least {100 * ROBUST:.0f} % sure to be cheaper, given the profile's measured errors) in "
        f"{100 * sure.mean():.0f} % of the cells both reach; the WSE-3 surely cheaper in {100 * (both > ROBUST).mean():.0f} %, "
        f"GPUs surely cheaper in {100 * (both < 1 - ROBUST).mean():.0f} %"
    )


def describe_advantage(ds, targets=ADVANTAGE_TARGETS) -> str:
    """What the README says about an advantage figure: :func:`advantage_summary`, the break-even
    price and where the answer is robust."""
    from engine.analysis.breakeven import foreign_pools

    ratio = advantage_data(ds, targets).load()
    pools = foreign_pools(ds, wafer_of(ds))
    priced = (
        f"- no break-even WSE-3 price: its deployments include prefill pools of {', '.join(pools)}, whose price "
        "does not move with the wafer's, so its cost is not proportional to its rate"
        if pools
        else break_even_summary(*wafer_break_even(ds, ratio))
    )
    return "\n".join(
        [
            advantage_summary(ratio),
            priced,
            robustness_summary(wafer_win_probability(ds, ratio)),
        ]
    )


def draw_advantage(ds, output: Path, targets=ADVANTAGE_TARGETS):
    """One panel per interactivity target: the cost ratio over model size x ISL, equal-cost contour,
    and the regions only one side (or neither) reaches, each in its own colour with a legend."""
    plt = pyplot()
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ratio = advantage_data(ds, targets).load()
    probability = wafer_win_probability(ds, ratio)
    size = size_dim(ds)
    y = ratio[size].values if size == "params" else ds["total_params"].values
    x = ratio["isl"].values
    bounds = [1 / 100, 1 / 30, 1 / 10, 1 / 3, 1, 3, 10, 30, 100]
    cmap = plt.get_cmap("RdBu_r", len(bounds) - 1)
    only = {"wafer": "#6a3d9a", "gpu": "#e08214", "neither": "#d9d9d9"}  # outside the ratio's red-blue scale
    fig, axes = plt.subplots(1, len(targets), figsize=(3.6 * len(targets) + 1.6, 5.0), sharey=True, squeeze=False,
                             layout="constrained")  # fmt: skip
    drawn: set[str] = set()  # the legend lists only what some panel shows
    for ax, target in zip(axes[0], targets):
        z = ratio.sel(target=float(target)).values.astype(float)
        ratios = np.where(np.isfinite(z) & (z > 0), np.clip(z, bounds[0], bounds[-1]), np.nan)
        mesh = ax.pcolormesh(x, y, ratios, norm=BoundaryNorm(bounds, cmap.N), cmap=cmap, shading="nearest")
        category = np.full(z.shape, np.nan)
        category[z == 0] = 0  # only the wafer reaches the target
        category[np.isinf(z)] = 1  # only GPUs do
        category[np.isnan(z)] = 2  # neither
        drawn.update(side for side, code in zip(only, range(3)) if (category == code).any())
        ax.pcolormesh(x, y, np.ma.masked_invalid(category), cmap=ListedColormap(list(only.values())), vmin=-0.5,
                      vmax=2.5, shading="nearest")  # fmt: skip
        if probability is not None:  # hatched: the profile's measured errors could flip the winner
            p = probability.sel(target=float(target)).values.astype(float)
            unsure = np.isfinite(p) & (p < ROBUST) & (p > 1 - ROBUST)
            if unsure.any():
                _hatch(ax, x, y, unsure)
                drawn.add("not robust")
        if (
            np.nanmin(np.where(np.isfinite(z) & (z > 0), z, np.nan), initial=np.inf)
            < 1
            < np.nanmax(np.where(np.isfinite(z), z, np.nan), initial=-np.inf)
        ):
            ax.contour(
                x, y, np.where(np.isfinite(z) & (z > 0), z, np.nan), levels=[1.0], colors="black", linewidths=1.8
            )
            drawn.add("equal cost")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"at >= {target:g} tokens/s per user", fontsize=10)
        ax.set_xlabel("ISL (tokens, log)")
        ax.xaxis.set_major_locator(FixedLocator(count_ticks(x[0], x[-1], most=5)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: format_count(v)))
        ax.xaxis.set_minor_formatter(NullFormatter())
    left = axes[0][0]
    left.set_ylabel("model size, total parameters (log)")
    left.yaxis.set_major_locator(FixedLocator(count_ticks(y.min(), y.max())))
    left.yaxis.set_major_formatter(FuncFormatter(lambda v, _: format_count(v)))
    left.yaxis.set_minor_formatter(NullFormatter())
    bar = fig.colorbar(mesh, ax=axes[0].tolist(), ticks=bounds[1:-1], shrink=0.8)
    bar.ax.set_yticklabels([f"{b:.2g}" for b in bounds[1:-1]])
    bar.set_label("cost ratio WSE-3 / GPU (blue: WSE-3 cheaper)")
    entries = {
        "wafer": Patch(color=only["wafer"], label="only the WSE-3 reaches the target"),
        "gpu": Patch(color=only["gpu"], label="only GPUs reach it"),
        "neither": Patch(color=only["neither"], label="neither does"),
        "equal cost": plt.Line2D([], [], color="black", linewidth=1.8, label="equal cost"),
        "not robust": Patch(
            facecolor="none",
            edgecolor="black",
            hatch="///",
            label=f"winner less than {100 * ROBUST:.0f} % sure (measured model error)",
        ),
    }
    legend = [handle for key, handle in entries.items() if key in drawn]
    if legend:
        fig.legend(handles=legend, loc="outside lower center", ncol=len(legend), fontsize=8)
    gpus = ", ".join(display_name(str(h)) for h in ds["hardware"].values if str(h) != wafer_of(ds))
    fig.suptitle(f"Cheapest WSE-3 vs cheapest GPU deployment ({gpus}) at equal interactivity, cost per output Mtok\n"
                 f"{caption(ds, {})}", fontsize=9)  # fmt: skip
    save(fig, output, dpi=120)
    plt.close(fig)
    return ratio


def _edges(centers) -> np.ndarray:
    """Cell edges around the centres as ``pcolormesh(shading="nearest")`` draws them (midpoints,
    the ends mirrored), so a hatch covers exactly its coloured cell."""
    c = np.asarray(centers, dtype=float)
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def _hatch(ax, x, y, mask) -> None:
    """Hatch the cells where ``mask`` (over y, x) holds, over whatever colour they have."""
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    ex, ey = _edges(x), _edges(y)
    cells = [Rectangle((ex[j], ey[i]), ex[j + 1] - ex[j], ey[i + 1] - ey[i]) for i, j in zip(*np.nonzero(mask))]
    ax.add_collection(PatchCollection(cells, facecolor="none", edgecolor="black", linewidth=0, hatch="///",
                                      alpha=0.6), autolim=False)  # fmt: skip


def _check(spec) -> None:
    """From a full cube, or from a reduction that keeps hardware with a frontier on interactivity."""
    reduction = spec.reduction
    if reduction is not None and (reduction.speed != "interactivity_tps" or "hardware" in reduction.over):
        raise ValueError("from a reduction it needs reduce.frontier on interactivity_tps and hardware kept")


register(
    Figure(
        "advantage",
        "where the WSE-3 is cheaper than GPUs at equal interactivity, over model size x ISL",
        lambda ds, output, chosen=None, **o: draw_advantage(ds, output, o.get("targets") or ADVANTAGE_TARGETS),
        check=_check,
    )
)
