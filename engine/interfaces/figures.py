"""Figures drawn from cubes: the feasibility phase diagram, cost vs concurrency, memory.

Each figure is two steps: ``*_data`` selects the slice of the cube it shows (an xarray
object, tested on its own), and ``draw_*`` renders it with matplotlib (Agg backend), with
a caption stating every fixed assumption.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from engine.errors import UserError
from engine.interfaces.selection import nearest
from engine.model.point import CALCULATOR_POINT
from engine.sweep.cube import CubeInfo, open_cube
from engine.units import format_count, parse_quantity

PHASE_LEVELS = (32, 64, 128)
MARKER_ISL = 1e6
PREFERRED = {k: v for k, v in CALCULATOR_POINT.items() if k not in ("model", "workload")}


def save(fig, output: Path, **options) -> None:
    """Write the figure atomically: a full disk or a crash never leaves a half-written file."""
    import os
    import tempfile

    output = Path(output)
    handle, temporary = tempfile.mkstemp(prefix=f".{output.stem}-", suffix=output.suffix, dir=output.parent or ".")
    os.close(handle)
    try:
        fig.savefig(temporary, **options)
        os.replace(temporary, output)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def default_figure_path(cube, kind: str) -> Path:
    from engine.sweep.location import beside

    return beside(cube, f"_{kind}.png")


# ---------------------------------------------------------------------------- selection
def _fix(ds, keep: tuple[str, ...], chosen: dict) -> tuple:
    """Fix every dim not in ``keep``: the user's choice, else a preferred value, else the first."""
    fixed = {}
    for dim in ds.dims:
        if dim in keep or dim == "token_type":
            continue
        values = ds[dim].values
        if dim in chosen:
            value = chosen[dim]
        elif (dim in PREFERRED and ds[dim].dtype.kind in "iuf") or (
            dim in PREFERRED and PREFERRED[dim] in [str(v) for v in values]
        ):
            value = PREFERRED[dim]
        else:
            value = values[0]
        fixed[dim] = nearest(ds, dim, value)
    return ds.sel(fixed), fixed


def _figure(plt, size, caption_lines: int = 1):
    """A figure whose layout leaves a band at the bottom for the caption."""
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    fig, ax = plt.subplots(figsize=size)
    band = 0.03 + 0.025 * caption_lines
    fig.set_layout_engine(ConstrainedLayoutEngine(rect=(0, band, 1, 1 - band)))
    return fig, ax


def count_ticks(lo: float, hi: float, most: int = 8) -> list[float]:
    """Round ticks (1, 2, 5 x 10^k) inside [lo, hi], thinned to at most ``most``; taken from the data's range."""
    lo, hi = float(min(lo, hi)), float(max(lo, hi))
    decades = range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
    for steps in ((1, 2, 5), (1, 3), (1,)):
        ticks = [m * 10.0**e for e in decades for m in steps if lo <= m * 10.0**e <= hi * (1 + 1e-9)]
        if len(ticks) <= most:
            break
    else:
        ticks = ticks[:: int(np.ceil(len(ticks) / most))]
    return ticks or [lo, hi]


def _caption(ds, fixed: dict) -> str:
    info = CubeInfo.of(ds)
    workload, assumptions = info.workload.get("name", "?"), info.assumptions
    units = {"concurrency": " requests", "weight_bits": "-bit weights", "kv_bits": "-bit KV", "isl": " tokens ISL"}
    parts = []
    for dim, value in fixed.items():
        shown = (
            format_count(value)
            if dim in ("isl", "params")
            else (
                f"{value:g}"
                if isinstance(value, float)
                else display_name(str(value))
                if dim == "hardware"
                else str(value)
            )
        )
        parts.append(f"{shown}{units.get(dim, '')}" if dim in units else f"{dim} {shown}")
    parts.append(f"workload {workload}")
    parts.append(f"profile {info.profile or '?'}")
    parts.append(f"price {assumptions.get('price', '?')}")
    if assumptions.get("prefill_model") == "calculator" and "cache_read_speedup" not in fixed:
        parts.append(f"calculator prefill (speedup {assumptions.get('cache_read_speedup', '?'):g})")
    if "wafer_batching" in assumptions:
        parts.append(f"wafer batching {assumptions['wafer_batching']}")
    drafted = assumptions.get("spec_draft_tokens", 0)
    parts.append(
        f"speculative decoding {drafted:g} tokens at acceptance {assumptions.get('spec_acceptance', 0):g}"
        if drafted
        else "speculative decoding off"
    )
    if assumptions.get("context_limit") == "none":
        parts.append("extrapolated past context windows")
    return "Fixed: " + ", ".join(parts) + f". tokensweep {info.engine_version}, spec {info.spec_fingerprint}"


