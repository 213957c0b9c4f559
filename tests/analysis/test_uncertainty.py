"""Prediction intervals: quantiles and cross-conformal coverage against brute force, a synthetic
calibration whose truth is known covered at the stated rate, and the intervals `point` prints."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.analysis import calibrate as cal
from engine.analysis import uncertainty as unc
from engine.interfaces.cli import main
from engine.model.assumptions import Assumptions
from tests.analysis.test_calibration import CATALOG, METRICS


class Measured:
    """A stand-in row: what the interval code reads (``measured`` and the grouping fields)."""

    def __init__(self, measured, model="m", hardware="h", length="1/1"):
        self.measured, self.model, self.hardware, self.length = measured, model, hardware, length


def held(groups: dict[str, np.ndarray]):
    """{group: (rows, predictions)} with log(measured / predicted) = the given values."""
    return {
        g: ([Measured({"ttft": math.exp(v)}) for v in values], [{"ttft": 1.0} for _ in values])
        for g, values in groups.items()
    }


@settings(max_examples=60)
@given(
    sizes=st.lists(st.integers(1, 30), min_size=2, max_size=6),
    seed=st.integers(0, 2**31),
    level=st.sampled_from([0.5, 0.8, 0.9]),
)
def test_cross_conformal_coverage_is_the_brute_force_count(sizes, seed, level):
    rng = np.random.default_rng(seed)
    groups = {f"g{i}": rng.normal(0.0, 0.3, n) for i, n in enumerate(sizes)}
    inside = []
    for g, own in groups.items():  # by hand: the other groups' quantiles, then count
        rest = np.concatenate([v for h, v in groups.items() if h != g])
        lo, hi = np.quantile(rest, (1 - level) / 2), np.quantile(rest, (1 + level) / 2)
        inside += list((own >= lo) & (own <= hi))
    found = unc.cross_conformal_coverage(held(groups), level)
    assert found["ttft"]["coverage"] == pytest.approx(np.mean(inside))
    assert found["ttft"]["n"] == sum(sizes) == found["all"]["n"]


def test_exchangeable_errors_are_covered_at_the_stated_rate():
    rng = np.random.default_rng(7)
    groups = {f"g{i}": rng.standard_t(4, 400) * 0.2 for i in range(8)}  # heavy tails: no shape assumed
    for level in (0.5, 0.8, 0.95):
        assert unc.cross_conformal_coverage(held(groups), level)["ttft"]["coverage"] == pytest.approx(level, abs=0.03)


def test_a_cost_interval_is_the_inverse_of_the_throughput_interval():
    q = {"log_ratio_quantiles": {"throughput_per_gpu": [-0.3, 0.1], "interactivity": [-0.2, 0.25]}}
    values = {"throughput_tps": 1000.0, "cost_per_mtok_usd": 2.0, "interactivity_tps": 50.0, "ttft_s": 1.0}
    found = unc.intervals(values, q)
    assert found["throughput_tps"] == pytest.approx((1000 * math.exp(-0.3), 1000 * math.exp(0.1)))
    # measured throughput x e^q -> cost (rate / throughput) x e^-q: the bounds swap
    assert found["cost_per_mtok_usd"] == pytest.approx((2.0 * math.exp(-0.1), 2.0 * math.exp(0.3)))
    assert found["interactivity_tps"] == pytest.approx((50 * math.exp(-0.2), 50 * math.exp(0.25)))
    assert "ttft_s" not in found  # no quantiles for it, no interval


def noisy_rows(seed: int, sigma: float):
    """Rows the model itself predicts at known parameters, measured with log-normal noise."""
    from tests.analysis.test_calibration import TRUE, synthetic_rows

    rng = np.random.default_rng(seed)
    rows = synthetic_rows()
    out = [cal.Row(**{**r.__dict__, "measured": {k: v * math.exp(rng.normal(0, sigma)) for k, v in r.measured.items()}})
           for r in rows]  # fmt: skip
    return out, TRUE


@pytest.mark.slow
def test_a_synthetic_calibration_is_covered_by_its_own_intervals_at_the_stated_rate():
    """Known truth, noise of 10 %: the fitted standard errors cover the true values about as
    often as they say, and held-out prediction intervals cover about 80 % of held-out rows."""
    names = ("memory_bw_efficiency", "mfu_decode", "step_overhead_s")
    z80 = 1.2816  # two-sided 80 % of a normal
    covered, trials = 0, 0
    for seed in range(12):
        rows, truth = noisy_rows(seed, 0.10)
        base = Assumptions(**{k: v for k, v in truth.items() if k not in names})
        fitted = cal.fit(rows, CATALOG, names, base=base)
        for name in names:
            error = fitted.standard_errors[name]
            covered += abs(fitted.parameters[name] - truth[name]) <= z80 * error
            trials += 1
    assert 0.6 <= covered / trials <= 0.97, covered / trials
    rows, truth = noisy_rows(99, 0.10)
    base = Assumptions(**{k: v for k, v in truth.items() if k not in names})
    groups = {}
    for model in sorted({r.model for r in rows}):
        train = [r for r in rows if r.model != model]
        test = [r for r in rows if r.model == model]
        fitted = cal.fit(train, CATALOG, names, base=base)
        groups[model] = (test, cal.predict(test, CATALOG, base.model_copy(update=fitted.parameters)))
    coverage = unc.cross_conformal_coverage(groups, 0.8)
    for metric in METRICS:
        assert 0.7 <= coverage[metric]["coverage"] <= 0.9, (metric, coverage)


def test_point_prints_the_profiles_intervals_and_says_when_it_has_none(capsys):
    profile = CATALOG.profile("calibrated")
    assert profile.uncertainty["level"] == unc.LEVEL
    argv = ["point", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--concurrency", "16", "--isl", "8k"]
    assert main([*argv, "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    values, intervals = found, found["uncertainty"]["intervals"]
    for name in ("interactivity_tps", "ttft_s", "throughput_tps", "cost_per_mtok_usd"):
        lo, hi = intervals[name]
        assert lo < values[name] < hi or lo <= values[name] <= hi, name
    q = profile.uncertainty["log_ratio_quantiles"]["interactivity"]
    assert intervals["interactivity_tps"] == pytest.approx([values["interactivity_tps"] * math.exp(v) for v in q])
    assert main(argv) == 0
    assert "80% prediction interval" in capsys.readouterr().out
    assert main(["point", "--model", "llama-3.1-70b", "--hardware", "wse3", "--isl", "8k"]) == 0
    assert "no measured interval for the wafer" in capsys.readouterr().out
    assert main([*argv, "--set", "mfu_decode=0.2"]) == 0
    assert "may not hold" in capsys.readouterr().out


@settings(max_examples=40)
@given(
    cost=st.floats(0.01, 100), rival=st.floats(0.01, 100), mu=st.floats(-0.3, 0.3), sigma=st.floats(0.01, 1),
    rival_mu=st.floats(-0.3, 0.3), rival_sigma=st.floats(0.0, 1), seed=st.integers(0, 2**31),
)  # fmt: skip
def test_the_win_probability_is_a_brute_force_monte_carlo(cost, rival, mu, sigma, rival_mu, rival_sigma, seed):
    rng = np.random.default_rng(seed)
    n = 200_000
    mine = cost * np.exp(-rng.normal(mu, sigma, n))  # true cost: predicted over the measured/predicted ratio
    theirs = rival * np.exp(-rng.normal(rival_mu, rival_sigma, n))
    brute = float(np.mean(mine < theirs))
    found = float(unc.win_probability(cost, rival, mu, sigma, rival_mu, rival_sigma))
    assert found == pytest.approx(brute, abs=4 * math.sqrt(0.25 / n) + 1e-9)


def test_a_normal_from_two_quantiles_gives_them_back():
    from scipy.stats import norm

    mu, sigma = unc.log_normal((-0.4, 0.2), 0.8)
    assert norm.ppf([0.1, 0.9], mu, sigma) == pytest.approx([-0.4, 0.2])


def test_calibrate_with_cross_validation_writes_intervals_and_their_coverage(tmp_path, capsys):
    from engine.model.catalog import load_catalog
    from tests.analysis.test_calibration import MAX_THROUGHPUT

    out = tmp_path / "p.yaml"
    argv = ["calibrate", str(MAX_THROUGHPUT), "--fit", "mfu_decode", "--cv", "hardware", "-o", str(out), "--name", "m"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "80% prediction intervals" in text and "held out by hardware: output_throughput_per_gpu" in text
    profile = load_catalog([out]).profile("m")
    found = profile.uncertainty
    metric = "output_throughput_per_gpu"
    lo, hi = found["log_ratio_quantiles"][metric]
    level = found["quantile_levels"][metric]
    assert lo < 0 < hi and found["level"] == 0.8 and "held out by hardware" in found["basis"] and level >= 0.8
    # Recomputed by hand from the same held-out predictions: the widened level is the smallest
    # whose cross-conformal coverage reaches 80 %, the bounds its quantiles of every error,
    # and the coverage nested (each hardware's rows choose neither its level nor its bounds).
    rows = [r for r in cal.read_rows(MAX_THROUGHPUT) if r.hardware in CATALOG.hardware and r.model in CATALOG.models]
    held = cal.held_out(rows, CATALOG, "hardware", ("mfu_decode",))

    def smallest_level(groups):
        return next((v for v in unc.WIDER if unc.cross_conformal_coverage(groups, v)[metric]["coverage"] >= 0.8),
                    unc.WIDER[-1])  # fmt: skip

    def pooled(groups):
        return unc.log_ratios([r for t, _ in groups.values() for r in t], [p for _, ps in groups.values() for p in ps])

    assert level == smallest_level(held)
    assert [lo, hi] == pytest.approx(np.quantile(pooled(held)[metric], [(1 - level) / 2, (1 + level) / 2]), abs=1e-4)
    inside = total = 0
    for group, (own_rows, own_predictions) in held.items():
        train = {g: pair for g, pair in held.items() if g != group}
        chosen = smallest_level(train) if len(train) > 1 else unc.WIDER[-1]
        q = np.quantile(pooled(train)[metric], [(1 - chosen) / 2, (1 + chosen) / 2])
        own = unc.log_ratios(own_rows, own_predictions)[metric]
        inside, total = inside + int(((own >= q[0]) & (own <= q[1])).sum()), total + own.size
    assert found["coverage"]["hardware"][metric] == pytest.approx(inside / total, abs=1e-3)


def test_widening_restores_coverage_when_groups_err_alike():
    """Each group has its own bias (a model the engine misjudges as a whole): the other groups'
    80 % quantiles then cover too few of a new group's rows; the widened level covers 80 %."""
    rng = np.random.default_rng(3)
    held_by = {"model": {}}
    for i in range(12):
        bias = rng.normal(0, 0.3)
        values = bias + rng.normal(0, 0.1, 60)
        rows = [Measured({"ttft": math.exp(v)}, model=f"m{i}") for v in values]
        held_by["model"][f"m{i}"] = (rows, [{"ttft": 1.0} for _ in values])
    plain = unc.cross_conformal_coverage(held_by["model"], 0.8)["ttft"]["coverage"]
    found = unc.profile_uncertainty(held_by, ["model"])
    assert plain < 0.75 < found["quantile_levels"]["ttft"] / 1.0
    assert found["quantile_levels"]["ttft"] > 0.8
    assert found["coverage"]["model"]["ttft"] == pytest.approx(0.8, abs=0.1)  # nested, so not exact


