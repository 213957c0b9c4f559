"""How sure a calibrated figure is: prediction intervals from held-out errors, and their coverage.

A fitted profile's parameters have a small spread (its standard errors); what dominates is
the model's own error on configurations it has not seen. So the interval for a figure is the
spread of ``log(measured / predicted)`` on held-out measured rows (every row predicted by a
fit that did not see its model, or its hardware): a new configuration's measured value lies
in ``[predicted x e^lo, predicted x e^hi]`` with the stated probability, if it errs the way
held-out rows do. That is an empirical (split-conformal) interval, with no shape assumed.

Its coverage is checked honestly by **cross-conformal** scoring: each held-out group's
interval is built from the *other* groups' errors only, and the share of its rows inside is
counted. Rows of one model (or hardware) err alike, so other groups' 80 % quantiles cover
fewer than 80 % of a new group's rows; the quantile level is therefore widened per metric
until the cross-conformal coverage is 80 % (:func:`widened_level`), and the coverage of that
whole procedure is measured nested, each group choosing neither its level nor its bounds.
The calibration prints it and stores it in the profile's ``uncertainty``.

>>> logs = {"ttft": np.log([0.5, 0.8, 1.0, 1.25, 2.0])}
>>> {k: [round(float(v), 3) for v in q] for k, q in interval_quantiles(logs, 0.6).items()}
{'ttft': [-0.317, 0.317]}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

#: Hardware kinds the measured serving rows cover (their errors say nothing of other kinds).
MEASURED_KINDS = ("gpu",)
#: The interval every figure is given with (the issue's 80 %: 10th to 90th percentile).
LEVEL = 0.8
#: The figures of a point each calibrated metric sets the interval of (cost follows throughput:
#: cost per token is the hourly rate over throughput, so its ratio is the inverse).
FIGURES = {
    "interactivity_tps": ("interactivity", 1),
    "ttft_s": ("ttft", 1),
    "throughput_tps": ("throughput_per_gpu", 1),
    "output_throughput_tps": ("throughput_per_gpu", 1),
    "cost_per_mtok_usd": ("throughput_per_gpu", -1),
    "cost_per_mtok_output_usd": ("throughput_per_gpu", -1),
    "cost_per_turn_usd": ("throughput_per_gpu", -1),
}


def _log_errors(rows, predictions):
    """(row, metric, log(measured / predicted)) of every measured metric a replica served."""
    for row, predicted in zip(rows, predictions):
        for metric, measured in row.measured.items():
            value = predicted[metric]
            if value > 0 and math.isfinite(value):
                yield row, metric, math.log(measured / value)


def log_ratios(rows, predictions) -> dict[str, np.ndarray]:
    """``log(measured / predicted)`` per metric (rows with no replica left out)."""
    out: dict[str, list[float]] = {}
    for _, metric, value in _log_errors(rows, predictions):
        out.setdefault(metric, []).append(value)
    return {k: np.asarray(v) for k, v in out.items()}


def interval_quantiles(logs: Mapping[str, np.ndarray], level: float = LEVEL) -> dict[str, tuple[float, float]]:
    """Per metric, the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the log ratios."""
    tail = (1.0 - level) / 2.0
    return {k: (float(np.quantile(v, tail)), float(np.quantile(v, 1.0 - tail))) for k, v in logs.items() if v.size}


def cross_conformal_coverage(held: Mapping[str, tuple[Sequence, Sequence]], level: float = LEVEL) -> dict:
    """Share of each group's rows inside the interval built from the other groups' held-out errors.

    ``held`` maps a group to (its rows, their predictions by the fit without it). Returns
    ``{metric: {"coverage": share, "n": rows}}`` pooled over groups, plus ``"all"``."""
    frame = error_frame({"groups": held})
    out, every = {}, [0, 0]
    for metric, errors in frame.groupby("metric", sort=False):
        inside, total = _inside(errors, level)
        if total:
            out[metric] = {"coverage": inside / total, "n": total}
            every = [every[0] + inside, every[1] + total]
    if every[1]:
        out["all"] = {"coverage": every[0] / every[1], "n": every[1]}
    return out


#: Quantile levels an interval may be widened to, so that it covers ``LEVEL`` of held-out groups.
WIDER = tuple(float(round(v, 2)) for v in np.arange(LEVEL, 0.995, 0.01))
GROUPINGS = ("model", "hardware", "length")


def error_frame(held_by: Mapping[str, Mapping[str, tuple]]):
    """One row per held-out measurement: the grouping it was held out by, its group, the row's
    model, hardware and length, the metric and ``log(measured / predicted)``."""
    import pandas as pd

    records = [
        (by, group, row.model, row.hardware, row.length, metric, value)
        for by, held in held_by.items()
        for group, (rows, predictions) in held.items()
        for row, metric, value in _log_errors(rows, predictions)
    ]
    return pd.DataFrame(records, columns=["grouping", "group", *GROUPINGS, "metric", "log"])


def _covered(values: np.ndarray, reference: np.ndarray, level: float) -> int:
    """How many of ``values`` lie inside the ``level`` quantiles of ``reference``."""
    lo, hi = np.quantile(reference, [(1 - level) / 2, (1 + level) / 2])
    return int(((values >= lo) & (values <= hi)).sum())


def _inside(frame, level: float) -> tuple[int, int]:
    """Cross-conformal count over ``frame`` (one metric): each group's rows against the other
    groups' quantiles, within each grouping. (rows inside, rows)."""
    inside = total = 0
    for _, by in frame.groupby("grouping"):
        for group, own in by.groupby("group"):
            rest = by["log"][by["group"] != group].to_numpy()
            if rest.size:
                inside += _covered(own["log"].to_numpy(), rest, level)
                total += len(own)
    return inside, total