def _size_dim(ds) -> str:
    if "params" in ds.dims:
        return "params"
    if "model" in ds.dims:
        return "model"
    raise UserError("cube: has neither a 'model' nor a 'params' dim")


# ---------------------------------------------------------------------------- phase
def phase_data(ds, chosen: dict | None = None):
    """Units needed over (model size, ISL) for the synthetic sizes, plus the catalog markers.

    Returns ``(grid, markers, fixed)``: ``grid`` is units_needed with dims (params, isl);
    ``markers`` maps a catalog model to (total params, ISL nearest 1M, units needed there).
    """
    chosen = chosen or {}
    if "units_needed" not in ds:
        raise UserError("cube: has no units_needed variable (add it to the spec's variables)")
    size = _size_dim(ds)
    units, fixed = _fix(ds["units_needed"], (size, "isl"), chosen)
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
    fig, ax = _figure(plt, (9, 6.5))
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
    fig.text(0.01, 0.005, _caption(ds, fixed), fontsize=7, ha="left", va="bottom", wrap=True)
    save(fig, output, dpi=130)
    plt.close(fig)
    return lines


# ---------------------------------------------------------------------------- cost
def cost_data(ds, chosen: dict | None = None, model: str | None = None, api_price: float = 0.60):
    """Cost per Mtok vs concurrency per hardware, and break-even concurrencies.

    Returns ``(cost, break_even, fixed)``; ``break_even`` maps "<hw> below <other>" and
    "<hw> below API" to the smallest concurrency (None if never).
    """
    from engine.analysis.compare import break_even_concurrency

    chosen = dict(chosen or {})
    size = _size_dim(ds)
    if model is not None:
        chosen[size] = model if size == "model" else parse_quantity(model, "--model")
    cost, fixed = _fix(ds["cost_per_mtok_usd"], ("concurrency", "hardware"), chosen)
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cost, break_even, fixed = cost_data(ds, chosen, model, api_price)
    from matplotlib.ticker import FuncFormatter

    fig, ax = _figure(plt, (9, 6), caption_lines=5)
    r = cost["concurrency"].values
    for name in cost["hardware"].values:
        series = cost.sel(hardware=name)
        (line,) = ax.plot(r, series.values, marker="o", label=display_name(str(name)))
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
    size = _size_dim(ds)
    ax.set_title(f"Cost per Mtok vs concurrency: {fixed.get(size)}")
    ax.legend()
    pairs = [f"{_display_words(k)}: R={v}" for k, v in break_even.items() if v is not None]
    text = "Break-even (smallest R where cheaper; stars mark the API crossing): " + (
        "; ".join(pairs) if pairs else "none in range"
    )
    fig.text(0.01, 0.005, text + "\n" + _caption(ds, fixed), fontsize=7, ha="left", va="bottom", wrap=True)
    save(fig, output, dpi=130)
    plt.close(fig)
    return break_even


# ---------------------------------------------------------------------------- memory
def memory_data(ds, chosen: dict | None = None):
    """Weights and KV bytes per model at one ISL and concurrency, and units needed per bar."""
    chosen = chosen or {}
    size = _size_dim(ds)
    weights, _fixed_w = _fix(ds["weight_bytes"], (size,), chosen)
    kv, _fixed_kv = _fix(ds["kv_bytes"], (size,), chosen)
    units, fixed = _fix(ds["units_needed"], (size,), chosen)
    if size == "model" and "synthetic" in ds.coords:
        real = ~ds["synthetic"].values.astype(bool)
        if real.any():
            weights, kv, units = (a.isel(model=real) for a in (weights, kv, units))
    return weights.load(), kv.load(), units.load(), fixed


