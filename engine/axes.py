"""The axis registry: every dimension a sweep, a point or a cube can have, declared once.

An :class:`Axis` carries its units, meaning, bounds, whether it is whole-numbered, its
default, its dtype and how people type it (``96.3k``, ``1M``, ``120B``). Spec validation,
the ``tokensweep point`` flags, ``--set``, cube coordinates, kernel array shapes and the
assumptions record (:mod:`engine.model.assumptions`) are all derived from :data:`AXES`.

Roles:

- ``grid``: a numeric axis the kernels loop over (ISL, OSL, concurrency, bits);
- ``label``: a categorical dim (model, hardware, token type) or the synthetic size axis;
- ``parameter``: a scalar assumption of the cost model; any numeric one may be made a
  sweep axis, which the engine evaluates as one value per block (no kernel change);
- ``choice``: a categorical assumption with named codes (price scenario, cache tier).

Adding a numeric assumption axis is one entry here plus its formula in the reference and
the kernels; everything else (validation, flags, coordinates, attrs, docs check) follows.

>>> AXES["isl"].parse("96.3k")
96300.0
>>> AXES["concurrency"].units
'requests'
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from engine.errors import UserError
from engine.units import cf_attrs, parse_quantity

Role = Literal["grid", "label", "parameter", "choice"]


@dataclass(frozen=True)
class Axis:
    """One dimension or assumption: the single source of its units, bounds and default."""

    name: str
    role: Role
    units: str
    long_name: str
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False  # True: values must be strictly above ``low``
    integer: bool = False
    default: Any = None  # parameters: the value; grid axes: the values when a sweep omits the axis
    point_default: Any = None  # the `tokensweep point` default where it differs from `default`
    dtype: str = "float64"
    choices: tuple[str, ...] = ()  # choice parameters: allowed names, in code order
    split: int = 99  # default chunking splits axes in this order (lowest first)
    deployment: bool = False  # a choice of how to serve (what `best` chooses), not a given of the question
    note: str = ""  # the source or reasoning behind a default (docs/model.md)

    # ------------------------------------------------------------------ reading values
    def bounds_text(self) -> str:
        low = "" if self.low == -math.inf else f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.high == math.inf:
            return low or "any number"
        if not self.low_open and self.low != -math.inf:
            return f"{self.low:g} to {self.high:g}"
        return f"{low} and <= {self.high:g}" if low else f"<= {self.high:g}"

    def check(self, value: float, field: str) -> float:
        """``value`` if within bounds (and whole where required), else a one-line UserError."""
        below = value <= self.low if self.low_open else value < self.low
        if below or value > self.high:
            raise UserError(f"{field}: {value:g} is out of range (allowed: {self.bounds_text()})")
        if self.integer and value != int(value):
            raise UserError(f"{field}: {value:g} must be a whole number")
        return value

    def parse(self, text: str | float | int, field: str | None = None) -> float:
        """A human quantity (``96.3k``, ``1M``) checked against the axis bounds."""
        field = field or self.name
        return self.check(parse_quantity(text, field), field)

    def values(self, raw: Any, field: str | None = None) -> np.ndarray:
        """A sweep's axis: a list of values or ``{geomspace|linspace: [start, stop, n]}``, checked.

        Values must be strictly increasing. Whole-numbered axes accept a geomspace and round
        it to whole numbers (duplicates after rounding are refused).
        """
        field = field or f"axes.{self.name}"
        if self.role == "choice":
            names = raw if isinstance(raw, list) else [raw]
            if not names or any(not isinstance(v, str) or v not in self.choices for v in names):
                raise UserError(f"{field}: expected a list of names from {', '.join(self.choices)}, got {raw!r}")
            if len(set(names)) != len(names):
                raise UserError(f"{field}: a value is listed twice")
            return np.asarray(names, dtype=object)
        values = expand(raw, field, whole=self.integer)
        for v in values:
            self.check(v, field)
        if any(b <= a for a, b in itertools.pairwise(values)):
            raise UserError(f"{field}: values must be strictly increasing (sorted, no repeats), got {_show(values)}")
        return np.asarray(values, dtype=self.dtype)

    @property
    def attrs(self) -> dict[str, str]:
        """CF-style attributes of the coordinate."""
        return cf_attrs(self.units, self.long_name)


#: Values one axis may hold (a geomspace count is checked before the axis is built).
MAX_AXIS_VALUES = 1_000_000


def expand(raw: Any, field: str, whole: bool = False) -> list[float]:
    """Values of an axis as given in a spec: a list, one value, or a geomspace/linspace form."""
    if isinstance(raw, dict):
        if len(raw) != 1 or next(iter(raw)) not in ("geomspace", "linspace"):
            raise UserError(
                f"{field}: expected a list of values or one of {{geomspace: [start, stop, n]}}, {{linspace: [start, stop, n]}}"
            )
        ((kind, args),) = raw.items()
        if not isinstance(args, list) or len(args) != 3:
            raise UserError(f"{field}.{kind}: expected [start, stop, number of points]")
        start, stop = parse_quantity(args[0], f"{field}.{kind}[0]"), parse_quantity(args[1], f"{field}.{kind}[1]")
        num = parse_quantity(args[2], f"{field}.{kind}[2]")
        if num != int(num) or num < 1:
            raise UserError(f"{field}.{kind}[2]: number of points must be a whole number >= 1, got {args[2]!r}")
        if num > MAX_AXIS_VALUES:  # checked before anything is allocated
            raise UserError(f"{field}.{kind}[2]: {num:,.0f} points; an axis holds at most {MAX_AXIS_VALUES:,}")
        if kind == "geomspace" and (start <= 0 or stop <= 0):
            raise UserError(f"{field}.geomspace: start and stop must be > 0")
        if not stop > start and num > 1:
            raise UserError(f"{field}.{kind}: stop must be greater than start (axes are increasing)")
        values = (np.geomspace if kind == "geomspace" else np.linspace)(start, stop, int(num))
        if whole:
            values = np.round(values)
            repeated = values[1:][np.diff(values) == 0]
            if repeated.size:
                raise UserError(
                    f"{field}.{kind}: {int(num):,} points from {start:g} to {stop:g} round to repeated whole numbers "
                    f"({repeated[0]:g} and {repeated.size - 1:,} more); use fewer points or a wider range"
                )
        return [float(v) for v in values]
    if isinstance(raw, (int, float, str)) and not isinstance(raw, bool):
        raw = [raw]
    if not isinstance(raw, list):
        raise UserError(f"{field}: expected a list of values, got {type(raw).__name__}")
    if not raw:
        raise UserError(f"{field}: axis is empty (give at least one value)")
    if len(raw) > MAX_AXIS_VALUES:
        raise UserError(f"{field}: {len(raw):,} values; an axis holds at most {MAX_AXIS_VALUES:,}")
    return [parse_quantity(v, f"{field}[{i}]") for i, v in enumerate(raw)]


def _show(values: list[float]) -> str:
    text = ", ".join(f"{v:g}" for v in values[:6])
    return f"[{text}{', ...' if len(values) > 6 else ''}]"


# ---------------------------------------------------------------------- the registry
_FRACTION = {"low": 0.001, "high": 1.0, "units": "1"}  # an efficiency below 0.1 % is a typo, and overflows costs

#: Units a disaggregated prefill pool may use: the decode replica's own, or a shipped catalog
#: entry (tests/model/test_registry.py checks these are the catalog's).
PREFILL_HARDWARE = ("same", "wse3", "h100-sxm", "h200-sxm", "b200", "gb200", "b300", "mi300x", "mi355x", "groq-lpu")

# fmt: off
AXES: dict[str, Axis] = {
    a.name: a
    for a in (
        # ---------------------------------------------------------------- dims
        Axis("model", "label", "", "model (catalog preset or synthetic size)", dtype="object", split=3),
        Axis("params", "label", "params", "total parameters of the synthetic model", low=1e6, high=1e15, split=3),
        Axis("isl", "grid", "tokens", "average input tokens per turn (cache read + cache write + fresh input)",
             low=1, high=1e9, point_default=96.3e3, integer=True, dtype="int64", split=0),
        Axis("osl", "grid", "tokens", "average output tokens per turn", low=1, high=1e9, integer=True, dtype="int64",
             split=1),
        Axis("concurrency", "grid", "requests", "concurrent requests held by one replica",
             low=1, high=1e7, integer=True, default=(1,), dtype="int64", split=2, deployment=True),
        Axis("weight_bits", "grid", "bits", "weight bits per parameter", low=1, high=32, default=(16.0,), split=6,
             deployment=True),
        Axis("kv_bits", "grid", "bits", "KV-cache bits per element", low=1, high=32, default=(16.0,), split=5,
             deployment=True),
        Axis("hardware", "label", "", "hardware unit (catalog entry)", dtype="object", split=4),
        Axis("token_type", "label", "", "token type of the workload mix", dtype="object"),
        Axis("draw", "label", "", "Monte Carlo draw of the uncertain assumptions and prices (uncertain: in the spec)",
             dtype="int64"),
        Axis("quantile", "label", "1", "quantile over the draws of the uncertain assumptions and prices"),
        # ---------------------------------------------------------------- numeric assumptions
        Axis("cache_read_speedup", "parameter", "1",
             "non-output token rate as a multiple of the decode rate (prefill_model: calculator); plausible 5-20",
             low=1, high=1e4, default=10.0, note="WSE-3 calculator: cache reads 5-20x faster than decode"),
        Axis("memory_bw_efficiency", "parameter", long_name="achieved fraction of peak memory bandwidth",
             default=0.8, note="NVIDIA's configurator uses 0.8 for all its GPUs", **_FRACTION),
        Axis("mfu_decode", "parameter", long_name="model FLOPs utilisation while decoding", default=0.5,
             note="project default", **_FRACTION),
        Axis("mfu_prefill", "parameter", long_name="model FLOPs utilisation while prefilling", default=0.6,
             note="project default", **_FRACTION),
        Axis("step_overhead_s", "parameter", "s", "fixed time of every forward step (scheduling, launch, sampling)",
             low=0, high=10, default=0.0, note="serving profile; 0 in the roofline"),
        Axis("layer_overhead_s", "parameter", "s", "fixed time per layer of every forward step (kernel launch floor)",
             low=0, high=0.1, default=0.0, note="serving profile; 0 in the roofline"),
        Axis("dequant_flops_per_weight", "parameter", "FLOP",
             "work per weight element streamed when the unit has no native path for the weight format (e.g. FP4 on Hopper), at the BF16 peak",
             low=0, high=1e4, default=0.0, note="serving profile; 0 in the roofline"),
        Axis("ttft_overhead_s", "parameter", "s", "fixed time to first token off the accelerator (tokenise, schedule, respond)",
             low=0, high=100, default=0.0, note="serving profile; 0 in the roofline"),
        Axis("prefill_burstiness", "parameter", "1",
             "share of half the other requests' prefills a new request waits for before its own (1: arrivals in lockstep, 0: spread out)",
             low=0, high=1, default=0.0, note="serving profile (fitted to measured TTFT under load); 0 in the roofline"),
        Axis("ttft_scheduler_factor", "parameter", "1",
             "times the modelled time to first token a serving framework's scheduler holds a new request (1: the modelled queue; the extra wait lengthens the turn too)",
             low=1, high=20, default=1.0,
             note="serving profile (fitted per framework where the data supports it); 1 in the roofline"),
        Axis("prefill_chunk_tokens", "parameter", "tokens",
             "token budget of one forward step for prompt tokens (chunked prefill): a longer prefill runs in ceil(tokens / budget) passes, each streaming the weights again",
             low=1, high=1e9, default=8192.0,
             note="TensorRT-LLM max_num_tokens and SGLang chunked_prefill_size: 8,192 by default (vLLM: by version and GPU)"),
        Axis("allreduce_latency_s", "parameter", "s", "latency of one collective (all-reduce, all-to-all)",
             low=0, high=1, default=8e-6, note="project default"),
        Axis("scaleout_bw_gbs", "parameter", "GB/s",
             "per-unit scale-out network bandwidth used past the scale-up domain (400 Gb/s NIC)",
             low=0.001, high=1e6, default=50.0, note="one 400 Gb/s InfiniBand/Ethernet NIC per GPU"),
        Axis("host_cache_bw_gbs", "parameter", "GB/s", "per-unit bandwidth of the host-memory prefix-cache tier (PCIe 5)",
             low=0.001, high=1e6, default=50.0, note="PCIe 5 x16 host-memory tier"),
        Axis("usable_memory_fraction", "parameter", "1",
             "usable fraction of unit memory; 0 = catalog default (wafer 1.0, GPU 0.9)",
             low=0, high=1, default=0.0, note="catalog: WSE-3 1.0 (SRAM), GPUs 0.90 (runtime, fragmentation)"),
        Axis("amortisation_years", "parameter", "year", "capex amortisation period in TCO mode",
             low=0.01, high=100, default=4.0, note="TCO mode"),
        Axis("pue", "parameter", "1", "data-centre power usage effectiveness in TCO mode",
             low=1, high=10, default=1.3, note="TCO mode"),
        Axis("usd_per_kwh", "parameter", "USD/kWh", "electricity price in TCO mode",
             low=0, high=100, default=0.10, note="TCO mode"),
        Axis("interactivity_fit_coefficient", "parameter", "tok/s",
             "WSE-3 interactivity fit: coefficient of 3322 / A_B^0.294",
             low=0.001, high=1e9, default=3322.0, note="WSE-3 calculator fit"),
        Axis("interactivity_fit_exponent", "parameter", "1", "WSE-3 interactivity fit: exponent of 3322 / A_B^0.294",
             low=0, high=10, default=0.294, note="WSE-3 calculator fit"),
        Axis("replica_units", "parameter", "count",
             "units in one serving instance (tensor/expert-parallel group, or wafers chained); 0 = the fewest that fit",
             low=0, high=1e6, integer=True, default=0.0, note="deployment choice", deployment=True),
        Axis("wafer_token_latency_s", "parameter", "s",
             "wafer pipeline: fixed latency of every token through the pipeline (I/O, sampling, host round trip)",
             low=0, high=1, default=0.0, note="fitted to the published WSE-3 single-stream speeds (tokensweep calibrate --wafer): fixed at 0 by cross-validation"),
        Axis("wafer_layer_latency_s", "parameter", "s", "wafer pipeline: latency of one token through one layer",
             low=0, high=0.1, default=1.2034e-5, note="fitted to the published WSE-3 single-stream speeds (tokensweep calibrate --wafer)"),
        Axis("wafer_hop_latency_s", "parameter", "s", "wafer pipeline: latency of one wafer-to-wafer hop",
             low=0, high=0.1, default=0.0, note="fitted to the published WSE-3 single-stream speeds (tokensweep calibrate --wafer): fixed at 0 by cross-validation"),
        Axis("prefill_units", "parameter", "count",
             "serving: disaggregated: units in one prefill replica; 0 = the fewest that hold the weights and one prompt's KV",
             low=0, high=1e6, integer=True, default=0.0, note="deployment choice", deployment=True),
        Axis("prefill_replicas", "parameter", "1",
             "serving: disaggregated: prefill replicas per decode replica (the pool ratio); 0 = balanced, exactly as many as keep the decode replica fed",
             low=0, high=1e6, default=0.0, note="deployment choice; 0 sizes the pool to the load", deployment=True),
        Axis("spec_draft_tokens", "parameter", "tokens",
             "speculative decoding: tokens drafted per target step (draft model or MTP heads); 0 = off",
             low=0, high=32, integer=True, default=0.0, note="deployment choice; off by default", deployment=True),
        Axis("spec_acceptance", "parameter", "1", "speculative decoding: probability that each drafted token is accepted",
             low=0, high=0.99, default=0.7, note="typical EAGLE/MTP acceptance on chat and code"),
        Axis("spec_draft_ratio", "parameter", "1",
             "speculative decoding: draft size as a fraction of the target's active parameters (time, FLOPs and memory of the draft)",
             low=0.001, high=1, default=0.1, note="an 8B draft for a 70B target is about 0.11; MTP heads about 1/layers"),
        # ---------------------------------------------------------------- categorical assumptions
        Axis("price", "choice", "", "hourly-rate scenario: on_demand, spot (rental rates) or tco (derived)",
             default="on_demand", choices=("on_demand", "spot", "tco"), note="rental scenario or `tco`"),
        Axis("cache_tier", "choice", "", "where cache-read KV is loaded from: hbm (resident prefix) or host (PCIe tier)",
             default="hbm", choices=("hbm", "host"), note="where a cached prefix is held"),
        Axis("parallelism", "choice", "",
             "how a multi-unit replica splits the model: tp (all tensor parallel), tp-ep (attention TP, experts EP), dp-ep (attention data parallel, experts EP)",
             default="tp", choices=("tp", "tp-ep", "dp-ep"), note="deployment choice", deployment=True),
        Axis("context_limit", "choice", "",
             "model: turns longer than the model's max_context get NaN figures; none: extrapolate past it (what the published calculator plots at 1M tokens)",
             default="model", choices=("model", "none"), note="none for what-if studies of longer contexts"),
        Axis("prefill_model", "choice", "",
             "physics: prefill by compute, cached prefixes loaded from their tier; calculator: every non-output token at cache_read_speedup x decode (the published calculator)",
             default="physics", choices=("physics", "calculator"), note="calculator reproduces the published WSE-3 calculator"),
        Axis("speculative", "choice", "",
             "speculative decoding where spec_draft_tokens is 0: catalog (as the catalog says each model is served on each hardware; off elsewhere) or off; spec_draft_tokens > 0 turns it on everywhere",
             default="catalog", choices=("catalog", "off"), note="the catalog lists how Cerebras serves Llama-3.1-70B"),
        Axis("serving", "choice", "",
             "colocated: prefill and decode share each replica's units; disaggregated: prompts are prefilled on a pool of their own (prefill_hardware, prefill_units, prefill_replicas) and their KV sent to the decode replica",
             default="colocated", choices=("colocated", "disaggregated"), note="deployment choice", deployment=True),
        Axis("prefill_hardware", "choice", "",
             "serving: disaggregated: the prefill pool's unit (a shipped catalog entry), or same as the decode replica's",
             default="same", choices=PREFILL_HARDWARE, note="deployment choice (prefill on GPUs, decode on the WSE-3: the mixed fleet)",
             deployment=True),
        Axis("wafer_batching", "choice", "",
             "how a wafer replica serves R requests: physics (pipeline latency, then compute, SRAM and links shared by all R), single_stream (a fixed per-replica rate, the comparison article), calculator (R x the published speed, the tokenomics calculator)",
             default="physics", choices=("physics", "single_stream", "calculator"),
             note="physics; the published alternatives as named modes"),
    )
}
# fmt: on

#: Numeric axes the kernels loop over, in kernel order (OSL pairs with ISL as one context).
GRID_AXES = tuple(n for n, a in AXES.items() if a.role == "grid")
#: Numeric assumptions, in the order of the kernels' parameter vector.
NUMERIC_PARAMETERS = tuple(n for n, a in AXES.items() if a.role == "parameter")
#: Categorical assumptions, coded by their index in ``choices``.
CHOICE_PARAMETERS = tuple(n for n, a in AXES.items() if a.role == "choice")
#: Every assumption of the cost model.
PARAMETERS = NUMERIC_PARAMETERS + CHOICE_PARAMETERS
#: Dims that are choices of how to serve (what a decision picks), not givens of the question.
DEPLOYMENT_DIMS = tuple(n for n, a in AXES.items() if a.deployment)


def axis(name: str) -> Axis:
    return AXES[name]
