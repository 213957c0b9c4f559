"""The feasibility phase diagram: units needed over model size x ISL, with boundaries and real models."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import UserError
from engine.interfaces.figures.common import (
    caption,
    count_ticks,
    display_name,
    fix_dims,
    new_figure,
    save,
    size_dim,
    unit_word,
)
from engine.interfaces.figures.registry import Figure, full_cube_only, register
from engine.sweep.cube import CubeInfo
from engine.units import format_count

PHASE_LEVELS = (32, 64, 128)  # contour levels, units (the calculator draws these)
MARKER_ISL = 1e6  # where catalog models are marked


def phase_data(ds, chosen: dict | None = None):
    """Units needed over (model size, ISL) for the synthetic sizes, plus the catalog markers.

    Returns ``(grid, markers, fixed)``: ``grid`` is units_needed with dims (params, isl);
    ``markers`` maps a catalog model to (total params, ISL nearest 1M, units needed there).
    """
    chosen = chosen or {}
    if "units_needed" not in ds:
        raise UserError("cube: has no units_needed variable (add it to the spec's variables)")
    size = size_dim(ds)
    units, fixed = fix_dims(ds["units_needed"], (size, "isl"), chosen)
    markers: dict[str, tuple[float, float, int]] = {}
    if size == "params":
        grid = units
    else:
        synthetic = ds["synthetic"].values.astype(bool)
        if not synthetic.any():
            raise UserError("cube: the phase diagram needs synthetic model sizes (a 'synthetic:' block in the spec)")
        grid = (
            units.isel(model=synthetic).swap_dims(model="total_params").rename(total_params="params").drop_vars("model")
        )
        marker_isl = units["isl"].sel(isl=MARKER_ISL, method="nearest").item()
        for name in units["model"].values[~synthetic]:
            value = units.sel(model=name, isl=marker_isl)
            markers[str(name)] = (float(value["total_params"]), float(marker_isl), int(value))
    grid = grid.transpose("params", "isl").load()
    return grid, markers, fixed


def draw_phase(ds, output: Path, chosen: dict | None = None, levels=PHASE_LEVELS):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm

    grid, markers, fixed = phase_data(ds, chosen)
    hardware = fixed.get("hardware", "")
    units_word = unit_word(str(hardware)) if hardware else "units"
    x, y, z = grid["isl"].values, grid["params"].values, grid.values.astype(float)
    top = max(2.0, float(np.nanmax(z)))
    bounds = 2.0 ** np.arange(0, np.ceil(np.log2(top)) + 1)
    fig, ax = new_figure(plt, (9, 6.5))
    ax.set_facecolor("#e8e8e8")  # outside the swept sizes (markers may sit there)
    filled = ax.contourf(x, y, z, levels=bounds, norm=BoundaryNorm(bounds, 256), cmap="viridis", extend="max")
    lines = ax.contour(x, y, z, levels=list(levels), colors="white", linewidths=1.6)
    ax.clabel(lines, fmt=lambda v: f"{v:g} {units_word}", fontsize=9)
    bar = fig.colorbar(filled, ax=ax, ticks=bounds)
    shown = display_name(str(hardware))
    bar.set_label(f"{shown} {units_word} needed for one replica (count)")
    middle = np.sqrt(x[0] * x[-1])
    for name, (params, isl, units) in markers.items():
        ax.plot(isl, params, marker="o", color="red", markeredgecolor="white", markersize=8)
        right = isl > middle  # labels point inwards: never cut at the figure's edge
        ax.annotate(
            f"{name} ({units} {units_word})",
            (isl, params),
            textcoords="offset points",
            xytext=(-8, 4) if right else (8, 4),
            ha="right" if right else "left",
            color="white",
            fontsize=9,
            fontweight="bold",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    sizes = [params for params, _, _ in markers.values()]
    ax.set_ylim(min([y[0], *sizes]) / 1.06, max([y[-1], *sizes]) * 1.06)
    for axis, (lo, hi) in ((ax.xaxis, (x[0], x[-1])), (ax.yaxis, ax.get_ylim())):
        ticks = count_ticks(lo, hi)
        axis.set_ticks(ticks, [format_count(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("average input length per turn, ISL (tokens, log)")
    ax.set_ylabel("model size, total parameters (log)")
    ax.set_title(f"Feasibility phase diagram: {shown} {units_word} to hold weights + KV of all requests")
    from matplotlib.lines import Line2D

    reference = (CubeInfo.of(ds).spec.get("synthetic") or {}).get("reference", "the reference model")
    legend = [
        Line2D([], [], color="white", linewidth=1.6, label=f"boundary at {', '.join(f'{v:g}' for v in levels)} {units_word}"),
        Line2D([], [], marker="o", color="red", markeredgecolor="white", linestyle="none",
               label=f"catalog model at ISL {format_count(MARKER_ISL)}, its own architecture (the background\n"
               f"scales {reference}, so a dot may differ from the colour beneath it)"),
    ]  # fmt: skip
    ax.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=2, fontsize=8,
              facecolor="#3b528b", labelcolor="white")  # fmt: skip
    fig.text(0.01, 0.005, caption(ds, fixed), fontsize=7, ha="left", va="bottom", wrap=True)
    save(fig, output, dpi=130)
    plt.close(fig)
    return lines


register(
    Figure(
        "phase",
        "feasibility phase diagram: units needed over model size x ISL",
        lambda ds, output, chosen=None, **o: draw_phase(ds, output, chosen, levels=o.get("levels") or PHASE_LEVELS),
        check=full_cube_only,
    )
)
