"""Calibrating the wafer pipeline to the published WSE-3 single-stream speeds.

A token alone on a wafer replica takes ``t_token + L x t_layer + (units - 1) x t_hop``
(:func:`engine.model.formulas.wafer_pipeline_latency`). The three latencies are fitted,
non-negative, by least squares on relative errors (:func:`scipy.optimize.nnls` on rows
scaled by the measured step), to the published speeds of models served without
speculative decoding. Rows served with it (the article's Llama-3.1-70B) then give the
acceptance rate that turns the fitted pipeline into the published speed, for the draft
settings the row states. Leave-one-model-out cross-validation reports how well the fit
carries to a model it has not seen.

The fit is identified: a latency the data cannot separate from the others (its column
nearly a combination of theirs) is reported with its correlation, and one that the
non-negative fit drives to zero is said to be fixed at 0.
"""

from __future__ import annotations

import csv
import itertools
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.optimize import brentq, nnls

from engine.axes import AXES
from engine.errors import UserError
from engine.model import formulas as F
from engine.model import reference as ref
from engine.model.catalog import Catalog
from engine.model.variables import WAFER_PIPELINE

PARAMETERS = tuple(n for n in AXES if n in WAFER_PIPELINE)  # token, layer, hop: registry order
#: Draft settings assumed for rows served with speculative decoding (a Llama-3.1-8B draft of a
#: 70B target: 8 / 70.6 of its active parameters; four tokens drafted per step).
DRAFT_TOKENS, DRAFT_RATIO = 4, 8.0 / 70.6


@dataclass(frozen=True)
class WaferRow:
    model: str
    weight_bits: float
    isl: float
    osl: float
    interactivity_tps: float
    ttft_s: float | None
    speculative: bool
    source: str


def shipped_rows_path() -> Path:
    return Path(str(resources.files("engine") / "data" / "calibration" / "published-wse3.csv"))


#: The columns that mark a file of published wafer speeds (GPU benchmark files name a hardware).
COLUMNS = ("model", "weight_bits", "isl", "osl", "interactivity_tps")


def is_wafer_file(path: str | Path) -> bool:
    """Whether a CSV holds published wafer speeds: its header has :data:`COLUMNS` and no hardware."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError):
        return False
    return set(COLUMNS) <= set(header) and "hardware" not in header


def read_rows(path: str | Path | None = None) -> list[WaferRow]:
    """Rows of a published-speed CSV (the shipped one by default), checked field by field."""
    path = Path(path) if path is not None else shipped_rows_path()
    rows = []
    with open(path, newline="", encoding="utf-8-sig") as handle:
        for n, raw in enumerate(csv.DictReader(handle), start=2):
            try:
                row = WaferRow(
                    model=raw["model"].strip(),
                    weight_bits=float(raw["weight_bits"]),
                    isl=float(raw["isl"]),
                    osl=float(raw["osl"]),
                    interactivity_tps=float(raw["interactivity_tps"]),
                    ttft_s=float(raw["ttft_s"]) if raw.get("ttft_s") else None,
                    speculative=raw.get("speculative", "0").strip() == "1",
                    source=raw.get("source", ""),
                )
            except (KeyError, TypeError, ValueError) as error:
                raise UserError(f"{path.name} row {n}: {error}") from None
            for field in ("weight_bits", "isl", "osl", "interactivity_tps"):
                value = getattr(row, field)
                if not (math.isfinite(value) and value > 0):
                    raise UserError(f"{path.name} row {n}: {field} must be a positive number, got {value:g}")
            rows.append(row)
    if not rows:
        raise UserError(f"{path.name}: no rows")
    return rows


def replica_units(row: WaferRow, catalog: Catalog) -> int:
    """Wafers of the row's replica: the fewest that hold weights and one request's KV."""
    model, unit = catalog.model(row.model), catalog.get_hardware("wse3")
    kv = ref.kv_bytes_per_request(model, row.isl + row.osl, 16)
    return ref.units_needed(model, unit, "tp", row.weight_bits, kv, unit.memory_gb * 1e9 * unit.usable_fraction)


def design(rows: list[WaferRow], catalog: Catalog) -> np.ndarray:
    """One row per published speed: (1, layers, hops) — the latency's coefficients."""
    return np.array([[1.0, catalog.model(r.model).layers, replica_units(r, catalog) - 1.0] for r in rows])


@dataclass
class WaferFit:
    parameters: dict[str, float]
    fixed_at_zero: tuple[str, ...]
    correlation: dict[str, float]
    rows: list[WaferRow]
    predicted_tps: list[float]  # without speculative decoding
    acceptance: float | None  # fitted on the speculative rows, if any
    cross_validation: dict[str, float]  # model -> relative error when left out

    def errors(self) -> np.ndarray:
        plain = [p / r.interactivity_tps - 1 for r, p in zip(self.rows, self.predicted_tps) if not r.speculative]
        return np.abs(np.array(plain))


