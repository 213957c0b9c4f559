"""Sweep specifications: YAML validated, then resolved once into a frozen :class:`ResolvedSpec`.

A spec names the models (catalog presets and/or synthetic sizes), the hardware, the axes
and the scalar parameters of a study. :func:`parse_spec` checks its shape and values;
:func:`resolve` turns it, with a catalog, into final axis vectors, model records,
assumptions and a fingerprint computed once. Every mistake is one line naming the field
and what is allowed (``UserError``); nothing is written for a bad spec.

Schema (see the README for a worked example)::

    name: phase                    # store defaults to outputs/<name>.zarr
    models: [gpt-oss-120b]         # catalog presets (optional)
    synthetic:                     # optional: a model-size axis
      reference: deepseek-v3
      params: {geomspace: [125B, 4T, 48]}
      layer_exponent: 0.3333       # optional, default 1/3
      width_exponent: 0.3333
    hardware: [wse3, h100-sxm]
    axes:
      isl: {geomspace: [16k, 10M, 64]}   # required
      osl: [256, 1024]                   # optional; default derived from the workload
      concurrency: [1, 8, 64, 250]
      weight_bits: [4, 8, 16]
      kv_bits: [8, 16]
      cache_read_speedup: [5, 10, 20]    # any numeric assumption may be an axis
    parameters: {workload: agentic-coding, price: on_demand, cache_read_speedup: 10}
    chunks: {isl: 16}
    variables: [units_needed, cost_per_mtok_usd]   # optional subset
    precision: float64             # or float32 (halves the store)
    max_points: 2e9                # size budget (refuse larger grids)
    reduce:                        # optional: write only the best configuration (see below)
      min: cost_per_mtok_output_usd
      over: [concurrency, weight_bits, kv_bits]
      where: {interactivity_tps: {ge: 50}}
      keep: [ttft_s]               # variables also read at the winner
      frontier: {speed: interactivity_tps, levels: [10, 30, 100, 300]}   # optional
    uncertain:                     # optional: Monte Carlo draws (engine.model.uncertain)
      draws: 256
      quantiles: [0.05, 0.5, 0.95] # optional: keep these over the draws, not every draw
      distributions: {wse3.capex_usd: {uniform: [1M, 3M]}, mfu_decode: {triangular: [0.25, 0.33, 0.45]}}

With ``reduce`` the sweep evaluates every point but writes, for every coordinate of the
dims not in ``over``, only the minimum of ``min`` where every ``where`` condition holds
(and the replica fits), the ``over`` coordinates that attain it and the ``where``/``keep``
variables there. The ``frontier`` form repeats that per speed level: the cheapest
configuration at least as fast as each level (a dim ``min_<speed>``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.axes import AXES, GRID_AXES, NUMERIC_PARAMETERS, PARAMETERS, expand
from engine.conditions import COMPARISONS
from engine.errors import UserError, describe_validation_error, did_you_mean, said_of
from engine.model.assumptions import Assumptions, parse_assumptions
from engine.model.catalog import DEFAULT_PROFILE, NAME_RULE, Catalog, load_catalog
from engine.model.records import Hardware, Model, Workload
from engine.model.synthetic import DEFAULT_EXPONENT, synthetic_model
from engine.model.uncertain import Draws, Uncertain
from engine.model.variables import BY_NAME, VARIABLES, Variable
from engine.units import format_count, parse_quantity
from engine.yamlio import read_yaml

DEFAULT_MAX_POINTS = 5e9
#: A reduction writes only its winners, so its default budget bounds compute, not storage.
DEFAULT_MAX_REDUCED_POINTS = 1e13
MAX_SYNTHETIC_SIZES = 10_000
DEFAULT_WORKLOAD = "agentic-coding"
#: Spec fields that do not change a single computed number: a resume ignores them.
NOT_FINGERPRINTED = ("output", "max_points", "description", "figures")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SyntheticSpec(_Strict):
    reference: str
    params: Any
    layer_exponent: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = DEFAULT_EXPONENT
    width_exponent: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = DEFAULT_EXPONENT


def _variable_name(name: str) -> str:
    if name not in BY_NAME:
        raise ValueError(f"unknown variable '{name}' ({did_you_mean(name, BY_NAME)})")
    if "token_type" in BY_NAME[name].dims:
        raise ValueError(f"{name} has one value per token type; pick a single-valued variable")
    return name


class FrontierSpec(_Strict):
    speed: str = "interactivity_tps"
    levels: Any

    @field_validator("speed")
    @classmethod
    def _speed(cls, value: str) -> str:
        return _variable_name(value)


class ReduceSpec(_Strict):
    """What a reduction keeps: the minimum of one variable over some dims, under conditions."""

    min: str
    over: list[str]
    where: dict[str, Any] = Field(default_factory=dict)
    keep: list[str] = Field(default_factory=list)
    frontier: FrontierSpec | None = None

    @field_validator("min")
    @classmethod
    def _min(cls, value: str) -> str:
        return _variable_name(value)

    @field_validator("over")
    @classmethod
    def _over(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("list at least one dim to reduce over")
        if len(set(value)) != len(value):
            raise ValueError("a dim is listed twice")
        return value

    @field_validator("keep")
    @classmethod
    def _keep(cls, value: list[str]) -> list[str]:
        return [_variable_name(v) for v in value]

    @field_validator("where")
    @classmethod
    def _where(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name, condition in value.items():
            _variable_name(name)
            if isinstance(condition, dict):
                if not condition:
                    raise ValueError(f"{name}: give a comparison ({', '.join(COMPARISONS)})")
                for op, bound in condition.items():
                    if op not in COMPARISONS:
                        raise ValueError(f"{name}: unknown comparison '{op}' (allowed: {', '.join(COMPARISONS)})")
                    try:
                        number = parse_quantity(bound, f"{name}.{op}") if not isinstance(bound, bool) else None
                    except UserError as err:
                        raise ValueError(str(err)) from None
                    if number is None or not math.isfinite(number):
                        raise ValueError(f"{name}.{op}: expected a finite number, got {bound!r}")
            elif not isinstance(condition, bool):
                raise ValueError(f"{name}: expected {{ge|gt|le|lt|eq: number}} or true/false, got {condition!r}")
        return value


class SweepSpec(_Strict):
    """A sweep as written: checked for shape here, resolved against a catalog by :func:`resolve`."""

    name: str
    models: list[str] = Field(default_factory=list)
    synthetic: SyntheticSpec | None = None
    hardware: list[str]
    axes: dict[str, Any]
    parameters: dict[str, Any] = Field(default_factory=dict)
    chunks: dict[str, int] = Field(default_factory=dict)
    variables: list[str] | None = None
    precision: Literal["float64", "float32"] = "float64"
    max_points: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    output: str | None = None
    description: str = ""
    figures: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list
    )  # checked against the figure registry
    reduce: ReduceSpec | None = None
    uncertain: Any = None  # checked by Uncertain.parse (engine.model.uncertain)

    @field_validator("max_points", mode="before")
    @classmethod
    def _max_points(cls, value):
        return parse_quantity(value, "max_points") if isinstance(value, str) else value

    @field_validator("output")
    @classmethod
    def _output(cls, value: str | None) -> str | None:
        # A spec may come from someone else: it may only name a store under the working
        # directory. The --output flag (the user's own choice) may point anywhere.
        if value is None:
            return value
        path = Path(value)
        if value.startswith("~") or path.is_absolute() or ".." in path.parts:
            raise ValueError("must be a relative path inside the working directory (use --output for elsewhere)")
        if path.suffix != ".zarr":
            raise ValueError("must end in .zarr (a Zarr v3 store directory)")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(NAME_RULE, value):
            raise ValueError("must be 1-100 letters, digits, '_', '-' or '.', starting with a letter or digit")
        return value

    @field_validator("hardware")
    @classmethod
    def _hardware(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("list at least one hardware entry")
        if len(set(value)) != len(value):
            raise ValueError("hardware is listed twice")
        return value

    @field_validator("models")
    @classmethod
    def _models(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a model is listed twice")
        return value

    @field_validator("chunks")
    @classmethod
    def _chunks(cls, value: dict[str, int]) -> dict[str, int]:
        for dim, size in value.items():
            if size < 1:
                raise ValueError(f"chunk size for '{dim}' must be >= 1, got {size}")
        return value

    @field_validator("variables")
    @classmethod
    def _variables(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value:
                raise ValueError("list at least one variable, or leave it out for all")
            for name in value:
                if name not in BY_NAME:
                    raise ValueError(f"unknown variable '{name}' ({did_you_mean(name, BY_NAME)})")
        return value

    @model_validator(mode="after")
    def _axes(self) -> SweepSpec:
        if not self.models and self.synthetic is None:
            raise ValueError("give 'models' (catalog presets), 'synthetic' (a model-size axis) or both")
        allowed = set(GRID_AXES) | set(PARAMETERS)
        for name in self.axes:
            if name not in allowed:
                raise ValueError(f"axes.{name}: unknown axis ({did_you_mean(name, allowed)})")
        if "isl" not in self.axes:
            raise ValueError("axes.isl: required (average input tokens per turn)")
        if self.reduce is not None and self.variables is not None:
            raise ValueError(
                "variables: a reduction writes its own variables (min, where, keep); leave 'variables' out"
            )
        known = [*PARAMETERS, "workload", "profile"]
        for name in self.parameters:
            if name not in known:
                raise ValueError(f"parameters.{name}: unknown parameter ({did_you_mean(name, known)})")
            if name in self.axes:
                raise ValueError(f"parameters.{name}: also given as an axis; keep one")
        return self

    # ------------------------------------------------------------------ values
    def axis_values(self) -> dict[str, np.ndarray]:
        """Every numeric axis expanded and checked: grid axes (defaults filled), then parameter axes."""
        out: dict[str, np.ndarray] = {}
        for name in GRID_AXES:
            if name in self.axes:
                out[name] = AXES[name].values(self.axes[name])
            elif AXES[name].default is not None:
                out[name] = np.asarray(AXES[name].default, dtype=AXES[name].dtype)
        for name in PARAMETERS:
            if name in self.axes:
                out[name] = AXES[name].values(self.axes[name])
        return out

    def synthetic_params(self) -> np.ndarray:
        assert self.synthetic is not None
        sizes = AXES["params"].values(self.synthetic.params, "synthetic.params")
        if len(sizes) > MAX_SYNTHETIC_SIZES:
            raise UserError(
                f"synthetic.params: {len(sizes):,} sizes; at most {MAX_SYNTHETIC_SIZES:,} (each is a model record)"
            )
        return sizes

    def uncertain_section(self) -> Uncertain | None:
        """The ``uncertain`` section parsed (None without one)."""
        return None if self.uncertain is None else Uncertain.parse(self.uncertain, "uncertain")

    def explicit_assumptions(self) -> dict[str, Any]:
        return {k: v for k, v in self.parameters.items() if k not in ("workload", "profile")}

    def assumptions(self) -> Assumptions:
        """The explicit parameters alone (checked without a catalog)."""
        return parse_assumptions(self.explicit_assumptions(), "parameters.")

    @property
    def point_budget(self) -> float:
        """``max_points``, or the default for a full cube or for a reduction."""
        if self.max_points is not None:
            return self.max_points
        return DEFAULT_MAX_REDUCED_POINTS if self.reduce is not None else DEFAULT_MAX_POINTS

    @property
    def workload_name(self) -> str:
        return str(self.parameters.get("workload", DEFAULT_WORKLOAD))

    @property
    def profile_name(self) -> str:
        return str(self.parameters.get("profile", DEFAULT_PROFILE))


def parse_spec(data: Any, label: str = "spec") -> SweepSpec:
    """A validated spec from parsed YAML (every value checked; names checked by :func:`resolve`)."""
    if not isinstance(data, dict):
        raise UserError(f"{label}: top level must be a mapping (name, hardware, axes, ...)")
    for key in data:
        if key not in SweepSpec.model_fields:
            raise UserError(f"{label}: {key}: unknown key ({did_you_mean(str(key), SweepSpec.model_fields)})")
    try:
        spec = SweepSpec(**data)
    except ValidationError as err:
        raise UserError(f"{label}: {describe_validation_error(err)}") from None
    except TypeError as err:
        raise UserError(f"{label}: {err}") from None
    try:
        spec.axis_values()
        if spec.synthetic is not None:
            spec.synthetic_params()
        spec.assumptions()
        uncertain = spec.uncertain_section()
        if uncertain is not None and spec.reduce is not None:
            raise UserError("uncertain: a reduction does not take draws yet; run the full cube (it keeps a draw "
                            "or quantile dim) and reduce it with tokensweep best")  # fmt: skip
        for name in NUMERIC_PARAMETERS:  # every value of a parameter axis must be a valid assumption
            if name in spec.axes:
                for v in spec.axis_values()[name]:
                    parse_assumptions({name: float(v)}, "axes.")
    except UserError as err:
        raise UserError(f"{label}: {err}") from None
    return spec


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep file (YAML through the safe loader only)."""
    path = Path(path)
    return parse_spec(read_yaml(path, str(path), "sweep YAML file"), str(path))


