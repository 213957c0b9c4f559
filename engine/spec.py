"""Sweep specifications (YAML), validated before anything runs.

A spec names the models (catalog presets and/or synthetic sizes), the hardware, the axes
and the scalar parameters of a study. Validation turns every mistake into one line naming
the field and what is allowed (``UserError``); nothing is written for a bad spec.

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
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.assumptions import NUMERIC, Assumptions
from engine.errors import UserError, did_you_mean
from engine.units import parse_quantity
from engine.yamlio import read_yaml
from engine.variables import BY_NAME

CORE_AXES = ("isl", "osl", "concurrency", "weight_bits", "kv_bits")
AXIS_BOUNDS = {  # (minimum, maximum, integer)
    "isl": (1.0, 1e9, False),
    "osl": (1.0, 1e9, False),
    "concurrency": (1.0, 1e7, True),
    "weight_bits": (1.0, 32.0, False),
    "kv_bits": (1.0, 32.0, False),
    "params": (1e6, 1e15, False),
}
AXIS_DEFAULTS = {"concurrency": [1.0], "weight_bits": [16.0], "kv_bits": [16.0]}
DEFAULT_MAX_POINTS = 5e9


def describe_validation_error(err: ValidationError, prefix: str = "") -> str:
    """One line: the field's dotted path and what is allowed."""
    errors = err.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = ".".join(str(p) for p in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key (a typo?)"
    return f"{prefix}{loc}: {msg}" if loc else f"{prefix}{msg}"


def expand_axis(raw: Any, field: str) -> list[float]:
    """A list of values (numbers or ``96.3k``-style strings), or ``{geomspace|linspace: [a, b, n]}``."""
    if isinstance(raw, dict):
        if len(raw) != 1 or next(iter(raw)) not in ("geomspace", "linspace"):
            raise UserError(f"{field}: expected a list of values or one of {{geomspace: [start, stop, n]}}, {{linspace: [start, stop, n]}}")
        (kind, args), = raw.items()
        if not isinstance(args, list) or len(args) != 3:
            raise UserError(f"{field}.{kind}: expected [start, stop, number of points]")
        start, stop = parse_quantity(args[0], f"{field}.{kind}[0]"), parse_quantity(args[1], f"{field}.{kind}[1]")
        num = parse_quantity(args[2], f"{field}.{kind}[2]")
        if num != int(num) or num < 1:
            raise UserError(f"{field}.{kind}[2]: number of points must be a whole number >= 1, got {args[2]!r}")
        if kind == "geomspace" and (start <= 0 or stop <= 0):
            raise UserError(f"{field}.geomspace: start and stop must be > 0")
        if not stop > start and num > 1:
            raise UserError(f"{field}.{kind}: stop must be greater than start (axes are increasing)")
        values = (np.geomspace if kind == "geomspace" else np.linspace)(start, stop, int(num))
        return [float(v) for v in values]
    if isinstance(raw, (int, float, str)) and not isinstance(raw, bool):
        raw = [raw]
    if not isinstance(raw, list):
        raise UserError(f"{field}: expected a list of values, got {type(raw).__name__}")
    if not raw:
        raise UserError(f"{field}: axis is empty (give at least one value)")
    return [parse_quantity(v, f"{field}[{i}]") for i, v in enumerate(raw)]


def check_axis(values: list[float], field: str, bounds: tuple[float, float, bool] | None) -> list[float]:
    if any(b <= a for a, b in zip(values, values[1:])):
        raise UserError(f"{field}: values must be strictly increasing (sorted, no repeats), got {_show(values)}")
    if bounds is not None:
        lo, hi, integer = bounds
        for v in values:
            if not lo <= v <= hi:
                raise UserError(f"{field}: {v:g} is out of range (allowed: {lo:g} to {hi:g})")
            if integer and v != int(v):
                raise UserError(f"{field}: {v:g} must be a whole number")
    return values


def _show(values: list[float]) -> str:
    text = ", ".join(f"{v:g}" for v in values[:6])
    return f"[{text}{', ...' if len(values) > 6 else ''}]"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SyntheticSpec(_Strict):
    reference: str
    params: Any
    layer_exponent: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 1.0 / 3.0
    width_exponent: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 1.0 / 3.0


class SweepSpec(_Strict):
    """A validated sweep: axes expanded to sorted float lists, names checked later against the catalog."""

    name: str
    models: list[str] = Field(default_factory=list)
    synthetic: SyntheticSpec | None = None
    hardware: list[str]
    axes: dict[str, Any]
    parameters: dict[str, Any] = Field(default_factory=dict)
    chunks: dict[str, int] = Field(default_factory=dict)
    variables: list[str] | None = None
    precision: Literal["float64", "float32"] = "float64"
    max_points: Annotated[float, Field(gt=0, allow_inf_nan=False)] = DEFAULT_MAX_POINTS
    output: str | None = None
    description: str = ""
    figures: list[Literal["phase", "cost", "memory"]] = Field(default_factory=list)

    @field_validator("output")
    @classmethod
    def _output(cls, value: str | None) -> str | None:
        # A spec may come from someone else: it may only name a store under the working
        # directory. The --output flag (the user's own choice) may point anywhere.
        if value is None:
            return value
        path = Path(value)
        if path.is_absolute() or ".." in path.parts:
            raise ValueError("must be a relative path inside the working directory (use --output for elsewhere)")
        if path.suffix != ".zarr":
            raise ValueError("must end in .zarr (a Zarr v3 store directory)")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", value):
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
        allowed = set(CORE_AXES) | set(NUMERIC)
        for name in self.axes:
            if name not in allowed:
                raise ValueError(f"axes.{name}: unknown axis ({did_you_mean(name, allowed)})")
        if "isl" not in self.axes:
            raise ValueError("axes.isl: required (average input tokens per turn)")
        for name in self.parameters:
            if name not in set(Assumptions.model_fields) | {"workload"}:
                raise ValueError(
                    f"parameters.{name}: unknown parameter ({did_you_mean(name, [*Assumptions.model_fields, 'workload'])})"
                )
            if name in self.axes:
                raise ValueError(f"parameters.{name}: also given as an axis; keep one")
        return self

    # ------------------------------------------------------------------ resolved values
    def axis_values(self) -> dict[str, list[float]]:
        """Every axis expanded, checked and in canonical order (core axes, then parameters)."""
        out: dict[str, list[float]] = {}
        for name in CORE_AXES:
            if name in self.axes:
                out[name] = check_axis(expand_axis(self.axes[name], f"axes.{name}"), f"axes.{name}", AXIS_BOUNDS[name])
            elif name in AXIS_DEFAULTS:
                out[name] = list(AXIS_DEFAULTS[name])
        for name in NUMERIC:
            if name in self.axes:
                values = check_axis(expand_axis(self.axes[name], f"axes.{name}"), f"axes.{name}", None)
                for v in values:
                    try:
                        Assumptions(**{name: v})
                    except ValidationError as err:
                        raise UserError(describe_validation_error(err, prefix="axes.").replace(f"axes.{name}", f"axes.{name} value {v:g}")) from None
                out[name] = values
        return out

    def synthetic_params(self) -> list[float]:
        assert self.synthetic is not None
        values = expand_axis(self.synthetic.params, "synthetic.params")
        return check_axis(values, "synthetic.params", AXIS_BOUNDS["params"])

    def assumptions(self) -> Assumptions:
        values = {k: v for k, v in self.parameters.items() if k != "workload"}
        for key, value in values.items():
            if key not in ("price", "cache_tier") and value is not None:
                values[key] = parse_quantity(value, f"parameters.{key}")
        try:
            return Assumptions(**values)
        except ValidationError as err:
            raise UserError(describe_validation_error(err, prefix="parameters.")) from None

    @property
    def workload_name(self) -> str:
        return str(self.parameters.get("workload", "agentic-coding"))

    def canonical(self) -> dict:
        """The spec with every axis expanded: what the fingerprint and the cube attrs record."""
        data = self.model_dump(mode="json")
        data["axes"] = self.axis_values()
        if self.synthetic is not None:
            data["synthetic"]["params"] = self.synthetic_params()
        return data

    def fingerprint(self, extra: dict | None = None) -> str:
        """Content hash of the resolved spec (and whatever else must match to resume)."""
        payload = {"spec": self.canonical(), **(extra or {})}
        payload["spec"].pop("output", None)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def parse_spec(data: Any, label: str = "spec") -> SweepSpec:
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
    except UserError as err:
        raise UserError(f"{label}: {err}") from None
    return spec


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep file (YAML through the safe loader only)."""
    path = Path(path)
    return parse_spec(read_yaml(path, str(path), "sweep YAML file"), str(path))
