"""Catalog records: model architectures, hardware units and workload mixes, validated on creation.

Each record is a frozen pydantic model; derived fields (KV groups from the attention
fields, active parameters of dense models, query width) are filled in once on creation so
every consumer sees the same layout. Named integer codes for hardware kinds
(:class:`HardwareCode`) are what the kernels read.
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.errors import did_you_mean

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
#: The most one unit may cost, outright or per hour (USD): far past any accelerator, and far
#: enough below the float limit that a replica's capex and hourly cost stay finite.
MAX_USD = 1e12
Money = Annotated[float, Field(gt=0, le=MAX_USD, allow_inf_nan=False)]
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


class Speculation(_Record):
    """How a model is served with speculative decoding on one hardware (a draft model or MTP
    heads): tokens drafted per target step, the chance each is accepted, and the draft's size
    as a fraction of the target's active parameters."""

    draft_tokens: Annotated[int, Field(ge=1, le=32)]
    acceptance: Annotated[float, Field(ge=0, le=0.99)]
    draft_ratio: Annotated[float, Field(ge=0.001, le=1)]
    note: str = ""


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
    decode_query_width: Positive | None = None
    interactivity_tps: dict[str, Positive] = Field(default_factory=dict)
    speculative: dict[str, Speculation] = Field(default_factory=dict)  # by hardware name: how it is served
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
        if self.decode_query_width is None:
            values["decode_query_width"] = self._decode_query_width(values.get("query_width", self.query_width))
        if self.sliding_window_layers > self.layers:
            raise ValueError(f"sliding_window_layers must be <= layers ({self.layers})")
        for key, value in values.items():
            object.__setattr__(self, key, value)
        return self

    def _require(self, *names: str) -> None:
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise ValueError(f"attention '{self.attention}' needs {', '.join(missing)}")

    def _decode_query_width(self, query_width: float) -> float:
        """The attention width of a decode step. MLA decodes with the up-projections absorbed
        (attention over the cached latent itself): per head and cached position, scores over
        ``kv_lora_rank + qk_rope_head_dim`` and values over ``kv_lora_rank``, i.e. the width
        ``heads x (2 kv_lora_rank + qk_rope_head_dim) / 2`` in ``4 x width`` FLOPs per position;
        every other attention decodes as it prefills."""
        if self.attention in ("mla", "mla_with_indexer") and self.kv_lora_rank and self.qk_rope_head_dim:
            return float(self.attention_heads * (2 * self.kv_lora_rank + self.qk_rope_head_dim) / 2)
        return float(query_width)

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
                groups.append(
                    KVGroup(layers=self.sliding_window_layers, elements=per_layer, window=self.sliding_window)
                )
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
    def kv_shards(self) -> int:
        """Ways the KV cache splits across tensor-parallel units: the KV heads (GQA); latent
        and compressed caches (MLA, DeepSeek-V4) are one head, replicated on every unit."""
        return self.kv_heads if self.attention == "gqa" and self.kv_heads else 1

    @property
    def kv_elements_per_token_full(self) -> float:
        """KV elements one token adds when every group is below its window (no compression limit)."""
        return sum(g.layers * g.elements / g.ratio for g in self.kv_groups)


HardwareKind = Literal["wafer", "gpu", "sram_chip"]
#: Kernel codes of the hardware kinds.
HardwareCode = IntEnum("HardwareCode", {k: i for i, k in enumerate(get_args(HardwareKind))})
DEFAULT_USABLE_FRACTION = {"wafer": 1.0, "gpu": 0.90, "sram_chip": 1.0}
UNIT_WORDS = {"wafer": "systems", "gpu": "GPUs", "sram_chip": "chips"}


class Hardware(_Record):
    """One accelerator unit (a WSE-3 system, one GPU, one LPU chip)."""

    name: str
    kind: HardwareKind
    display_name: str = ""  # how figures and panels name it ("Cerebras WSE-3"); the id where empty
    unit_word: str = ""  # what one unit is called ("systems", "GPUs"); by kind where empty
    description: str = ""
    memory_gb: Positive
    memory_bw_tbs: Positive
    bf16_tflops: Positive
    fp8_tflops: Positive | None = None
    fp4_tflops: Positive | None = None
    vendor_peak_tflops: Positive | None = None
    usable_memory_fraction: Annotated[float, Field(gt=0, le=1)] | None = None
    power_kw: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)]  # a gigawatt per unit at most
    capex_usd: Money
    scaleup_domain: PositiveInt | None = None
    scaleup_link_gbs_per_dir: Positive | None = None
    usd_per_hour: dict[str, Money] = Field(default_factory=dict)
    source: tuple[str, ...] = ()

    @field_validator("usd_per_hour")
    @classmethod
    def _known_scenarios(cls, value: dict[str, float]) -> dict[str, float]:
        for key in value:
            if key not in PRICE_SCENARIOS:
                raise ValueError(f"unknown price scenario '{key}' ({did_you_mean(key, PRICE_SCENARIOS)})")
        return value

    @property
    def label(self) -> str:
        """The display name, else the catalog id."""
        return self.display_name or self.name

    @property
    def units_word(self) -> str:
        """What several units are called: the record's word, else the kind's."""
        return self.unit_word or UNIT_WORDS[self.kind]

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


class Profile(_Record):
    """A named set of assumption values (a serving-efficiency profile) and where they came from.

    Entry points that resolve user input (``tokensweep point``, sweep specs) start from a
    profile (``--profile NAME``, ``parameters: {profile: NAME}``); explicit values override it.
    """

    name: str
    description: str = ""
    parameters: dict[str, float | str] = Field(default_factory=dict)
    provenance: dict[str, Any] = Field(default_factory=dict)
    #: How sure its figures are (engine.analysis.uncertainty): prediction-interval quantiles of
    #: log(measured / predicted) per calibrated metric, and their cross-validated coverage.
    uncertainty: dict[str, Any] = Field(default_factory=dict)

    @field_validator("parameters")
    @classmethod
    def _known(cls, value: dict[str, float | str]) -> dict[str, float | str]:
        from engine.axes import PARAMETERS
        from engine.model.assumptions import Assumptions

        for key in value:
            if key not in PARAMETERS:
                raise ValueError(f"unknown assumption '{key}' ({did_you_mean(key, PARAMETERS)})")
        Assumptions(**value)  # every value within the registry's bounds
        return value


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

    def output_length(self, isl: float) -> float:
        """OSL derived from the mix: ``OSL = ISL x f_out / (1 - f_out)``, to the nearest whole
        token and at least one (a turn emits whole tokens).

        >>> w = Workload(name="w", cache_read=0.5, cache_write=0, input=0.25, output=0.25)
        >>> w.output_length(300), w.output_length(10)
        (100.0, 3.0)
        """
        return float(max(1.0, round(isl * self.output / (1.0 - self.output))))