# ---------------------------------------------------------------------- resolution
@dataclass(frozen=True, eq=False)
class ResolvedSpec:
    """A sweep with every name resolved and every axis expanded: what plans are made from.

    ``axes`` holds every cube dim except ``token_type``, in cube order: the model dim
    (``model`` labels, or ``params`` when every model is synthetic), ISL, OSL (when an
    axis), concurrency, bits, hardware, then the assumptions made axes.
    """

    name: str
    description: str
    output: str | None
    models: tuple[Model, ...]  # catalog presets, then synthetic sizes
    model_dim: str
    hardware: tuple[Hardware, ...]
    workload: Workload
    profile: str  # the profile the assumptions start from
    assumptions: Assumptions  # base values; parameter axes override per block
    axes: dict[str, np.ndarray]
    parameter_dims: tuple[str, ...]
    requested_chunks: dict[str, int]
    variables: tuple[Variable, ...]
    precision: str
    max_points: float
    figures: tuple[str, ...]
    canonical: dict  # the spec with every axis expanded: recorded in the cube's attrs
    catalog_fingerprint: str
    fingerprint: str  # what must match to resume a store: the computed numbers' inputs
    derived_osl: np.ndarray | None  # OSL per ISL from the workload mix, when OSL is not an axis
    reduction: Reduction | None = None  # write only the best configurations (spec ``reduce``)
    uncertain: Uncertain | None = None  # distributions of assumptions and prices (spec ``uncertain``)
    draws: Draws | None = None  # their draws, sampled once

    @property
    def osl_is_axis(self) -> bool:
        return "osl" in self.axes

    @property
    def draw_dim(self) -> str | None:
        """``draw`` (every draw kept), ``quantile`` (quantiles over the draws) or None."""
        if self.uncertain is None:
            return None
        return "draw" if self.uncertain.quantiles is None else "quantile"

    @property
    def n_points(self) -> int:
        """Points evaluated: every grid point once per draw (the quantile dim stands for the draws)."""
        return math.prod(self.draws.n if d == "quantile" else len(v) for d, v in self.axes.items())


