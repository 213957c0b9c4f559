"""One grid point through the compiled kernels: every variable for one :class:`Point`.

``tokensweep point`` is a thin shell over :func:`evaluate_point`, which runs the same
compiled kernels as a sweep on length-1 axes, so the calculator and the cubes never
disagree. :func:`adhoc_model` builds the dense-attention model the published calculator
takes (every layer full attention).
"""

from __future__ import annotations

import math

import numpy as np

from engine.model.core import evaluate_arrays
from engine.model.point import Point
from engine.model.records import Model
from engine.model.uncertain import Uncertain
from engine.model.variables import TOKEN_TYPE, TOKEN_TYPES, VARIABLES


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


def evaluate_point(point: Point) -> dict[str, float | bool | int | dict]:
    """All cube variables at one point, as plain Python numbers in base units (NaN as None).

    >>> from engine.model.catalog import load_catalog
    >>> cat = load_catalog()
    >>> p = evaluate_point(Point(cat.model("gpt-oss-120b"), cat.get_hardware("wse3"), cat.workload("agentic-coding"),
    ...                          isl=96.3e3, concurrency=250, weight_bits=4, kv_bits=16))
    >>> p["units_needed"]
    22
    """
    arrays = evaluate_arrays(
        [point.model],
        [point.hardware],
        [point.isl],
        [point.osl],
        [point.concurrency],
        [point.weight_bits],
        [point.kv_bits],
        point.workload,
        point.assumptions,
    )
    out: dict = {"isl": float(point.isl), "osl": float(point.osl)}
    for var in VARIABLES:
        if TOKEN_TYPE in var.dims:
            values = arrays.view(var.name, (TOKEN_TYPE,))
            out[var.name] = {t: _plain(v) for t, v in zip(TOKEN_TYPES, values)}
        else:
            out[var.name] = _plain(arrays.at(var.name))
    return out


def evaluate_point_draws(point: Point, uncertain: Uncertain) -> dict[str, np.ndarray]:
    """Every single-valued variable at one point, once per draw of ``uncertain`` (one compiled
    call; arrays of one value per draw, in base units).

    >>> from engine.model.catalog import load_catalog
    >>> cat = load_catalog()
    >>> u = Uncertain.parse({"draws": 8, "distributions": {"wse3.capex_usd": {"uniform": ["1M", "3M"]}}}, "--dist")
    >>> p = Point(cat.model("gpt-oss-120b"), cat.get_hardware("wse3"), cat.workload("agentic-coding"),
    ...           isl=96.3e3, concurrency=250, weight_bits=4, kv_bits=16)
    >>> drawn = evaluate_point_draws(p, u)
    >>> bool(drawn["capex_usd"].min() >= 22 * 1e6 and drawn["capex_usd"].max() <= 22 * 3e6)  # 22 systems
    True
    """
    uncertain.check_against([point.hardware], point.assumptions.price, [], "--dist")
    draws = uncertain.sample()
    arrays = evaluate_arrays(
        [point.model], [point.hardware], [point.isl], [point.osl], [point.concurrency], [point.weight_bits],
        [point.kv_bits], point.workload, point.assumptions, draws=draws,
    )  # fmt: skip
    return {v.name: arrays[v.name].reshape(draws.n) for v in VARIABLES if TOKEN_TYPE not in v.dims}


def _plain(value):
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None  # JSON null: undefined (e.g. a token type absent from the mix)
    return value
