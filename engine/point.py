"""One grid point: every variable for one model on one hardware, and its readable panel.

``tokensweep point`` is a thin shell over :func:`evaluate_point`, which runs the same
compiled kernels as a sweep on length-1 axes, so the calculator and the cubes never
disagree.
"""

from __future__ import annotations

import math

from engine.assumptions import Assumptions
from engine.catalog import Hardware, Model, Workload
from engine.evaluate import evaluate_arrays
from engine.reference import output_length
from engine.units import format_bytes, format_count, format_usd
from engine.variables import TOKEN_TYPES, VARIABLES


def adhoc_model(
    total_params: float,
    layers: int,
    kv_heads: int,
    head_dim: int,
    active_params: float | None = None,
    hidden_size: int | None = None,
    attention_heads: int | None = None,
    name: str = "custom",
) -> Model:
    """A dense-attention model as the published calculator takes it (every layer full attention).

    Hidden size and query heads are not entered there; unless given they default to
    ``kv_heads x head_dim x 8`` and ``8 x kv_heads`` (a GQA ratio of 8), which only
    affect attention FLOPs and tensor-parallel traffic, never memory.
    """
    heads = attention_heads or 8 * kv_heads
    return Model(
        name=name,
        total_params=total_params,
        active_params=active_params,
        layers=layers,
        kv_heads=kv_heads,
        head_dim=head_dim,
        attention_heads=heads,
        hidden_size=hidden_size or heads * head_dim,
        attention="gqa",
        source=("ad hoc",),
    )


def evaluate_point(
    model: Model,
    hardware: Hardware,
    isl: float,
    concurrency: float,
    weight_bits: float,
    kv_bits: float,
    workload: Workload,
    assumptions: Assumptions | None = None,
    osl: float | None = None,
) -> dict[str, float | bool | int | dict]:
    """All cube variables at one point, as plain Python numbers in base units.

    >>> from engine.catalog import load_catalog
    >>> cat = load_catalog()
    >>> p = evaluate_point(cat.model("gpt-oss-120b"), cat.unit("wse3"), 96.3e3, 250, 4, 16,
    ...                    cat.workload("agentic-coding"))
    >>> p["units_needed"]
    22
    """
    assumptions = assumptions or Assumptions()
    if osl is None:
        osl = output_length(isl, workload)
    arrays = evaluate_arrays([model], [hardware], [isl], [osl], [concurrency], [weight_bits], [kv_bits], workload, assumptions)
    out: dict = {"isl": float(isl), "osl": float(osl)}
    for var in VARIABLES:
        value = arrays[var.name].reshape(-1)
        if var.name == "cost_per_mtok_by_type_usd":
            out[var.name] = {t: _plain(v) for t, v in zip(TOKEN_TYPES, value)}
        else:
            out[var.name] = _plain(value[0])
    return out


def _plain(value):
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None  # JSON null: undefined (e.g. a token type absent from the mix)
    return value


def format_panel(model: Model, hardware: Hardware, point: dict, concurrency: float, weight_bits: float, kv_bits: float) -> str:
    """The human panel printed by ``tokensweep point``."""
    unit_word = "systems" if hardware.kind == "wafer" else ("GPUs" if hardware.kind == "gpu" else "chips")
    domain = "no scale-up domain" if hardware.scaleup_domain is None else f"scale-up domain {hardware.scaleup_domain}"
    by_type = point["cost_per_mtok_by_type_usd"]
    lines = [
        f"{model.name} on {hardware.name}: ISL {format_count(point['isl'])} tokens, OSL {point['osl']:.0f} tokens, "
        f"{concurrency:g} concurrent requests, weights {weight_bits:g}-bit, KV {kv_bits:g}-bit",
        "",
        "Memory",
        f"  weights                {format_bytes(point['weight_bytes'])}",
        f"  KV cache               {format_bytes(point['kv_bytes'])}  ({format_bytes(point['kv_bytes_per_request'])} per request)",
        f"  total                  {format_bytes(point['total_bytes'])}",
        f"  KV share               {point['kv_share'] * 100:.1f} %",
        "Fit",
        f"  {unit_word + ' needed':<22} {point['units_needed']}  "
        f"({'fits' if point['fits_domain'] else 'exceeds'} {domain})",
        f"  layers per unit        {point['layers_per_unit']:.3g} layers",
        f"  stranded memory        {point['stranded_fraction'] * 100:.1f} %",
        f"  capex                  {format_usd(point['capex_usd'])}",
        "Throughput",
        f"  interactivity          {point['interactivity_tps']:,.1f} tokens/s per request",
        f"  time to first token    {point['ttft_s']:.4g} s",
        f"  turn time              {point['turn_time_s']:.4g} s",
        f"  cluster throughput     {point['throughput_tps']:,.0f} tokens/s ({point['output_throughput_tps']:,.1f} output tokens/s)",
        "Cost",
        f"  hourly                 {format_usd(point['usd_per_hour'])}/h",
        f"  per Mtok (blended)     {format_usd(point['cost_per_mtok_usd'])}/Mtok",
        f"  per Mtok (output)      {format_usd(point['cost_per_mtok_output_usd'])}/Mtok",
        f"  per turn               {format_usd(point['cost_per_turn_usd'])}",
        "  per Mtok by type       "
        + ", ".join(f"{t} {'n/a' if v is None else format_usd(v)}" for t, v in by_type.items()),
    ]
    return "\n".join(lines)