@dataclass(frozen=True)
class Reduction:
    """A resolved ``reduce`` section: names checked against the sweep's dims."""

    cost: str
    over: tuple[str, ...]
    where: tuple[tuple[str, str, float], ...]  # (variable, comparison, bound); booleans as eq 1/0
    keep: tuple[str, ...]
    speed: str | None = None  # the frontier form: cheapest at or above each speed level
    levels: tuple[float, ...] = ()

    @property
    def level_dim(self) -> str | None:
        return f"min_{self.speed}" if self.speed else None

    @property
    def carried(self) -> tuple[str, ...]:
        """Variables read at the winner besides the minimum: speed, where, keep (in that order)."""
        names = [self.speed] if self.speed else []
        names += [name for name, _, _ in self.where] + list(self.keep)
        return tuple(dict.fromkeys(n for n in names if n != self.cost))


def _reduction(section: ReduceSpec, axes: dict[str, np.ndarray]) -> Reduction:
    for dim in section.over:
        if dim not in axes:
            raise UserError(f"reduce.over: '{dim}' is not a dim of this sweep ({did_you_mean(dim, axes)})")
    where = []
    for name, condition in section.where.items():
        if isinstance(condition, dict):
            where += [(name, op, parse_quantity(bound, f"reduce.where.{name}.{op}")) for op, bound in condition.items()]
        else:
            where.append((name, "eq", float(condition)))
    speed, levels = None, ()
    if section.frontier is not None:
        speed = section.frontier.speed
        values = expand(section.frontier.levels, "reduce.frontier.levels")
        if any(b <= a for a, b in itertools.pairwise(values)) or not all(math.isfinite(v) for v in values):
            raise UserError("reduce.frontier.levels: levels must be finite and strictly increasing")
        if len(values) > 10_000:
            raise UserError(f"reduce.frontier.levels: {len(values):,} levels; at most 10,000")
        levels = tuple(values)
    return Reduction(section.min, tuple(section.over), tuple(where), tuple(section.keep), speed, levels)


