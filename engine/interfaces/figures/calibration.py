"""Expected vs measured serving figures: how well a profile fits the calibration data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import UserError
from engine.interfaces.figures.common import (
    pyplot,
    save,
)
from engine.interfaces.figures.registry import Figure, register


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
    plt = pyplot()
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
    files = ", ".join(sorted({r.file for r in rows}))
    fig.suptitle(f"tokensweep expected figures (profile {profile}) vs measured serving benchmarks ({files})",
                 fontsize=10)  # fmt: skip
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    save(fig, output, dpi=120)
    plt.close(fig)
    return summary


register(
    Figure(
        "calibration",
        "expected vs measured serving figures (from measured CSV files)",
        lambda paths, output, chosen=None, **o: draw_calibration(paths, output, o.get("profile") or "calibrated"),
        from_cube=False,
    )
)
