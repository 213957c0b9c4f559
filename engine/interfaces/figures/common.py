"""What every figure shares: atomic saving, slice selection, captions that state every fixed
assumption, ticks from the data, and names and unit words from the catalog."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from engine.atomic import atomic_path
from engine.errors import UserError
from engine.interfaces.selection import nearest
from engine.model.point import CALCULATOR_POINT
from engine.sweep.cube import CubeInfo
from engine.units import format_count

#: Which slice a figure draws when the cube holds it (else the nearest values).
PREFERRED = {k: v for k, v in CALCULATOR_POINT.items() if k not in ("model", "workload")}


def pyplot():
    """Matplotlib's pyplot for files (the Agg backend), with mathtext off: a catalog or spec
    name holding ``$`` is drawn as the text it is, never parsed as math (or refused)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False
    import matplotlib.pyplot as plt

    return plt


def save(fig, output: Path, **options) -> None:
    """Write the figure atomically: a full disk or a crash never leaves a half-written file."""
    with atomic_path(output) as temporary:
        fig.savefig(temporary, **options)


def default_figure_path(cube, kind: str) -> Path:
    from engine.sweep.location import beside

    return beside(cube, f"_{kind}.png")


def fix_dims(ds, keep: tuple[str, ...], chosen: dict) -> tuple:
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


def summarise_draws(ds, chosen=None):
    """A cube's Monte Carlo draws summarised before any figure reads it, unless ``chosen`` names
    one: each variable's median over a ``draw`` dim, or the ``quantile`` nearest 0.5. Figures
    that minimise over every dim they do not plot would otherwise pick each side's best draw.
    The summary is recorded in ``attrs["drawn_summary"]`` for the caption."""
    chosen = dict(chosen or {})
    if "draw" in ds.dims and "draw" not in chosen:
        n = ds.sizes["draw"]
        ds = ds.median("draw", skipna=False, keep_attrs=True)  # missing in any draw stays missing, as quantiles
        ds.attrs["drawn_summary"] = f"each figure the median of {n:,} Monte Carlo draws"
    if "quantile" in ds.dims and "quantile" not in chosen:
        q = float(ds["quantile"].values[np.argmin(np.abs(ds["quantile"].values - 0.5))])
        ds = ds.sel(quantile=q)
        ds.attrs["drawn_summary"] = f"each figure its {q:g} quantile over the draws"
    return ds


def new_figure(plt, size, caption_lines: int = 1):
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


def caption(ds, fixed: dict) -> str:
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
    if ds.attrs.get("drawn_summary"):
        parts.append(str(ds.attrs["drawn_summary"]))
    parts.append(f"workload {workload}")
    parts.append(f"profile {info.profile or '?'}")
    parts.append(f"price {assumptions.get('price', '?')}")
    if assumptions.get("prefill_model") == "calculator" and "cache_read_speedup" not in fixed:
        parts.append(f"calculator prefill (speedup {assumptions.get('cache_read_speedup', '?'):g})")
    if "wafer_batching" in assumptions:
        parts.append(f"wafer batching {assumptions['wafer_batching']}")
    drafted = assumptions.get("spec_draft_tokens", 0)
    if drafted:
        parts.append(f"speculative decoding {drafted:g} tokens at acceptance {assumptions.get('spec_acceptance', 0):g}")
    elif assumptions.get("speculative") == "catalog":
        parts.append("speculative decoding where the catalog lists it")
    else:
        parts.append("speculative decoding off")
    if assumptions.get("serving") == "disaggregated":
        unit = assumptions.get("prefill_hardware", "same")
        parts.append(f"disaggregated prefill on {'the same units' if unit == 'same' else unit}")
    if assumptions.get("context_limit") == "none":
        parts.append("extrapolated past context windows")
    return "Fixed: " + ", ".join(parts) + f". tokensweep {info.engine_version}, spec {info.spec_fingerprint}"


def size_dim(ds) -> str:
    if "params" in ds.dims:
        return "params"
    if "model" in ds.dims:
        return "model"
    raise UserError("cube: has neither a 'model' nor a 'params' dim")


def display_name(hardware: str) -> str:
    """The catalog's display name of a hardware id ("Cerebras WSE-3"); the id if it has none."""
    record = catalog_hardware().get(hardware)
    return record.label if record is not None else hardware


def unit_word(hardware: str) -> str:
    """What the catalog calls several units of this hardware ("systems", "GPUs"); "units" if unknown."""
    record = catalog_hardware().get(hardware)
    return record.units_word if record is not None else "units"


@cache
def catalog_hardware() -> dict:
    from engine.model.catalog import load_catalog

    return load_catalog().hardware


#: One colour per hardware across every figure (matplotlib's tab10, in catalog order).
_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def hardware_color(hardware: str) -> str:
    """The colour of a hardware in every figure: by its place in the catalog (unknown ones after)."""
    names = list(catalog_hardware())
    index = names.index(hardware) if hardware in names else len(names) + sum(map(ord, hardware))
    return _PALETTE[index % len(_PALETTE)]


def wafer_of(ds) -> str:
    """The cube's wafer-scale hardware (by its ``kind`` coordinate), for the WSE-3 vs GPU figures."""
    if "kind" in ds.coords and "hardware" in ds.coords:
        for name, kind in zip(ds["hardware"].values, np.asarray(ds["kind"].values)):
            if str(kind) == "wafer":
                return str(name)
    return "wse3"


def display_words(text: str) -> str:
    return " ".join(display_name(word) for word in text.split(" "))