def widened_level(frame, target: float = LEVEL) -> float:
    """The smallest quantile level (of :data:`WIDER`) whose cross-conformal coverage over
    ``frame`` (one metric) reaches ``target``: held-out groups err alike within a group, so the
    pooled quantiles of other groups cover fewer of a new group's rows than their level says."""
    for level in WIDER:
        inside, total = _inside(frame, level)
        if total and inside / total >= target:
            return level
    return WIDER[-1]


def profile_uncertainty(held_by: Mapping[str, Mapping[str, tuple]], basis: Sequence[str], level: float = LEVEL) -> dict:
    """The profile's ``uncertainty`` entry, per metric: the quantile level widened so that
    intervals from the ``basis`` groupings' held-out errors cover ``level`` of held-out groups,
    those quantiles of the pooled errors, and the coverage of that whole procedure measured
    without each group in turn (nested: a group's rows choose neither its level nor its bounds)."""
    frame = error_frame(held_by)
    basis_frame = frame[frame["grouping"].isin(list(basis))]
    quantiles, levels, coverage = {}, {}, {by: {} for by in held_by}
    for metric, errors in basis_frame.groupby("metric"):
        chosen = widened_level(errors, level)
        lo, hi = np.quantile(errors["log"], [(1 - chosen) / 2, (1 + chosen) / 2])
        quantiles[metric], levels[metric] = [round(float(lo), 4), round(float(hi), 4)], chosen
    everything: dict[str, list[int]] = {by: [0, 0] for by in held_by}
    for by in held_by:
        scored = frame[(frame["grouping"] == by)]
        for metric, rows in scored.groupby("metric"):
            inside = total = 0
            for group, own in rows.groupby("group"):
                train = basis_frame[(basis_frame["metric"] == metric) & (basis_frame[by] != group)]
                if train.empty:
                    continue
                inside += _covered(own["log"].to_numpy(), train["log"].to_numpy(), widened_level(train, level))
                total += len(own)
            if total:
                coverage[by][metric] = round(inside / total, 3)
                everything[by][0] += inside
                everything[by][1] += total
        if everything[by][1]:
            coverage[by]["all"] = round(everything[by][0] / everything[by][1], 3)
    return {
        "level": level,
        "basis": f"log(measured / predicted) of rows held out by {' and by '.join(basis)}",
        "quantile_levels": levels,
        "log_ratio_quantiles": quantiles,
        "coverage": coverage,
    }


def band_factors(uncertainty: Mapping) -> dict[str, tuple[float, float]]:
    """Per figure, the factors its prediction interval puts on the predicted value (low, high)."""
    quantiles = uncertainty.get("log_ratio_quantiles", {})
    out = {}
    for name, (metric, sign) in FIGURES.items():
        if metric in quantiles:
            lo, hi = quantiles[metric]
            low, high = sorted((math.exp(sign * lo), math.exp(sign * hi)))
            out[name] = (low, high)
    return out


#: Physics caps an interval: no measured value can beat the roofline. Per figure, (side, a, b):
#: the interval's ``side`` end is held to ``value x a / b`` (speeds at most their bound; TTFT at
#: least its bound; a cost at least its value at the peak throughput).
CAPS = {
    "interactivity_tps": ("high", "interactivity_bound_tps", "interactivity_tps"),
    "throughput_tps": ("high", "throughput_bound_tps", "throughput_tps"),
    "output_throughput_tps": ("high", "throughput_bound_tps", "throughput_tps"),
    "ttft_s": ("low", "ttft_bound_s", "ttft_s"),
    "cost_per_mtok_usd": ("low", "throughput_tps", "throughput_bound_tps"),
    "cost_per_mtok_output_usd": ("low", "throughput_tps", "throughput_bound_tps"),
    "cost_per_turn_usd": ("low", "throughput_tps", "throughput_bound_tps"),
}


def _finite(values: Mapping, name: str) -> bool:
    value = values.get(name)
    return value is not None and math.isfinite(value) and value > 0


