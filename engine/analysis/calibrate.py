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

from engine.axes import AXES
from engine.errors import UserError, did_you_mean
from engine.model.assumptions import Assumptions
from engine.model.catalog import Catalog
from engine.model.core import evaluate_arrays
from engine.model.records import Workload
from engine.model.variables import REPLICA

#: Assumptions fitted by default: each a physical efficiency or fixed time (docs/model.md).
DEFAULT_FIT = (
    "memory_bw_efficiency",
    "mfu_decode",
    "mfu_prefill",
    "step_overhead_s",
    "layer_overhead_s",
    "dequant_flops_per_weight",
    "ttft_overhead_s",
    "allreduce_latency_s",
)
#: Where a fit starts (zero overheads give the optimiser no gradient through max()).
START = {"step_overhead_s": 1e-3, "layer_overhead_s": 2e-5, "dequant_flops_per_weight": 50.0, "ttft_overhead_s": 0.02}
WEIGHT_BITS = {"mxfp4": 4.25, "fp4": 4.25, "nvfp4": 4.5, "fp8": 8.0, "int8": 8.0, "bf16": 16.0, "fp16": 16.0}
LENGTH_FACTOR = 0.9  # mean of the benchmark's uniform 0.8-1.0 x nominal lengths
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


def _number(row: dict, key: str, where: str) -> float:
    try:
        value = float(row[key])
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{where}: column '{key}' is missing or not a number") from None
    if not math.isfinite(value):
        raise UserError(f"{where}: column '{key}' is not finite")
    return value


def read_rows(path: str | Path, latest_only: bool = True) -> list[Row]:
    """Rows of a measured-serving or max-throughput CSV (latest run per configuration)."""
    from engine.analysis.wafer import is_wafer_file

    path = Path(path)
    if is_wafer_file(path):
        raise UserError(f"{path}: holds published wafer speeds, not GPU measurements (tokensweep calibrate fits them)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read measured data ({getattr(exc, 'strerror', None) or exc})") from None
    rows = []
    for i, raw in enumerate(csv.DictReader(text.splitlines()), start=2):
        where = f"{path}:{i}"
        if latest_only and raw.get("latest_for_config", "1") not in ("1", "", None):
            continue
        precision = str(raw.get("precision", "")).lower()
        if precision not in WEIGHT_BITS:
            raise UserError(f"{where}: precision '{precision}' is not known ({did_you_mean(precision, WEIGHT_BITS)})")
        wbits = WEIGHT_BITS[precision]
        serving = raw.get("concurrency") not in (None, "")
        scale = LENGTH_FACTOR if serving else 1.0
        if str(raw.get("dp_attention", "")).lower() == "true":
            parallelism = "dp-ep"
        elif serving and _number(raw, "ep", where) > 1:
            parallelism = "tp-ep"
        else:
            parallelism = "tp"
        if serving:
            measured = {
                "interactivity": _number(raw, "interactivity_tps_per_user", where),
                "throughput_per_gpu": _number(raw, "throughput_per_gpu_tps", where),
                "ttft": _number(raw, "ttft_s", where),
            }
        else:
            measured = {"output_throughput_per_gpu": _number(raw, "throughput_per_gpu_tps", where)}
        rows.append(
            Row(
                source=str(raw.get("source", "")), file=path.name, hardware=str(raw["hardware"]), model=str(raw["model"]),
                framework=str(raw.get("framework", "")), isl=scale * _number(raw, "isl", where),
                osl=scale * _number(raw, "osl", where), units=int(_number(raw, "num_gpus", where)),
                parallelism=parallelism, concurrency=_number(raw, "concurrency", where) if serving else None,
                weight_bits=wbits, kv_bits=8.0 if wbits == 8.0 else 16.0, measured=measured,
            )
        )  # fmt: skip
    if not rows:
        raise UserError(f"{path}: no measured rows")
    return rows


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


def predict(rows: Sequence[Row], catalog: Catalog, assumptions: Assumptions) -> list[dict[str, float]]:
    """The engine's expected figures for each row, in the rows' metrics."""
    out = []
    for row in rows:
        a = _assumptions(assumptions, row)
        concurrency = row.concurrency if row.concurrency is not None else max_batch(row, catalog, a)
        if math.isnan(concurrency):
            out.append(dict.fromkeys(row.measured, math.nan))
            continue
        v = evaluate_arrays([catalog.model(row.model)], [catalog.get_hardware(row.hardware)], [row.isl], [row.osl], [concurrency],
                            [row.weight_bits], [row.kv_bits], BENCHMARK_MIX, a, families=["performance"])  # fmt: skip
        figures = {
            "interactivity": v["interactivity_tps"].item(),
            "throughput_per_gpu": v["throughput_tps"].item() / row.units,
            "ttft": v["ttft_s"].item(),
            "output_throughput_per_gpu": v["output_throughput_tps"].item() / row.units,
        }
        out.append({k: figures[k] for k in row.measured})
    return out


