"""Weights vs KV cache per replica, with the units each needs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.interfaces.figures.common import (
    caption,
    display_name,
    fix_dims,
    new_figure,
    pyplot,
    save,
    size_dim,
    unit_word,
)
from engine.interfaces.figures.registry import Figure, full_cube_only, register
from engine.units import format_count


def memory_data(ds, chosen: dict | None = None):
    """Weights and KV bytes per model at one ISL and concurrency, and units needed per bar."""
    chosen = chosen or {}
    size = size_dim(ds)
    weights, _fixed_w = fix_dims(ds["weight_bytes"], (size,), chosen)
    kv, _fixed_kv = fix_dims(ds["kv_bytes"], (size,), chosen)
    units, fixed = fix_dims(ds["units_needed"], (size,), chosen)
    if size == "model" and "synthetic" in ds.coords:
        real = ~ds["synthetic"].values.astype(bool)
        if real.any():
            weights, kv, units = (a.isel(model=real) for a in (weights, kv, units))
    return weights.load(), kv.load(), units.load(), fixed


def draw_memory(ds, output: Path, chosen=None):
    plt = pyplot()

    weights, kv, units, fixed = memory_data(ds, chosen)
    size = size_dim(ds)
    labels = [str(v) if size == "model" else format_count(v) for v in weights[size].values]
    fig, ax = new_figure(plt, (max(8, 0.6 * len(labels) + 3), 6))
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
    fig.text(0.01, 0.005, caption(ds, fixed), fontsize=7, ha="left", va="bottom", wrap=True)
    save(fig, output, dpi=130)
    plt.close(fig)


register(
    Figure(
        "memory",
        "weights vs KV cache per replica, with the units each needs",
        lambda ds, output, chosen=None, **o: draw_memory(ds, output, chosen),
        check=full_cube_only,
    )
)