def intervals(values: Mapping[str, float], uncertainty: Mapping) -> dict[str, tuple[float, float]]:
    """Each figure of a point that a calibrated metric covers, as ``(low, high)`` at the profile's
    level, held inside the roofline (:data:`CAPS`: physics wins over the measured spread)."""
    out = {}
    for name, (low, high) in band_factors(uncertainty).items():
        if not _finite(values, name):
            continue
        x = values[name]
        lo, hi = x * low, x * high
        side, a, b = CAPS.get(name, (None, None, None))
        if side and _finite(values, a) and _finite(values, b):
            limit = x * values[a] / values[b]
            lo, hi = (lo, min(hi, max(limit, x))) if side == "high" else (max(lo, min(limit, x)), hi)
        out[name] = (lo, hi)
    return out


def log_normal(quantiles: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
    """(mean, standard deviation) of a normal with the given two-sided ``level`` quantiles: the
    log-ratio distribution summarised for probabilities (its tails are heavier than normal;
    the quantiles themselves are exact)."""
    from scipy.stats import norm

    lo, hi = quantiles
    return (lo + hi) / 2.0, (hi - lo) / (2.0 * float(norm.ppf((1.0 + level) / 2.0)))


def win_probability(cost, rival_cost, mu, sigma, rival_mu, rival_sigma):
    """P(this side's true cost < the rival's), each true cost ``predicted x e^-e`` with
    ``e ~ N(mu, sigma)`` its measured/predicted log throughput ratio, independent per side.

    Independence is the cautious choice: two GPUs the model misjudges alike would be more
    surely ordered than this says. Works on numbers and arrays (NaN where a cost is missing).

    >>> round(float(win_probability(1.0, 1.0, 0.0, 0.2, 0.0, 0.2)), 3)   # a tie: a coin flip
    0.5
    >>> round(float(win_probability(1.0, 2.0, 0.0, 0.2, 0.0, 0.2)), 3)   # half the cost
    0.993
    """
    from scipy.stats import norm

    cost, rival_cost = np.asarray(cost, dtype=float), np.asarray(rival_cost, dtype=float)
    spread = np.hypot(sigma, rival_sigma)
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.log(rival_cost / cost) + mu - rival_mu
        sure = np.where(shift > 0, 1.0, np.where(shift < 0, 0.0, 0.5))
        p = np.where(spread > 0, norm.cdf(shift / np.where(spread > 0, spread, 1.0)), sure)
    return np.where(np.isfinite(cost) & np.isfinite(rival_cost), p, np.nan)


def cost_error(profile: Mapping, kind: str) -> tuple[float, float] | None:
    """(mu, sigma) of a side's log cost error under a profile (its ``model_dump``): GPUs from the
    held-out throughput quantiles, the wafer from its fit's held-out single-stream errors
    (median |error| = 0.674 sigma for a normal). None where the profile has no such record."""
    if kind == "wafer":
        held = profile.get("provenance", {}).get("wafer", {}).get("cross_validation_by_model", {})
        return (0.0, math.log1p(held["median"]) / 0.6745) if "median" in held else None
    if kind not in MEASURED_KINDS:  # no measured row of such hardware: no error to quote
        return None
    found = profile.get("uncertainty", {})
    quantiles = found.get("log_ratio_quantiles", {}).get("throughput_per_gpu")
    if not quantiles:
        return None
    # the quantiles sit at the widened level they were taken at, not at the nominal one
    return log_normal(quantiles, found.get("quantile_levels", {}).get("throughput_per_gpu", found["level"]))


def rival_win_probability(ds, best, cost: str):
    """For each row of ``best`` with a ``rival`` (:func:`engine.analysis.breakeven.rival_break_even`):
    the probability that it is really cheaper than its rival, from the cube's profile's
    recorded errors (:func:`cost_error`). None when the profile records no uncertainty."""
    import xarray as xr

    from engine.sweep.cube import CubeInfo

    profile = CubeInfo.of(ds).spec.get("profile", {})
    names = [str(h) for h in best["hardware"].values]
    kinds = dict(zip((str(h) for h in ds["hardware"].values), (str(k) for k in ds["kind"].values)))
    errors = {name: cost_error(profile, kinds.get(name, "gpu")) for name in names}
    if all(e is None for e in errors.values()):
        return None
    rival = best["rival"].values
    # A side with no recorded error (hardware no measured row covers): NaN, not a guess.
    lookup = np.vectorize(lambda name, i: errors[name][i] if errors.get(name) else np.nan, otypes=[float])
    mine = np.broadcast_to(np.asarray(names, dtype=object).reshape(
        [-1 if d == "hardware" else 1 for d in best["rival"].dims]), rival.shape)  # fmt: skip
    dims = best["rival"].dims
    p = win_probability(best[cost].transpose(*dims).values, best["rival_cost"].transpose(*dims).values,
                        lookup(mine, 0), lookup(mine, 1), lookup(rival, 0), lookup(rival, 1))  # fmt: skip
    return xr.DataArray(p, dims=best["rival"].dims, coords=best["rival"].coords).assign_attrs(
        units="1", long_name="probability that this row is really cheaper than its rival (from the profile's errors)"
    )
