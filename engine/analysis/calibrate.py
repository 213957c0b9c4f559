"""Calibrating a serving-efficiency profile to measured serving benchmarks.

Measured rows (the formats of ``engine/data/calibration/*.csv``) become engine points;
:func:`fit` adjusts a handful of physically meaningful assumptions (efficiencies, fixed
times) by bounded least squares on log errors so the engine's *expected* figures match the
measurements; :func:`cross_validate` holds out one hardware, model or length at a time.

How a row becomes a point (documented in docs/model.md):

- serving rows (``concurrency`` given): ISL and OSL are 0.9 x nominal (the benchmark draws
  lengths uniformly in 0.8-1.0 x), every input token is fresh (random prompts), the replica
  is the measured GPU count, ``dp_attention`` maps to ``dp-ep``, ``ep > 1`` to ``tp-ep``,
  else ``tp``; compared: interactivity, throughput per GPU, TTFT;
- max-throughput rows (no concurrency): the largest concurrency whose KV the replica holds
  (the engine's own memory model, capped at 2,048, TensorRT-LLM's default batch), nominal
  lengths; compared: output tokens/s per GPU.

Weights: MXFP4 = 4.25 bits, FP8 = 8, BF16 = 16; KV cache FP8 with FP8 weights, else 16-bit.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import numpy as np

from engine.axes import AXES, PARAMETERS
from engine.errors import UserError, did_you_mean
from engine.model.assumptions import Assumptions
from engine.model.catalog import Catalog
from engine.model.core import evaluate_arrays
from engine.model.records import Workload
from engine.model.variables import GPU_SERVING, REPLICA

#: Assumptions fitted by default: the GPU serving stack's efficiencies and fixed times (registry
#: order), then how bursty arrivals are (docs/model.md).
DEFAULT_FIT = (*(n for n in PARAMETERS if n in GPU_SERVING), "prefill_burstiness")
#: Where a fit starts (zero overheads give the optimiser no gradient through max()).
START = {
    "step_overhead_s": 1e-3,
    "layer_overhead_s": 2e-5,
    "dequant_flops_per_weight": 400.0,  # where it binds on Hopper: below that the data give no gradient (a max())
    "ttft_overhead_s": 0.02,
    "prefill_burstiness": 0.5,
}
#: Weight of the prior that pulls each parameter toward its start, relative to one row's log
#: error: weak enough that the data decide wherever they can, strong enough that a direction
#: the data leave flat has one minimum (the fit is identified: the same data, the same values).
PRIOR_WEIGHT = 0.005
F_SCALE = 0.1  # soft-L1: log errors past about 10 % count linearly
# Plain "fp4" in these sources is NVFP4 (Blackwell); MXFP4 is always named so.
WEIGHT_BITS = {"mxfp4": 4.25, "fp4": 4.5, "nvfp4": 4.5, "fp8": 8.0, "int8": 8.0, "bf16": 16.0, "fp16": 16.0}
LENGTH_FACTOR = 0.9  # mean of the benchmark's uniform 0.8-1.0 x nominal lengths
#: The assumption fitted per serving framework (docs/model.md): how much longer than the
#: modelled queue its scheduler holds a new request before the first token.
FRAMEWORK_FACTOR = "ttft_scheduler_factor"
#: A framework gets a factor of its own only where the data can tell it from the model, the
#: hardware and the lengths: this many TTFT rows, on configurations another framework also ran.
MIN_FRAMEWORK_ROWS = 50
FRAMEWORK_START = 1.0  # and the prior's centre: no hold beyond the modelled queue unless the data show one
MAX_BATCH = 2048
#: Random prompts: every input token prefilled (the output share only splits nothing).
BENCHMARK_MIX = Workload(name="random-prompts", cache_read=0.0, cache_write=0.0, input=0.5, output=0.5)
METRICS = ("interactivity", "throughput_per_gpu", "ttft", "output_throughput_per_gpu")


@dataclass(frozen=True)
class Row:
    """One measured configuration and what was measured (None: not in that file's format)."""

    source: str
    file: str
    hardware: str
    model: str
    framework: str
    isl: float
    osl: float
    units: int
    parallelism: str
    concurrency: float | None
    weight_bits: float
    kv_bits: float
    measured: dict[str, float] = field(default_factory=dict)

    @property
    def length(self) -> str:
        return f"{self.isl:g}/{self.osl:g}"


#: Measured models whose architecture a catalog entry already describes.
MODEL_ALIASES = {"deepseek-r1": "deepseek-v3", "deepseek-r1-0528": "deepseek-v3"}
#: Rows a file may hold at most (a bound on what is read; the shipped files hold under 1,000).
MAX_ROWS = 1_000_000
MAX_BYTES = 64 * 2**20


def _number(row: dict, key: str, where: str, low: float = -math.inf, whole: bool = False, above: bool = False) -> float:
    """A column as a finite number within its physical range, or one line naming the column."""
    text = row.get(key)
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise UserError(f"{where}: column '{key}' is missing or not a number (got {text!r})") from None
    if not math.isfinite(value):
        raise UserError(f"{where}: column '{key}' is not finite (got {text!r})")
    if value < low or (above and value <= low):
        bound = f"> {low:g}" if above else f">= {low:g}"
        raise UserError(f"{where}: column '{key}' must be {bound} (got {text})")
    if whole and value != int(value):
        raise UserError(f"{where}: column '{key}' must be a whole number (got {text})")
    return value


def _read_table(path: Path) -> tuple[list[str], list[dict]]:
    """The CSV's header and rows: UTF-8 with or without a BOM, comma-separated, bounded in size."""
    try:
        size = path.stat().st_size
        if path.is_file() and size > MAX_BYTES:
            raise UserError(
                f"{path}: {size / 2**20:.0f} MiB is more measured data than calibration reads (limit {MAX_BYTES // 2**20} MiB)"
            )
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise UserError(f"{path}: more measured data than calibration reads (limit {MAX_BYTES // 2**20} MiB)")
        text = raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read measured data ({getattr(exc, 'strerror', None) or exc})") from None
    lines = text.splitlines()
    if not lines:
        raise UserError(f"{path}: empty file (expected a CSV header line)")
    header = lines[0]
    if "," not in header:
        found = next((d for d in (";", "\t", "|") if d in header), None)
        hint = f"it uses {found!r}" if found else "no comma in its header line"
        raise UserError(f"{path}: not a comma-separated file ({hint}); save it as CSV with commas")
    reader = csv.DictReader(lines)
    columns = [c.strip() for c in reader.fieldnames or []]
    reader.fieldnames = columns
    rows = []
    for i, raw_row in enumerate(reader):
        if i >= MAX_ROWS:
            raise UserError(f"{path}: more than {MAX_ROWS:,} rows (calibration reads at most that many)")
        rows.append(raw_row)
    return columns, rows


#: Columns every measured file needs, and those of each format.
REQUIRED = ("hardware", "model", "precision", "isl", "osl", "num_gpus")
SERVING_COLUMNS = ("concurrency", "interactivity_tps_per_user", "throughput_per_gpu_tps", "ttft_s")
LATENCY_COLUMNS = ("concurrency", "interactivity_tps_per_user", "ttft_s", "tpot_s")


def read_rows(path: str | Path, latest_only: bool = True) -> list[Row]:
    """Rows of a measured file, each checked: serving benchmark (throughput, interactivity and
    TTFT), latency-only (interactivity and TTFT under load) or max-throughput (no concurrency).

    Latest run per configuration only unless ``latest_only`` is false; latency rows without a
    concurrency are skipped (their load is not stated).
    """
    from engine.analysis.wafer import is_wafer_file

    path = Path(path)
    if is_wafer_file(path):
        raise UserError(f"{path}: holds published wafer speeds, not GPU measurements (tokensweep calibrate fits them)")
    columns, table = _read_table(path)
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise UserError(f"{path}: no column '{missing[0]}' (a measured file has {', '.join(REQUIRED)}, ...)")
    latency_only = "throughput_per_gpu_tps" not in columns
    serving = "concurrency" in columns
    needed = LATENCY_COLUMNS if latency_only else SERVING_COLUMNS if serving else ("throughput_per_gpu_tps",)
    missing = [c for c in needed if c not in columns]
    if missing:
        raise UserError(f"{path}: no column '{missing[0]}' (this format needs {', '.join(needed)})")
    rows = []
    for i, raw in enumerate(table, start=2):
        where = f"{path}:{i}"
        if latest_only and raw.get("latest_for_config", "1") not in ("1", "", None):
            continue
        if serving and raw.get("concurrency") in (None, "") and latency_only:
            continue  # the load is not stated
        rows.append(_row(raw, where, path.name, serving, latency_only))
    if not rows:
        raise UserError(f"{path}: no measured rows")
    return rows


def _row(raw: dict, where: str, file: str, serving: bool, latency_only: bool) -> Row:
    precision = str(raw.get("precision") or raw.get("gemm_quant") or "bf16").strip().lower()
    if precision not in WEIGHT_BITS:
        raise UserError(f"{where}: precision '{precision}' is not known ({did_you_mean(precision, WEIGHT_BITS)})")
    wbits = WEIGHT_BITS[precision]
    # The serving benchmark draws lengths in 0.8-1.0 x nominal; the latency set runs fixed lengths.
    scale = LENGTH_FACTOR if serving and not latency_only else 1.0
    units = _number(raw, "num_gpus", where, low=1, whole=True)
    if units > 1e6:
        raise UserError(f"{where}: column 'num_gpus' must be at most 1,000,000 (got {raw['num_gpus']})")
    attention_dp = str(raw.get("dp_attention", "")).strip().lower()
    expert = float(raw["ep"]) if str(raw.get("ep", "")).strip() not in ("",) else 1.0
    if attention_dp == "true" or (attention_dp.replace(".", "", 1).isdigit() and float(attention_dp) > 1):
        parallelism = "dp-ep"
    elif expert > 1:
        parallelism = "tp-ep"
    else:
        parallelism = "tp"
    concurrency = None
    if serving:
        concurrency = _number(raw, "concurrency", where, low=1, whole=True)
        if concurrency > 1e7:
            raise UserError(f"{where}: column 'concurrency' must be at most 10,000,000 (got {raw['concurrency']})")
        measured = {
            "interactivity": _number(raw, "interactivity_tps_per_user", where, low=0, above=True),
            "ttft": _number(raw, "ttft_s", where, low=0, above=True),
        }
        if not latency_only:
            measured["throughput_per_gpu"] = _number(raw, "throughput_per_gpu_tps", where, low=0, above=True)
    else:
        measured = {"output_throughput_per_gpu": _number(raw, "throughput_per_gpu_tps", where, low=0, above=True)}
    model = str(raw["model"]).strip()
    return Row(
        source=str(raw.get("source", "")), file=file, hardware=str(raw["hardware"]).strip(),
        model=MODEL_ALIASES.get(model, model), framework=str(raw.get("framework", "")),
        isl=scale * _number(raw, "isl", where, low=1), osl=scale * _number(raw, "osl", where, low=1),
        units=int(units), parallelism=parallelism, concurrency=concurrency, weight_bits=wbits,
        kv_bits=8.0 if wbits == 8.0 else 16.0, measured=measured,
    )  # fmt: skip


def _check_names(rows: Sequence[Row], catalog: Catalog) -> None:
    for row in rows:
        catalog.model(row.model)
        catalog.get_hardware(row.hardware)


def _assumptions(base: Assumptions, row: Row) -> Assumptions:
    return base.model_copy(update={"replica_units": row.units, "parallelism": row.parallelism})


def max_batch(row: Row, catalog: Catalog, assumptions: Assumptions) -> float:
    """The largest concurrency whose replica holds its KV (the engine's memory model), capped."""
    model, unit = catalog.model(row.model), catalog.get_hardware(row.hardware)
    grid = np.unique(np.round(np.geomspace(1, MAX_BATCH, 400)))
    fits = evaluate_arrays([model], [unit], [row.isl], [row.osl], grid, [row.weight_bits], [row.kv_bits], BENCHMARK_MIX,
                           _assumptions(assumptions, row), families=["memory"]).view("replica_fits", ("concurrency",))  # fmt: skip
    return float(grid[fits].max()) if fits.any() else math.nan


def predict(
    rows: Sequence[Row], catalog: Catalog, assumptions: Assumptions, factors: dict[str, float] | None = None
) -> list[dict[str, float]]:
    """The engine's expected figures for each row, in the rows' metrics.

    ``factors``: a framework's own ``ttft_scheduler_factor`` for its rows (other rows keep the
    assumptions' own). Rows that share a replica size, layout and factor are one kernel call
    over the product of their models, hardware, lengths, concurrencies and bits (vectorised: a
    fit step over a thousand rows costs a few kernel calls, not one per row).
    """
    factors = factors or {}

    def row_assumptions(row: Row) -> Assumptions:
        update = {FRAMEWORK_FACTOR: factors[row.framework]} if row.framework in factors else {}
        return _assumptions(assumptions, row).model_copy(update=update)

    groups: dict[tuple, list[int]] = {}
    concurrency = []
    for i, row in enumerate(rows):
        concurrency.append(
            row.concurrency if row.concurrency is not None else max_batch(row, catalog, _assumptions(assumptions, row))
        )
        groups.setdefault((row.units, row.parallelism, factors.get(row.framework)), []).append(i)
    out: list[dict[str, float]] = [dict.fromkeys(r.measured, math.nan) for r in rows]
    for members in groups.values():
        served = [i for i in members if not math.isnan(concurrency[i])]
        if not served:
            continue
        axes = {
            "model": sorted({rows[i].model for i in served}),
            "hardware": sorted({rows[i].hardware for i in served}),
            "context": sorted({(rows[i].isl, rows[i].osl) for i in served}),
            "concurrency": sorted({concurrency[i] for i in served}),
            "weight_bits": sorted({rows[i].weight_bits for i in served}),
            "kv_bits": sorted({rows[i].kv_bits for i in served}),
        }
        first = rows[served[0]]
        v = evaluate_arrays(
            [catalog.model(m) for m in axes["model"]], [catalog.get_hardware(h) for h in axes["hardware"]],
            [c[0] for c in axes["context"]], [c[1] for c in axes["context"]], axes["concurrency"],
            axes["weight_bits"], axes["kv_bits"], BENCHMARK_MIX, row_assumptions(first),
            families=["performance"],
        )  # fmt: skip
        dims = ("model", "isl", "concurrency", "weight_bits", "kv_bits", "hardware")
        figures = {
            "interactivity": v.view("interactivity_tps", dims),
            "throughput_per_gpu": v.view("throughput_tps", dims) / first.units,
            "ttft": v.view("ttft_s", dims),
            "output_throughput_per_gpu": v.view("output_throughput_tps", dims) / first.units,
        }
        position = {name: {value: j for j, value in enumerate(values)} for name, values in axes.items()}
        for i in served:
            row = rows[i]
            at = (
                position["model"][row.model], position["context"][(row.isl, row.osl)],
                position["concurrency"][concurrency[i]], position["weight_bits"][row.weight_bits],
                position["kv_bits"][row.kv_bits], position["hardware"][row.hardware],
            )  # fmt: skip
            out[i] = {k: float(figures[k][at]) for k in row.measured}
    return out


def log_errors(rows: Sequence[Row], predictions: Sequence[dict[str, float]]) -> np.ndarray:
    """log(predicted / measured) for every measured metric of every row (NaN: no replica)."""
    return np.array([math.log(p[k] / r.measured[k]) if p[k] > 0 else math.nan
                     for r, p in zip(rows, predictions) for k in r.measured])  # fmt: skip


@dataclass
class Fit:
    """A fitted profile's values, their spread and how well they reproduce the data.

    ``standard_errors`` and ``correlation`` come from the Jacobian at the optimum, scaled by
    the residuals' spread (the local, Gauss-Newton estimate); pairs of parameters the data
    cannot tell apart show as correlations near +-1, held in place by the prior.
    """

    parameters: dict[str, float]
    rows: list[Row]
    predictions: list[dict[str, float]]
    cost: float
    standard_errors: dict[str, float] = field(default_factory=dict)
    correlation: dict[str, float] = field(default_factory=dict)
    #: Each supported framework's own ttft_scheduler_factor (``parameters`` holds the blind one).
    framework_factors: dict[str, float] = field(default_factory=dict)

    def errors(self) -> dict[str, np.ndarray]:
        """|predicted / measured - 1| per metric."""
        out: dict[str, list[float]] = {m: [] for m in METRICS}
        for row, pred in zip(self.rows, self.predictions):
            for k, measured in row.measured.items():
                out[k].append(abs(pred[k] / measured - 1.0))
        return {k: np.asarray(v) for k, v in out.items() if v}

    def summary(self) -> dict[str, dict[str, float]]:
        return {k: summarise(v) for k, v in self.errors().items()}


def summarise(errors: np.ndarray) -> dict[str, float]:
    errors = errors[np.isfinite(errors)]
    if errors.size == 0:
        return {"n": 0}
    return {"n": int(errors.size), "median": float(np.median(errors)), "p90": float(np.percentile(errors, 90)),
            "max": float(errors.max())}  # fmt: skip


def _configurations(rows: Iterable[Row]) -> set[tuple]:
    """Distinct measured configurations (a row measured twice counts once)."""
    return {(r.model, r.hardware, r.isl, r.osl, r.units, r.parallelism, r.concurrency, r.weight_bits, r.kv_bits)
            for r in rows}  # fmt: skip


def timed_configurations(rows: Iterable[Row]) -> dict[str, int]:
    """{framework: its distinct configurations with a measured TTFT} (rows naming one)."""
    timed = [r for r in rows if "ttft" in r.measured and r.framework]
    return {f: len(_configurations(r for r in timed if r.framework == f)) for f in sorted({r.framework for r in timed})}


def supported_frameworks(rows: Sequence[Row]) -> list[str]:
    """Frameworks the data can give a scheduler factor of their own: at least
    :data:`MIN_FRAMEWORK_ROWS` distinct configurations with a measured TTFT, on a model and
    hardware another framework was also measured on (else the factor would absorb the model's
    or the hardware's error)."""
    timed = [r for r in rows if "ttft" in r.measured and r.framework]
    out = []
    for framework, count in timed_configurations(timed).items():
        own = {(r.model, r.hardware) for r in timed if r.framework == framework}
        others = {(r.model, r.hardware) for r in timed if r.framework != framework}
        if count >= MIN_FRAMEWORK_ROWS and own & others:
            out.append(framework)
    return out


def profile_factors(catalog: Catalog, name: str) -> dict[str, float]:
    """{framework: its ttft_scheduler_factor} of the framework profiles :func:`profile_document`
    wrote beside profile ``name`` (``name-framework``), as :func:`predict` takes them."""
    return {
        p.provenance["framework"]: float(p.parameters[FRAMEWORK_FACTOR])
        for p in catalog.profiles.values()
        if p.provenance.get("based_on") == name and FRAMEWORK_FACTOR in p.parameters
    }


def blind_factor(rows: Sequence[Row], factors: dict[str, float], weights: dict[str, int] | None = None) -> float:
    """The framework-blind scheduler factor: the geometric mean of the frameworks' own, weighted
    by their distinct configurations with a TTFT (``weights``, :func:`timed_configurations` of
    the rows when not given; 1 with none): what a row of a framework the data do not describe
    is predicted with, and the default profile's value."""
    weights = timed_configurations(rows) if weights is None else weights
    total = sum(weights.get(f, 0) for f in factors)
    if not total:
        return 1.0
    return math.exp(sum(weights.get(f, 0) * math.log(v) for f, v in factors.items()) / total)


def fit(
    rows: Sequence[Row],
    catalog: Catalog,
    names: Sequence[str] = DEFAULT_FIT,
    base: Assumptions | None = None,
    start: dict[str, float] | None = None,
    progress=None,
    frameworks: Sequence[str] | None = None,
) -> Fit:
    """Bounded least squares on log errors (then soft-L1, so a few odd rows do not rule the fit).

    ``frameworks``: those given a ``ttft_scheduler_factor`` of their own (default: the
    :func:`supported_frameworks` in a fit of the default set, none in a fit of chosen names);
    the rows of other frameworks take the blind factor (:func:`blind_factor`).
    ``progress(stage, evaluations, cost)`` is called after each evaluation of the model over
    every row (the command line prints it every few seconds: a fit of a large file is minutes)."""
    base = base or Assumptions()
    _check_names(rows, catalog)
    if frameworks is None:
        frameworks = supported_frameworks(rows) if tuple(names) == DEFAULT_FIT else []
    own = [f"{FRAMEWORK_FACTOR}@{f}" for f in frameworks]
    weights = timed_configurations(rows)  # the blind factor's weights: the same at every step
    for name in names:
        if name not in AXES or AXES[name].role != "parameter" or AXES[name].integer:
            numeric = [n for n, a in AXES.items() if a.role == "parameter" and not a.integer]
            raise UserError(f"--fit: '{name}' is not a numeric assumption ({did_you_mean(name, numeric)})")
    from scipy.optimize import least_squares

    lows = np.array([AXES[n].low for n in names] + [AXES[FRAMEWORK_FACTOR].low] * len(own), dtype=float)
    highs = np.array([AXES[n].high for n in names] + [AXES[FRAMEWORK_FACTOR].high] * len(own), dtype=float)
    if not set(names) & REPLICA:  # the memory fit does not move: size max-throughput batches once, not per step
        rows = [r if r.concurrency is not None else replace(r, concurrency=max_batch(r, catalog, _assumptions(base, r)))
                for r in rows]  # fmt: skip
    begin = {**START, **(start or {})}
    x0 = np.clip([begin.get(n, getattr(base, n)) for n in names] + [FRAMEWORK_START] * len(own), lows, highs)
    scale = np.maximum(np.abs(x0), 1e-6)
    measured = sum(len(r.measured) for r in rows)
    norm = 1.0 / math.sqrt(measured)  # a mean over the measurements: duplicated rows change nothing

    def evaluate(x):
        values = x * scale
        factors = {f: float(v) for f, v in zip(frameworks, values[len(names) :])}
        update = {n: float(v) for n, v in zip(names, values)}
        if factors:
            update[FRAMEWORK_FACTOR] = blind_factor(rows, factors, weights)
        return base.model_copy(update=update), factors

    def residuals(x, robust=False):
        errors = log_errors(rows, predict(rows, catalog, *evaluate(x)))
        data = np.where(np.isfinite(errors), errors, 5.0)  # a row with no replica counts as far off
        if robust:  # soft-L1 on the data only (the prior stays quadratic): sqrt of 2 f^2 (sqrt(1 + (r/f)^2) - 1)
            data = np.sign(data) * F_SCALE * np.sqrt(2.0 * (np.sqrt(1.0 + (data / F_SCALE) ** 2) - 1.0))
        prior = PRIOR_WEIGHT * (x - x0 / scale)
        out = np.concatenate([data * norm, prior])
        if progress is not None:
            calls[robust] += 1
            progress("robust" if robust else "least squares", calls[robust], 0.5 * float(out @ out))
        return out

    calls = {False: 0, True: 0}

    bounds = (lows / scale, highs / scale)
    tight = {"ftol": 1e-15, "xtol": 1e-12, "gtol": 1e-15, "max_nfev": 400}
    # Plain least squares finds the basin; soft-L1 (log errors past ~10 % count linearly) then
    # settles it without letting a few odd rows rule the fit. The objective is a mean over the
    # measurements plus the prior, so the same data (even every row twice) gives the same values.
    first = least_squares(residuals, x0 / scale, bounds=bounds, **tight)
    result = least_squares(residuals, first.x, bounds=bounds, kwargs={"robust": True}, **tight)
    fitted, factors = evaluate(result.x)
    values = {n: float(getattr(fitted, n)) for n in names}
    if factors:
        values[FRAMEWORK_FACTOR] = fitted.ttft_scheduler_factor
    errors, correlation = _spread(result, [*names, *own], scale, measured)
    predictions = predict(rows, catalog, fitted, factors)
    return Fit(values, list(rows), predictions, float(result.cost), errors, correlation, factors)


def _spread(result, names, scale, measured) -> tuple[dict[str, float], dict[str, float]]:
    """Standard errors (parameter units) and the strong correlations, from J at the optimum."""
    jac = result.jac
    data = result.fun[:measured]
    dof = max(1, measured - len(names))
    sigma2 = float(np.sum(data**2)) / dof * measured  # back to one row's log-error variance
    try:
        cov = np.linalg.pinv(jac.T @ jac) * sigma2 / measured
    except np.linalg.LinAlgError:
        return {}, {}
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    errors = {n: float(sd[i] * scale[i]) for i, n in enumerate(names)}
    correlation = {}
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            if sd[i] > 0 and sd[j] > 0:
                rho = float(cov[i, j] / (sd[i] * sd[j]))
                if abs(rho) >= 0.8:
                    correlation[f"{names[i]} ~ {names[j]}"] = rho
    return errors, correlation


def group_of(row: Row, by: str) -> str:
    if by == "hardware":
        return row.hardware
    if by == "model":
        return row.model
    if by == "length":
        return row.length
    raise UserError(f"--cv: '{by}' is not a grouping (allowed: hardware, model, length)")


#: The key of a cross-validation's pooled score: every row scored by the fit that did not see it.
POOLED = "all held out"


def held_out(
    rows: Sequence[Row], catalog: Catalog, by: str, names: Sequence[str] = DEFAULT_FIT, progress=None
) -> dict[str, tuple[list[Row], list[dict[str, float]]]]:
    """Fit without each group in turn: {group: (its rows, their predictions by that fit)}.
    ``progress(group)`` is called as each group starts (the command line prints it)."""
    groups = sorted({group_of(r, by) for r in rows})
    if len(groups) < 2:
        raise UserError(f"--cv {by}: the data has only one {by} ({', '.join(groups)})")
    out = {}
    for held in groups:
        if progress is not None:
            progress(held)
        train = [r for r in rows if group_of(r, by) != held]
        test = [r for r in rows if group_of(r, by) == held]
        fitted = fit(train, catalog, names)
        out[held] = (test, predict(test, catalog, Assumptions(**fitted.parameters), fitted.framework_factors))
    return out


def held_out_summary(held: dict) -> dict:
    """{group: {metric: summary}} of :func:`held_out`, plus :data:`POOLED` (every row scored by
    the fit that did not see it)."""
    out = {group: Fit({}, test, predictions, math.nan).summary() for group, (test, predictions) in held.items()}
    pooled_rows = [r for test, _ in held.values() for r in test]
    pooled_predictions = [p for _, predictions in held.values() for p in predictions]
    out[POOLED] = Fit({}, pooled_rows, pooled_predictions, math.nan).summary()
    return out


def cross_validate(
    rows: Sequence[Row], catalog: Catalog, by: str, names: Sequence[str] = DEFAULT_FIT, progress=None
) -> dict:
    """Fit without each group in turn and score the held-out group: {group: {metric: summary}},
    plus :data:`POOLED`, every row predicted by the fit that held it out."""
    return held_out_summary(held_out(rows, catalog, by, names, progress))


def profile_document(
    name: str, result: Fit, files: Iterable[str], cv: dict | None, description: str = "", uncertainty=None
) -> dict:
    """A catalog file holding one profile, its values and its provenance."""
    rows = result.rows
    sources = sorted({r.source.split("@")[0].split(":")[0] for r in rows if r.source})
    provenance = {
        "fitted": date.today().isoformat(),
        "data": [{"file": Path(f).name, "rows": sum(r.file == Path(f).name for r in rows)} for f in files],
        "sources": sources,
        "fitted_parameters": sorted(result.parameters),
        "standard_errors": {k: float(f"{v:.3g}") for k, v in result.standard_errors.items()},
        "strong_correlations": {k: round(v, 2) for k, v in result.correlation.items()},
        "residuals": result.summary(),
        "residuals_by_file": {
            f: Fit(
                {},
                [r for r in rows if r.file == f],
                [p for r, p in zip(rows, result.predictions) if r.file == f],
                math.nan,
            ).summary()
            for f in sorted({r.file for r in rows})
        },
    }
    if cv:
        provenance["cross_validation"] = cv
    entry = {"description": description or f"fitted by tokensweep calibrate to {len(rows)} rows",
             "parameters": result.parameters, "provenance": provenance}  # fmt: skip
    if uncertainty:
        entry["uncertainty"] = uncertainty
    profiles = {name: entry}
    counts = timed_configurations(rows)
    for framework, factor in result.framework_factors.items():  # the same profile, one framework's scheduler
        key = f"{FRAMEWORK_FACTOR}@{framework}"
        timed = counts[framework]
        profiles[f"{name}-{framework}"] = {
            "description": f"{name} with {framework}'s own {FRAMEWORK_FACTOR} (fitted with it, to its {timed} "
            "configurations with a measured TTFT): for a deployment served by that framework",
            "parameters": {**result.parameters, FRAMEWORK_FACTOR: factor},
            "provenance": {"based_on": name, "framework": framework, "configurations": timed,
                           "standard_error": float(f"{result.standard_errors.get(key, math.nan):.3g}")},
        }  # fmt: skip
    return {"profiles": profiles}


def with_measured(rows: Sequence[Row], **changes) -> list[Row]:
    """Copies of rows with fields changed (tests build synthetic data this way)."""
    return [replace(r, **changes) for r in rows]
