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
    pyplot,
    save,
    size_dim,
    unit_word,
)
from engine.interfaces.figures.labels import Label, contour_labels, freeze_layout, place
from engine.interfaces.figures.registry import Figure, full_cube_only, register
from engine.sweep.cube import CubeInfo
from engine.units import format_count

PHASE_LEVELS = (32, 64, 128)  # contour levels, units (the calculator draws these)
MARKER_ISL = 1e6  # where catalog models are marked


def phase_data(ds, chosen: dict | None = None):
    """Units needed over (model size, ISL) for the synthetic sizes, plus the catalog markers.

    Returns ``(grid, markers, fixed)``: ``grid`` is units_needed with dims (params, isl);
    ``markers`` maps a catalog model to (total params, ISL, units needed there), at the axis
    value nearest :data:`MARKER_ISL` (the figure states which: exactly 1M when the axis has it).
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
    plt = pyplot()
    from matplotlib import patheffects
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
    bar = fig.colorbar(filled, ax=ax, ticks=bounds)
    shown = display_name(str(hardware))
    bar.set_label(f"{shown} {units_word} needed for one replica (count)")
    for _name, (params, isl, _units) in markers.items():
        ax.plot(isl, params, marker="o", color="red", markeredgecolor="white", markersize=8)
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
               label=f"catalog model at ISL {_marker_context(markers)}, its own architecture (the background\n"
               f"scales {reference}, so a dot may differ from the colour beneath it)"),
    ]  # fmt: skip
    ax.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=2, fontsize=8,
              facecolor="#3b528b", labelcolor="white")  # fmt: skip
    fig.text(0.01, 0.005, caption(ds, fixed), fontsize=7, ha="left", va="bottom", wrap=True)
    # Labels last, on the frozen layout: the models' first (each at a free offset), then the
    # contour labels that do not cover them; a dark outline keeps white text readable on any band.
    outline = [patheffects.withStroke(linewidth=2.5, foreground="#222222")]
    renderer = freeze_layout(fig)
    named = place(ax, [
        Label(f"{name} ({units} {units_word})", (isl, params),
              {"color": "white", "fontsize": 9, "fontweight": "bold", "path_effects": outline})
        for name, (params, isl, units) in sorted(markers.items(), key=lambda item: -item[1][0])
    ], renderer)  # fmt: skip
    for text in contour_labels(ax, lines, named, renderer, lambda v: f"{v:g} {units_word}"):
        text.set_path_effects(outline)
    save(fig, output, dpi=130)
    plt.close(fig)
    return lines


def _marker_context(markers: dict) -> str:
    """The ISL the markers sit at, as the legend states it (never a rounded claim of 1M)."""
    isl = next(iter(markers.values()))[1] if markers else MARKER_ISL
    if isl == MARKER_ISL:
        return format_count(isl)
    return f"{isl:,.0f} tokens (the axis value nearest {format_count(MARKER_ISL)})"


register(
    Figure(
        "phase",
        "feasibility phase diagram: units needed over model size x ISL",
        lambda ds, output, chosen=None, **o: draw_phase(ds, output, chosen, levels=o.get("levels") or PHASE_LEVELS),
        check=full_cube_only,
    )
)