def _fingerprint(canonical: dict, catalog_fingerprint: str) -> str:
    payload = {k: v for k, v in canonical.items() if k not in NOT_FINGERPRINTED}
    from engine.model.identity import engine_fingerprint

    # The engine's code and compile options too: another engine's numbers never mix into a cube.
    blob = json.dumps({"spec": payload, "catalog": catalog_fingerprint, "engine": engine_fingerprint()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _named(field: str, find, name: str):
    """A catalog entry looked up for the spec's ``field``: a miss is said of that field."""
    try:
        return find(name)
    except UserError as err:
        raise said_of(field, err) from None


def resolve(spec: SweepSpec, catalog: Catalog | None = None) -> ResolvedSpec:
    """Resolve names against the catalog, expand the axes and check the size budget."""
    catalog = catalog or load_catalog()
    values = spec.axis_values()
    presets = [_named("models", catalog.model, name) for name in spec.models]
    synthetic: list[Model] = []
    sizes = spec.synthetic_params() if spec.synthetic is not None else np.empty(0)
    # The budget first, from the axes' lengths: nothing large is built for a grid that is refused.
    uncertain = spec.uncertain_section()
    n_draws = uncertain.draws if uncertain is not None else 1
    n_points = (len(presets) + len(sizes)) * len(spec.hardware) * math.prod(len(v) for v in values.values()) * n_draws
    if n_points > spec.point_budget:
        raise UserError(
            f"max_points: the grid has {n_points:,} points, above the budget of {spec.point_budget:,.0f} "
            "(raise max_points in the spec or --max-points, or shrink an axis)"
        )
    if spec.synthetic is not None:
        reference = _named("synthetic.reference", catalog.model, spec.synthetic.reference)
        synthetic = [
            synthetic_model(reference, float(p), spec.synthetic.layer_exponent, spec.synthetic.width_exponent)
            for p in sizes
        ]
    if presets:
        model_dim = "model"
        labels = np.asarray(
            [m.name for m in presets] + [f"{m.name.split('@')[0]}@{format_count(m.total_params)}" for m in synthetic],
            dtype=object,
        )
        if len(set(labels)) != len(labels):
            raise UserError("synthetic.params: sizes too close to label apart (4 significant digits); use fewer points")
    else:
        model_dim = "params"
        labels = sizes
    hardware = tuple(_named("hardware", catalog.get_hardware, name) for name in spec.hardware)
    workload = _named("parameters.workload", catalog.workload, spec.workload_name)
    axes: dict[str, np.ndarray] = {model_dim: labels}
    for name in GRID_AXES:
        if name in values:
            axes[name] = values[name]
    axes["hardware"] = np.asarray(spec.hardware, dtype=object)
    parameter_dims = tuple(p for p in PARAMETERS if p in values)
    for p in parameter_dims:
        axes[p] = values[p]
    _named("parameters.profile", catalog.profile, spec.profile_name)
    assumptions = catalog.assumptions(spec.profile_name, spec.explicit_assumptions(), "parameters.")
    for name in axes.get("prefill_hardware", ()):
        catalog.check_pool_unit(str(name), "axes.prefill_hardware")
    draws = None
    if uncertain is not None:
        for price in axes.get("price", [assumptions.price]):  # every scenario the sweep evaluates
            uncertain.check_against(hardware, str(price), list(axes), "uncertain")
        for name in uncertain.names:
            if name in spec.explicit_assumptions():
                raise UserError(f"uncertain.distributions.{name}: also given in parameters; keep one")
        draws = uncertain.sample()
        if uncertain.quantiles is None:
            axes["draw"] = np.arange(uncertain.draws, dtype=np.int64)
        else:
            axes["quantile"] = np.asarray(uncertain.quantiles, dtype=np.float64)
    for dim in spec.chunks:
        if dim not in axes:
            raise UserError(f"chunks.{dim}: not a dim of this sweep ({did_you_mean(dim, axes)})")
        if dim in ("draw", "quantile"):
            raise UserError(f"chunks.{dim}: the draws of a block are evaluated together; leave it out")
    canonical = spec.model_dump(mode="json")
    from engine.escape import redact

    for field in ("output", "description"):  # recorded in the cube's attrs: no credentials in them
        if canonical.get(field):
            canonical[field] = redact(canonical[field])
    canonical["profile"] = catalog.profile(spec.profile_name).model_dump(mode="json")  # its values pin the numbers
    canonical["axes"] = {k: v.tolist() for k, v in values.items()}
    if uncertain is not None:
        canonical["uncertain"] = uncertain.canonical()
    else:
        del canonical["uncertain"]  # absent, as before the section existed
    if spec.synthetic is not None:
        canonical["synthetic"]["params"] = sizes.tolist()
    reduction = _reduction(spec.reduce, axes) if spec.reduce is not None else None
    if reduction is not None:
        variables = tuple(BY_NAME[n] for n in (reduction.cost, *reduction.carried))
    else:
        variables = tuple(BY_NAME[n] for n in spec.variables) if spec.variables else VARIABLES
    return ResolvedSpec(
        name=spec.name,
        description=spec.description,
        output=spec.output,
        models=tuple(presets + synthetic),
        model_dim=model_dim,
        hardware=hardware,
        workload=workload,
        profile=spec.profile_name,
        assumptions=assumptions,
        axes=axes,
        parameter_dims=parameter_dims,
        requested_chunks=dict(spec.chunks),
        variables=variables,
        precision=spec.precision,
        max_points=spec.point_budget,
        figures=tuple(spec.figures),
        canonical=canonical,
        catalog_fingerprint=catalog.fingerprint,
        fingerprint=_fingerprint(canonical, catalog.fingerprint),
        derived_osl=None
        if "osl" in axes
        else np.array([workload.output_length(v) for v in axes["isl"]], dtype=np.int64),
        reduction=reduction,
        uncertain=uncertain,
        draws=draws,
    )
