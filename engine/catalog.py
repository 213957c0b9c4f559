"""The catalog: models, hardware and workload mixes as validated, typed records.

The engine ships its own catalog files (``engine/data/*.yaml``, built from the sourced
facts in ``shared/reference``); users add theirs with ``--catalog PATH`` (same schema).
Every entry is checked on load; a bad one fails with one line naming the file, the entry,
the field and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.errors import UserError, did_you_mean
from engine.yamlio import read_yaml

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
PositiveInt = Annotated[int, Field(gt=0)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KVGroup(_Record):
    """Layers sharing one KV layout: ``n_g`` layers, ``e_g`` elements per token per layer,
    an optional sliding window ``W_g`` (tokens) and a compression ratio ``r_g``."""

    layers: Positive
    elements: Positive
    window: Positive | None = None
    ratio: Annotated[float, Field(ge=1, allow_inf_nan=False)] = 1.0


Attention = Literal["gqa", "mla", "mla_with_indexer", "compressed"]


class Model(_Record):
    """A model architecture record (SPEC "Model architecture record")."""

    name: str
    total_params: Positive
    active_params: Positive | None = None
    layers: PositiveInt
    experts: PositiveInt = 1
    experts_per_token: PositiveInt = 1
    shared_experts: Annotated[int, Field(ge=0)] = 0
    hidden_size: PositiveInt
    attention_heads: PositiveInt
    attention: Attention
    kv_heads: PositiveInt | None = None
    head_dim: PositiveInt | None = None
    kv_lora_rank: PositiveInt | None = None
    qk_rope_head_dim: PositiveInt | None = None
    qk_nope_head_dim: PositiveInt | None = None
    v_head_dim: PositiveInt | None = None
    q_lora_rank: PositiveInt | None = None
    index_heads: PositiveInt | None = None
    index_head_dim: PositiveInt | None = None
    index_topk: PositiveInt | None = None
    sliding_window: PositiveInt | None = None
    sliding_window_layers: Annotated[int, Field(ge=0)] = 0
    kv_groups: tuple[KVGroup, ...] = ()
    query_width: Positive | None = None
    interactivity_tps: dict[str, Positive] = Field(default_factory=dict)
    native_weights: str = ""
    max_context: PositiveInt | None = None
    source: tuple[str, ...] = ()
    synthetic: bool = False

    @model_validator(mode="after")
    def _derive(self) -> Model:
        # Derived fields are filled in once here so every consumer sees the same layout.
        values = {}
        if self.active_params is None:
            values["active_params"] = self.total_params
        elif self.active_params > self.total_params:
            raise ValueError(
                f"active_params ({self.active_params:g}) must not exceed total_params ({self.total_params:g})"
            )
        if self.experts_per_token > self.experts:
            raise ValueError(f"experts_per_token ({self.experts_per_token}) must not exceed experts ({self.experts})")
        if not self.kv_groups:
            values["kv_groups"] = self._derive_kv_groups()
        if self.query_width is None:
            values["query_width"] = float(self.attention_heads * self._query_head_dim())
        if self.sliding_window_layers > self.layers:
            raise ValueError(f"sliding_window_layers must be <= layers ({self.layers})")
        for key, value in values.items():
            object.__setattr__(self, key, value)
        return self

    def _require(self, *names: str) -> None:
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise ValueError(f"attention '{self.attention}' needs {', '.join(missing)}")

    def _query_head_dim(self) -> int:
        if self.attention in ("mla", "mla_with_indexer"):
            self._require("qk_nope_head_dim", "qk_rope_head_dim")
            return self.qk_nope_head_dim + self.qk_rope_head_dim
        if self.head_dim is not None:
            return self.head_dim
        return self.hidden_size // self.attention_heads

    def _derive_kv_groups(self) -> tuple[KVGroup, ...]:
        if self.attention == "gqa":
            self._require("kv_heads", "head_dim")
            per_layer = 2 * self.kv_heads * self.head_dim
            groups = []
            full = self.layers - self.sliding_window_layers
            if self.sliding_window_layers:
                self._require("sliding_window")
            if full:
                groups.append(KVGroup(layers=full, elements=per_layer))
            if self.sliding_window_layers:
                groups.append(KVGroup(layers=self.sliding_window_layers, elements=per_layer, window=self.sliding_window))
            return tuple(groups)
        if self.attention == "mla":
            self._require("kv_lora_rank", "qk_rope_head_dim")
            return (KVGroup(layers=self.layers, elements=self.kv_lora_rank + self.qk_rope_head_dim),)
        if self.attention == "mla_with_indexer":
            self._require("kv_lora_rank", "qk_rope_head_dim", "index_head_dim")
            elements = self.kv_lora_rank + self.qk_rope_head_dim + self.index_head_dim
            return (KVGroup(layers=self.layers, elements=elements),)
        raise ValueError("attention 'compressed' needs an explicit kv_groups list")

    @property
    def kv_elements_per_token_full(self) -> float:
        """KV elements one token adds when every group is below its window (no compression limit)."""
        return sum(g.layers * g.elements / g.ratio for g in self.kv_groups)


HardwareKind = Literal["wafer", "gpu", "sram_chip"]
DEFAULT_USABLE_FRACTION = {"wafer": 1.0, "gpu": 0.90, "sram_chip": 1.0}


class Hardware(_Record):
    """One accelerator unit (a WSE-3 system, one GPU, one LPU chip)."""

    name: str
    kind: HardwareKind
    description: str = ""
    memory_gb: Positive
    memory_bw_tbs: Positive
    bf16_tflops: Positive
    fp8_tflops: Positive | None = None
    fp4_tflops: Positive | None = None
    vendor_peak_tflops: Positive | None = None
    usable_memory_fraction: Annotated[float, Field(gt=0, le=1)] | None = None
    power_kw: Positive
    capex_usd: Positive
    scaleup_domain: PositiveInt | None = None
    scaleup_link_gbs_per_dir: Positive | None = None
    usd_per_hour: dict[str, Positive] = Field(default_factory=dict)
    source: tuple[str, ...] = ()

    @field_validator("usd_per_hour")
    @classmethod
    def _known_scenarios(cls, value: dict[str, float]) -> dict[str, float]:
        for key in value:
            if key not in PRICE_SCENARIOS:
                raise ValueError(f"unknown price scenario '{key}' ({did_you_mean(key, PRICE_SCENARIOS)})")
        return value

    @property
    def usable_fraction(self) -> float:
        if self.usable_memory_fraction is not None:
            return self.usable_memory_fraction
        return DEFAULT_USABLE_FRACTION[self.kind]

    def peak_flops(self, nominal_bits: int) -> float:
        """Dense peak FLOP/s of the narrowest format this unit supports that holds the weights."""
        tflops = {4: self.fp4_tflops, 8: self.fp8_tflops, 16: self.bf16_tflops}
        for bits in (4, 8, 16):
            if bits >= nominal_bits and tflops[bits] is not None:
                return tflops[bits] * 1e12
        raise AssertionError("bf16_tflops is required")  # pragma: no cover


PRICE_SCENARIOS = ("on_demand", "spot")


MIN_FRACTION = 1e-9  # smaller non-zero shares are noise and would overflow per-token costs


class Workload(_Record):
    """A turn's token volume split (fractions sum to 1)."""

    name: str
    cache_read: Annotated[float, Field(ge=0, lt=1)]
    cache_write: Annotated[float, Field(ge=0, lt=1)]
    input: Annotated[float, Field(ge=0, lt=1)]
    output: Annotated[float, Field(gt=0, lt=1)]
    note: str = ""

    @model_validator(mode="after")
    def _sums_to_one(self) -> Workload:
        total = self.cache_read + self.cache_write + self.input + self.output
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"cache_read + cache_write + input + output must sum to 1 (got {total:.6g})")
        if self.cache_read + self.cache_write + self.input <= 0:
            raise ValueError("at least one input fraction (cache_read, cache_write, input) must be > 0")
        for name, value in zip(("cache_read", "cache_write", "input"), self.fractions):
            if 0 < value < MIN_FRACTION:
                raise ValueError(f"{name} must be 0 or at least {MIN_FRACTION:g} (got {value:g})")
        return self

    @property
    def fractions(self) -> tuple[float, float, float, float]:
        return (self.cache_read, self.cache_write, self.input, self.output)