def log_errors(rows: Sequence[Row], predictions: Sequence[dict[str, float]]) -> np.ndarray:
    """log(predicted / measured) for every measured metric of every row (NaN: no replica)."""
    return np.array([math.log(p[k] / r.measured[k]) if p[k] > 0 else math.nan
                     for r, p in zip(rows, predictions) for k in r.measured])  # fmt: skip


@dataclass
class Fit:
    """A fitted profile's values and how well they reproduce the data."""

    parameters: dict[str, float]
    rows: list[Row]
    predictions: list[dict[str, float]]
    cost: float

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


def fit(
    rows: Sequence[Row],
    catalog: Catalog,
    names: Sequence[str] = DEFAULT_FIT,
    base: Assumptions | None = None,
    start: dict[str, float] | None = None,
) -> Fit:
    """Bounded least squares on log errors (then soft-L1, so a few odd rows do not rule the fit)."""
    base = base or Assumptions()
    _check_names(rows, catalog)
    for name in names:
        if name not in AXES or AXES[name].role != "parameter" or AXES[name].integer:
            numeric = [n for n, a in AXES.items() if a.role == "parameter" and not a.integer]
            raise UserError(f"--fit: '{name}' is not a numeric assumption ({did_you_mean(name, numeric)})")
    from scipy.optimize import least_squares

    lows = np.array([AXES[n].low for n in names], dtype=float)
    highs = np.array([AXES[n].high for n in names], dtype=float)
    if not set(names) & REPLICA:  # the memory fit does not move: size max-throughput batches once, not per step
        rows = [r if r.concurrency is not None else replace(r, concurrency=max_batch(r, catalog, _assumptions(base, r)))
                for r in rows]  # fmt: skip
    begin = {**START, **(start or {})}
    x0 = np.clip([begin.get(n, getattr(base, n)) for n in names], lows, highs)
    scale = np.maximum(np.abs(x0), 1e-6)

    def evaluate(x):
        return base.model_copy(update={n: float(v) for n, v in zip(names, x * scale)})

    def residuals(x):
        errors = log_errors(rows, predict(rows, catalog, evaluate(x)))
        return np.where(np.isfinite(errors), errors, 5.0)  # a row with no replica counts as far off

    bounds = (lows / scale, highs / scale)
    # Plain least squares finds the basin; soft-L1 (errors past ~10 % count linearly) then
    # settles it without letting a few odd rows rule the fit.
    first = least_squares(residuals, x0 / scale, bounds=bounds, max_nfev=400)
    result = least_squares(residuals, first.x, bounds=bounds, loss="soft_l1", f_scale=0.1, max_nfev=400)  # fmt: skip
    fitted = evaluate(result.x)
    values = {n: float(getattr(fitted, n)) for n in names}
    return Fit(values, list(rows), predict(rows, catalog, fitted), float(result.cost))


def group_of(row: Row, by: str) -> str:
    if by == "hardware":
        return row.hardware
    if by == "model":
        return row.model
    if by == "length":
        return row.length
    raise UserError(f"--cv: '{by}' is not a grouping (allowed: hardware, model, length)")


def cross_validate(rows: Sequence[Row], catalog: Catalog, by: str, names: Sequence[str] = DEFAULT_FIT) -> dict:
    """Fit without each group in turn and score the held-out group: {group: {metric: summary}}."""
    groups = sorted({group_of(r, by) for r in rows})
    if len(groups) < 2:
        raise UserError(f"--cv {by}: the data has only one {by} ({', '.join(groups)})")
    out = {}
    for held in groups:
        train = [r for r in rows if group_of(r, by) != held]
        test = [r for r in rows if group_of(r, by) == held]
        fitted = fit(train, catalog, names)
        scored = Fit(fitted.parameters, test, predict(test, catalog, Assumptions(**fitted.parameters)), math.nan)
        out[held] = scored.summary()
    return out


def profile_document(name: str, result: Fit, files: Iterable[str], cv: dict | None, description: str = "") -> dict:
    """A catalog file holding one profile, its values and its provenance."""
    rows = result.rows
    sources = sorted({r.source.split("@")[0].split(":")[0] for r in rows if r.source})
    provenance = {
        "fitted": date.today().isoformat(),
        "data": [{"file": Path(f).name, "rows": sum(r.file == Path(f).name for r in rows)} for f in files],
        "sources": sources,
        "fitted_parameters": sorted(result.parameters),
        "residuals": result.summary(),
    }
    if cv:
        provenance["cross_validation"] = cv
    return {"profiles": {name: {"description": description or f"fitted by tokensweep calibrate to {len(rows)} rows",
                                "parameters": result.parameters, "provenance": provenance}}}  # fmt: skip


def with_measured(rows: Sequence[Row], **changes) -> list[Row]:
    """Copies of rows with fields changed (tests build synthetic data this way)."""
    return [replace(r, **changes) for r in rows]