def draw_memory(ds, output: Path, chosen=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights, kv, units, fixed = memory_data(ds, chosen)
    size = _size_dim(ds)
    labels = [str(v) if size == "model" else format_count(v) for v in weights[size].values]
    fig, ax = _figure(plt, (max(8, 0.6 * len(labels) + 3), 6))
    index = np.arange(len(labels))
    ax.bar(index, weights.values / 1e12, label="weights", color="#4c72b0")
    ax.bar(index, kv.values / 1e12, bottom=weights.values / 1e12, label="KV cache", color="#dd8452")
    hardware = str(fixed.get("hardware", ""))
    word = unit_word(hardware) if hardware else "units"
    for i, (w, k, u) in enumerate(zip(weights.values, kv.values, units.values)):
        if np.isfinite(k) and np.isfinite(u) and u > 0:
            text, top = f"{int(u)} {word}\nKV {100 * k / (w + k):.0f}%", w + k
        else:  # say why a bar has no KV or no count, rather than leave it blank
            text = "past its\ncontext" if not np.isfinite(k) else "fits no\nlayout"
            top = w + (k if np.isfinite(k) else 0.0)
        ax.text(i, top / 1e12, text, ha="center", va="bottom", fontsize=8)
    ax.set_xticks(index, labels, rotation=45, ha="right")
    ax.set_ylabel("memory of one replica (TB)")
    ax.margins(y=0.12)
    ax.set_title(f"Weights vs KV cache per replica; labels: {display_name(hardware)} {word} needed")
    ax.legend()
    fig.text(0.01, 0.005, _caption(ds, fixed), fontsize=7, ha="left", va="bottom", wrap=True)
    save(fig, output, dpi=130)
    plt.close(fig)


# ---------------------------------------------------------------------------- CLI
def check_figure_path(output) -> Path:
    """A figure file name matplotlib can write, in a folder that exists (one-line errors)."""
    output = Path(output)
    if output.suffix.lower() not in FIGURE_FORMATS:
        raise UserError(f"-o: {output} must end in {', '.join(FIGURE_FORMATS)}")
    if not output.parent.is_dir():
        raise UserError(f"-o: folder {output.parent} does not exist")
    return output


FIGURE_FORMATS = (".png", ".svg", ".pdf")


def draw(kind: str, cube, output, chosen=None, **options) -> Path:
    output = check_figure_path(output)
    ds = open_cube(cube)
    if kind == "phase":
        draw_phase(ds, output, chosen, levels=options.get("levels", PHASE_LEVELS))
    elif kind == "frontier":
        draw_frontier(ds, output, chosen, options.get("cost") or "cost_per_mtok_output_usd")
    elif kind == "advantage":
        draw_advantage(ds, output, options.get("targets") or ADVANTAGE_TARGETS)
    elif kind == "cost":
        draw_cost(ds, output, chosen, options.get("model"), options.get("api_price", 0.60))
    else:
        draw_memory(ds, output, chosen)
    return output


# ---------------------------------------------------------------------------- calibration
def calibration_data(paths, profile: str, catalog=None):
    """Measured rows, the profile's predictions for them, and the error summary."""
    from engine.analysis import calibrate as cal
    from engine.analysis.wafer import is_wafer_file
    from engine.model.assumptions import Assumptions
    from engine.model.catalog import load_catalog

    catalog = catalog or load_catalog()
    paths = [p for p in paths if not is_wafer_file(p)]  # published WSE-3 speeds: the wafer fit's, not this figure's
    rows = [r for p in paths for r in cal.read_rows(p) if r.hardware in catalog.hardware and r.model in catalog.models]
    if not rows:
        raise UserError("data: no row names a catalog model and hardware")
    assumptions = Assumptions(**catalog.profile(profile).parameters)
    predictions = cal.predict(rows, catalog, assumptions)
    return rows, predictions, cal.Fit({}, rows, predictions, float("nan")).summary()


METRIC_LABELS = {
    "interactivity": "interactivity (tokens/s per user)",
    "throughput_per_gpu": "throughput per GPU (tokens/s)",
    "ttft": "time to first token (s)",
    "output_throughput_per_gpu": "max output throughput per GPU (tokens/s)",
}


def draw_calibration(paths, output: Path, profile: str = "calibrated"):
    """Predicted vs measured, log-log, one panel per metric, +-25 % band, coloured by hardware."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    rows, predictions, summary = calibration_data(paths, profile)
    metrics = [m for m in METRIC_LABELS if any(m in r.measured for r in rows)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 5.0), squeeze=False)
    hardware = sorted({r.hardware for r in rows})
    colours = {h: plt.cm.tab10(i % 10) for i, h in enumerate(hardware)}
    for ax, metric in zip(axes[0], metrics):
        pairs = [(r.measured[metric], p[metric], r.hardware) for r, p in zip(rows, predictions) if metric in r.measured]
        measured = np.array([m for m, _, _ in pairs])
        lo, hi = measured.min() / 1.6, measured.max() * 1.6
        line = np.geomspace(lo, hi, 50)
        ax.fill_between(line, line / 1.25, line * 1.25, color="#dddddd", label="within ±25 %")
        ax.plot(line, line, color="black", linewidth=0.8)
        for h in hardware:
            pts = [(m, p) for m, p, hw in pairs if hw == h]
            if pts:
                ax.scatter(*zip(*pts), s=14, color=colours[h], label=h, alpha=0.85)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if hi / lo < 300 else (1.0,)))
            axis.set_minor_formatter(NullFormatter())
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel(f"measured {METRIC_LABELS[metric]}")
        ax.set_ylabel("predicted (same units)")
        s = summary[metric]
        title = METRIC_LABELS[metric].split(" (")[0]
        ax.set_title(f"{title}\nmedian |error| {s['median']:.0%}, p90 {s['p90']:.0%} ({s['n']} rows)", fontsize=10)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9)
    fig.suptitle(f"tokensweep expected figures (profile {profile}) vs measured serving benchmarks; "
                 "TTFT outliers: TensorRT-LLM with attention data parallel")  # fmt: skip
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    save(fig, output, dpi=120)
    plt.close(fig)
    return summary


# ---------------------------------------------------------------------------- frontier
DEPLOYMENT_DIMS = ("concurrency", "replica_units", "parallelism", "weight_bits", "kv_bits")


def frontier_data(ds, chosen: dict | None = None, cost: str = "cost_per_mtok_output_usd"):
    """The cost-interactivity frontier per hardware, every other dim fixed (the user's choice or a default)."""
    from engine.analysis.decisions import frontier

    if "hardware" not in ds.dims:
        raise UserError("cube: the frontier figure needs a hardware dim")
    keep = ("hardware", *(d for d in DEPLOYMENT_DIMS if d in ds.dims and d not in (chosen or {})))
    _, fixed = _fix(ds[cost], keep, chosen or {})
    sub = ds.sel(fixed)
    return frontier(sub, cost=cost, by=["hardware"], over=[d for d in keep if d != "hardware"]), fixed


def _deployment_label(row, dims) -> str:
    short = {"concurrency": "R", "replica_units": "n", "weight_bits": "w", "kv_bits": "kv"}
    parts = []
    for d in dims:
        value = row[d]
        parts.append(str(value) if d == "parallelism" else f"{short.get(d, d)}={value:g}")
    return " ".join(parts)


def draw_frontier(ds, output: Path, chosen=None, cost: str = "cost_per_mtok_output_usd"):
    """Cost per Mtok against tokens/s per user, log axes, one curve per hardware, deployments at the knees."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table, fixed = frontier_data(ds, chosen, cost)
    if table.empty:
        raise UserError("cube: no configuration has both a cost and an interactivity at this selection")
    dims = [d for d in DEPLOYMENT_DIMS if d in table.columns]
    fig, ax = _figure(plt, (9.5, 6.5), caption_lines=2)
    for hardware, group in table.groupby("hardware", sort=False):
        group = group.sort_values("interactivity_tps")
        (line,) = ax.step(group["interactivity_tps"], group[cost], where="post", marker="o", markersize=4,
                          label=display_name(str(hardware)))  # fmt: skip
        # Knees: where the next point's cost jumps by more than 25 %, and the two ends.
        costs = group[cost].to_numpy()
        knees = {0, len(group) - 1} | {i for i in range(1, len(group)) if costs[i] > 1.25 * costs[i - 1]}
        for i in sorted(knees):
            row = group.iloc[i]
            ax.annotate(_deployment_label(row, dims), (row["interactivity_tps"], row[cost]), textcoords="offset points",
                        xytext=(4, 4), fontsize=7, color=line.get_color())  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("interactivity, output tokens/s per user (log)")
    unit = ds[cost].attrs.get("units", "")
    ax.set_ylabel(f"{ds[cost].attrs.get('long_name', cost)} ({unit}, log)")
    ax.set_title("Cost-interactivity frontier: the cheapest deployment at each speed")
    ax.legend(title="hardware")
    labels = "R concurrent requests per replica, n units per replica (0: fewest that fit), w/kv weight and KV bits"
    fig.text(0.01, 0.005, labels + "\n" + _caption(ds, fixed), fontsize=7, ha="left", va="bottom", wrap=True)
    save(fig, output, dpi=130)
    plt.close(fig)
    return table


def display_name(hardware: str) -> str:
    """The catalog's display name of a hardware id ("Cerebras WSE-3"); the id if it has none."""
    record = _catalog_hardware().get(hardware)
    return record.label if record is not None else hardware


def unit_word(hardware: str) -> str:
    """What the catalog calls several units of this hardware ("systems", "GPUs"); "units" if unknown."""
    record = _catalog_hardware().get(hardware)
    return record.units_word if record is not None else "units"


@cache
def _catalog_hardware() -> dict:
    from engine.model.catalog import load_catalog

    return load_catalog().hardware


def wafer_of(ds) -> str:
    """The cube's wafer-scale hardware (by its ``kind`` coordinate), for the WSE-3 vs GPU figures."""
    if "kind" in ds.coords and "hardware" in ds.coords:
        for name, kind in zip(ds["hardware"].values, np.asarray(ds["kind"].values)):
            if str(kind) == "wafer":
                return str(name)
    return "wse3"


def _display_words(text: str) -> str:
    return " ".join(display_name(word) for word in text.split(" "))


# ---------------------------------------------------------------------------- WSE-3 advantage at equal interactivity
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
    size = _size_dim(ds)
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


def draw_advantage(ds, output: Path, targets=ADVANTAGE_TARGETS):
    """One panel per interactivity target: the cost ratio over model size x ISL, equal-cost contour,
    and the regions only one side (or neither) reaches, each in its own colour with a legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ratio = advantage_data(ds, targets).load()
    size = _size_dim(ds)
    y = ratio[size].values if size == "params" else ds["total_params"].values
    x = ratio["isl"].values
    bounds = [1 / 100, 1 / 30, 1 / 10, 1 / 3, 1, 3, 10, 30, 100]
    cmap = plt.get_cmap("RdBu_r", len(bounds) - 1)
    only = {"wafer": "#6a3d9a", "gpu": "#e08214", "neither": "#d9d9d9"}  # outside the ratio's red-blue scale
    fig, axes = plt.subplots(1, len(targets), figsize=(3.6 * len(targets) + 1.6, 5.0), sharey=True, squeeze=False,
                             layout="constrained")  # fmt: skip
    for ax, target in zip(axes[0], targets):
        z = ratio.sel(target=float(target)).values.astype(float)
        ratios = np.where(np.isfinite(z) & (z > 0), np.clip(z, bounds[0], bounds[-1]), np.nan)
        mesh = ax.pcolormesh(x, y, ratios, norm=BoundaryNorm(bounds, cmap.N), cmap=cmap, shading="nearest")
        category = np.full(z.shape, np.nan)
        category[z == 0] = 0  # only the wafer reaches the target
        category[np.isinf(z)] = 1  # only GPUs do
        category[np.isnan(z)] = 2  # neither
        ax.pcolormesh(x, y, np.ma.masked_invalid(category), cmap=ListedColormap(list(only.values())), vmin=-0.5,
                      vmax=2.5, shading="nearest")  # fmt: skip
        if (
            np.nanmin(np.where(np.isfinite(z) & (z > 0), z, np.nan), initial=np.inf)
            < 1
            < np.nanmax(np.where(np.isfinite(z), z, np.nan), initial=-np.inf)
        ):
            ax.contour(
                x, y, np.where(np.isfinite(z) & (z > 0), z, np.nan), levels=[1.0], colors="black", linewidths=1.8
            )
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
    legend = [Patch(color=only["wafer"], label="only the WSE-3 reaches the target"),
              Patch(color=only["gpu"], label="only GPUs reach it"), Patch(color=only["neither"], label="neither does"),
              plt.Line2D([], [], color="black", linewidth=1.8, label="equal cost")]  # fmt: skip
    fig.legend(handles=legend, loc="outside lower center", ncol=4, fontsize=8)
    gpus = ", ".join(display_name(str(h)) for h in ds["hardware"].values if str(h) != wafer_of(ds))
    fig.suptitle(f"Cheapest WSE-3 vs cheapest GPU deployment ({gpus}) at equal interactivity, cost per output Mtok\n"
                 f"{_caption(ds, {})}", fontsize=9)  # fmt: skip
    save(fig, output, dpi=120)
    plt.close(fig)
    return ratio