_SECTIONS = {"models": Model, "hardware": Hardware, "workloads": Workload}


@dataclass(frozen=True)
class Catalog:
    """All known models, hardware and workloads, plus a fingerprint of their content."""

    models: dict[str, Model]
    hardware: dict[str, Hardware]
    workloads: dict[str, Workload]
    files: tuple[str, ...] = field(default=())

    @property
    def fingerprint(self) -> str:
        payload = {
            section: {name: rec.model_dump(mode="json") for name, rec in sorted(getattr(self, section).items())}
            for section in _SECTIONS
        }
        blob = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def model(self, name: str) -> Model:
        try:
            return self.models[name]
        except KeyError:
            raise UserError(f"model: unknown model '{name}' ({did_you_mean(name, self.models)})") from None

    def unit(self, name: str) -> Hardware:
        try:
            return self.hardware[name]
        except KeyError:
            raise UserError(f"hardware: unknown hardware '{name}' ({did_you_mean(name, self.hardware)})") from None

    def workload(self, name: str) -> Workload:
        try:
            return self.workloads[name]
        except KeyError:
            raise UserError(f"workload: unknown workload '{name}' ({did_you_mean(name, self.workloads)})") from None


def _describe_error(err: ValidationError, record: type[BaseModel]) -> str:
    errors = err.errors()
    # A misspelt key also makes the real one "missing": report the typo first.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = ".".join(str(p) for p in first["loc"]) or "(entry)"
    if first["type"] == "extra_forbidden":
        allowed = [f for f in record.model_fields if f != "name"]
        return f"field '{loc}': unknown field ({did_you_mean(loc, allowed)})"
    msg = first["msg"].removeprefix("Value error, ")
    return f"field '{loc}': {msg}"