def fit(rows: list[WaferRow], catalog: Catalog) -> WaferFit:
    """The pipeline latencies from the rows served without speculative decoding.

    Which latencies are fitted is chosen by the data: every non-empty subset of the three is
    fitted and left-one-model-out cross-validated, and the subset with the smallest median
    held-out error wins (fewer parameters on a tie); the others are fixed at 0. With a
    handful of noisy published speeds this keeps the fit from spending parameters on noise.
    """
    plain = [r for r in rows if not r.speculative]
    if len(plain) < 2:
        raise UserError("wafer calibration: needs at least two rows served without speculative decoding")
    best = None
    for size in range(1, len(PARAMETERS) + 1):
        for subset in itertools.combinations(PARAMETERS, size):
            cv = _cross_validate(plain, catalog, subset)
            score = float(np.median(np.abs(list(cv.values())))) if cv else math.inf
            if best is None or score < best[0] - 1e-12:
                best = (score, subset, cv)
    _, subset, cv = best
    parameters = _nnls(plain, catalog, subset)
    fixed = tuple(n for n, v in parameters.items() if v == 0.0)
    correlation = _correlation(design(plain, catalog))
    predicted = [1.0 / _latency(r, catalog, parameters) for r in rows]
    acceptance = None
    spec = [r for r in rows if r.speculative]
    if spec:
        acceptance = float(np.median([implied_acceptance(r, catalog, parameters) for r in spec]))
    return WaferFit(parameters, fixed, correlation, rows, predicted, acceptance, cv)


def _cross_validate(rows: list[WaferRow], catalog: Catalog, subset: tuple[str, ...]) -> dict[str, float]:
    """Relative speed error of each model predicted by a fit without it."""
    cv = {}
    for model in sorted({r.model for r in rows}):
        rest = [r for r in rows if r.model != model]
        if len(rest) < len(subset):
            continue
        held = _nnls(rest, catalog, subset)
        for r in rows:
            if r.model == model:
                cv[model] = 1.0 / _latency(r, catalog, held) / r.interactivity_tps - 1.0
    return cv


def _nnls(rows: list[WaferRow], catalog: Catalog, subset: tuple[str, ...] = PARAMETERS) -> dict[str, float]:
    columns = [PARAMETERS.index(n) for n in subset]
    a = design(rows, catalog)[:, columns]
    measured = np.array([1.0 / r.interactivity_tps for r in rows])
    solution, _ = nnls(a / measured[:, None], np.ones(len(rows)))  # relative errors, non-negative latencies
    values = dict.fromkeys(PARAMETERS, 0.0)
    values.update(zip(subset, (float(v) for v in solution)))
    return values


def _correlation(a: np.ndarray) -> dict[str, float]:
    """Correlations of the latency estimates (from the normal matrix), by parameter pair."""
    try:
        cov = np.linalg.inv(a.T @ a)
    except np.linalg.LinAlgError:
        return {}
    d = np.sqrt(np.diag(cov))
    out = {}
    for i in range(len(PARAMETERS)):
        for j in range(i + 1, len(PARAMETERS)):
            out[f"{PARAMETERS[i]} ~ {PARAMETERS[j]}"] = float(cov[i, j] / (d[i] * d[j]))
    return out


def _latency(row: WaferRow, catalog: Catalog, parameters: dict[str, float]) -> float:
    return F.wafer_pipeline_latency(
        catalog.model(row.model).layers,
        replica_units(row, catalog),
        parameters["wafer_token_latency_s"],
        parameters["wafer_layer_latency_s"],
        parameters["wafer_hop_latency_s"],
    )


def speculative_speed(latency: float, acceptance: float, draft_tokens: int, draft_ratio: float) -> float:
    """Single-stream speed with speculation on a latency-bound wafer: tokens per step over the
    target step and the draft's own steps (the same composition as the kernels at R = 1)."""
    tokens = F.speculative_tokens_per_step(acceptance, draft_tokens)
    return tokens / (latency * (1.0 + draft_tokens * draft_ratio))


def implied_acceptance(row: WaferRow, catalog: Catalog, parameters: dict[str, float]) -> float:
    """The acceptance rate at which the fitted pipeline serves the row's published speed."""
    latency = _latency(row, catalog, parameters)

    def gap(a):
        return speculative_speed(latency, a, DRAFT_TOKENS, DRAFT_RATIO) - row.interactivity_tps

    if gap(0.99) < 0:
        return 0.99  # even near-certain acceptance falls short: the fit's pipeline is too slow for it
    if gap(0.0) > 0:
        return 0.0
    return float(brentq(gap, 0.0, 0.99))