def test_intervals_never_beat_the_roofline_and_need_measured_hardware(catalog, agentic):
    """Physics first: on random points no speed's interval rises above its bound, no TTFT below
    its bound, no cost below its value at the peak throughput; other kinds get no interval."""
    from engine.interfaces.cli.point import point_intervals
    from engine.model.evaluate import evaluate_point
    from engine.model.point import Point

    profile = catalog.profile("calibrated")
    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(40):
        point = Point(catalog.model(rng.choice(["gpt-oss-120b", "llama-3.1-8b", "llama-3.1-70b", "qwen3-32b"])),
                      catalog.get_hardware(rng.choice(["h100-sxm", "h200-sxm", "b200"])), agentic,
                      isl=float(rng.choice([1e3, 8e3, 64e3])), concurrency=float(rng.choice([1, 64, 1024])),
                      weight_bits=8, kv_bits=16, assumptions=catalog.assumptions("calibrated", {}, ""))  # fmt: skip
        values = evaluate_point(point)
        if not values["replica_fits"]:
            continue
        found = point_intervals(point, profile, values, [])["intervals"]
        assert found["interactivity_tps"][1] <= values["interactivity_bound_tps"] * (1 + 1e-12)
        assert found["throughput_tps"][1] <= values["throughput_bound_tps"] * (1 + 1e-12)
        assert found["ttft_s"][0] >= values["ttft_bound_s"] * (1 - 1e-12)
        at_peak = values["cost_per_mtok_usd"] * values["throughput_tps"] / values["throughput_bound_tps"]
        assert found["cost_per_mtok_usd"][0] >= at_peak * (1 - 1e-12)
        for name, (lo, hi) in found.items():
            assert lo <= values[name] <= hi, name
        checked += 1
    assert checked >= 15
    groq = Point(catalog.model("llama-3.1-8b"), catalog.get_hardware("groq-lpu"), agentic, isl=1e3)
    assert point_intervals(groq, profile, evaluate_point(groq), [])["intervals"] == {}
    assert unc.cost_error(profile.model_dump(mode="json"), "sram_chip") is None