def _read_yaml(path: Path, label: str) -> dict:
    data = read_yaml(path, f"catalog {label}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"catalog {label}: top level must be a mapping with keys {', '.join(_SECTIONS)}")
    return data


def _parse_entries(data: dict, label: str, known: dict[str, dict]) -> dict[str, dict[str, object]]:
    """Validate the raw entries of one file; ``known`` holds earlier raw entries for ``inherits``."""
    parsed: dict[str, dict[str, object]] = {s: {} for s in _SECTIONS}
    for section, entries in data.items():
        if section not in _SECTIONS:
            raise UserError(f"catalog {label}: unknown section '{section}' ({did_you_mean(section, _SECTIONS)})")
        if entries is None:
            continue
        if not isinstance(entries, dict):
            raise UserError(f"catalog {label}: section '{section}' must map names to entries")
        kind = section.rstrip("s") if section != "hardware" else "hardware"
        for name, raw in entries.items():
            if not isinstance(raw, dict):
                raise UserError(f"catalog {label}: {kind} '{name}': entry must be a mapping of fields")
            raw = dict(raw)
            parent = raw.pop("inherits", None)
            if parent is not None:
                base = known[section].get(parent)
                if base is None:
                    raise UserError(
                        f"catalog {label}: {kind} '{name}': field 'inherits': "
                        f"unknown entry '{parent}' ({did_you_mean(str(parent), known[section])})"
                    )
                raw = {**base, **raw}
                if section == "models" and "attention" in raw and raw["attention"] != base.get("attention"):
                    raw.pop("kv_groups", None)
            known[section][name] = raw
            try:
                parsed[section][name] = _SECTIONS[section](name=str(name), **raw)
            except ValidationError as err:
                raise UserError(f"catalog {label}: {kind} '{name}': {_describe_error(err, _SECTIONS[section])}") from None
            except TypeError as err:
                raise UserError(f"catalog {label}: {kind} '{name}': {err}") from None
    return parsed


def _builtin_files() -> list[tuple[str, Path]]:
    root = resources.files("engine") / "data"
    return [(f"engine/data/{n}", Path(str(root / n))) for n in ("models.yaml", "hardware.yaml", "workloads.yaml")]


def load_catalog(extra: tuple[str | Path, ...] | list[str | Path] = ()) -> Catalog:
    """Load the built-in catalog plus any user files (later entries override earlier ones).

    >>> cat = load_catalog()
    >>> cat.model("qwen3-32b").kv_groups[0].elements
    2048.0
    """
    return _load(tuple(str(p) for p in extra))


@lru_cache(maxsize=8)
def _load(extra: tuple[str, ...]) -> Catalog:
    known: dict[str, dict] = {s: {} for s in _SECTIONS}
    merged: dict[str, dict] = {s: {} for s in _SECTIONS}
    files = _builtin_files() + [(p, Path(p)) for p in extra]
    for label, path in files:
        parsed = _parse_entries(_read_yaml(path, label), label, known)
        for section in _SECTIONS:
            merged[section].update(parsed[section])
    return Catalog(files=tuple(label for label, _ in files), **merged)
