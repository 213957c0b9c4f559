"""Synthetic models: a catalog preset scaled to another total size at constant aspect ratio.

The phase diagram needs a continuous model-size axis; a synthetic model of size P copies
a reference preset with s = P / P_ref: layers ``max(1, round(L_ref x s^a))``, every KV
group keeping its share of the layers, per-layer KV width, hidden size and query width
scaled by ``s^b``; the active fraction, experts and windows are kept.
"""

from __future__ import annotations

from engine.model.records import KVGroup, Model
from engine.units import format_count

DEFAULT_EXPONENT = 1.0 / 3.0


def synthetic_model(
    reference: Model,
    total_params: float,
    layer_exponent: float = DEFAULT_EXPONENT,
    width_exponent: float = DEFAULT_EXPONENT,
) -> Model:
    """A copy of ``reference`` scaled to ``total_params`` (so KV per token scales as s^(a+b)).

    >>> from engine.model.catalog import load_catalog
    >>> big = synthetic_model(load_catalog().model("deepseek-v3"), 8 * 671e9)
    >>> big.layers, big.name
    (122, 'deepseek-v3@5.368T')
    """
    scale = total_params / reference.total_params
    layers = max(1, round(reference.layers * scale**layer_exponent))
    layer_ratio = layers / reference.layers
    width = scale**width_exponent
    groups = tuple(
        KVGroup(layers=g.layers * layer_ratio, elements=g.elements * width, window=g.window, ratio=g.ratio)
        for g in reference.kv_groups
    )
    return reference.model_copy(
        update={
            "name": f"{reference.name}@{format_count(total_params)}",
            "total_params": total_params,
            "active_params": reference.active_params * scale,
            "layers": layers,
            "hidden_size": max(1, round(reference.hidden_size * width)),
            "query_width": reference.query_width * width,
            "decode_query_width": reference.decode_query_width * width,
            "kv_groups": groups,
            "interactivity_tps": {},
            "speculative": {},
            "sliding_window_layers": 0,
            "synthetic": True,
        }
    )
