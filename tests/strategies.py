"""Hypothesis strategies for random models, hardware and grid axes."""

from __future__ import annotations

from hypothesis import strategies as st

from engine.axes import AXES, CHOICE_PARAMETERS, NUMERIC_PARAMETERS
from engine.model.assumptions import Assumptions
from engine.model.records import Hardware, KVGroup, Model, Speculation

finite = {"allow_nan": False, "allow_infinity": False}

kv_groups = st.builds(
    KVGroup,
    layers=st.floats(0.5, 200, **finite),
    elements=st.floats(1, 8192, **finite),
    window=st.one_of(st.none(), st.sampled_from([1.0, 128.0, 1024.0, 4096.0]), st.floats(1, 1e6, **finite)),
    ratio=st.one_of(st.just(1.0), st.sampled_from([4.0, 128.0]), st.floats(1, 256, **finite)),
)


speculations = st.builds(
    Speculation,
    draft_tokens=st.integers(1, 32),
    acceptance=st.floats(0, 0.99, **finite),
    draft_ratio=st.floats(0.001, 1, **finite),
)


@st.composite
def models(draw):
    total = draw(st.floats(1e6, 1e13, **finite))
    active = total * draw(st.floats(0.001, 1.0, **finite))
    experts = draw(st.sampled_from([1, 2, 8, 32, 128, 384]))
    per_token = draw(st.integers(1, experts))
    return Model(
        name="random",
        total_params=total,
        active_params=active if experts > 1 else total,
        layers=draw(st.integers(1, 200)),
        experts=experts,
        experts_per_token=per_token,
        hidden_size=draw(st.integers(64, 32768)),
        attention_heads=draw(st.integers(1, 256)),
        attention="compressed",
        query_width=draw(st.floats(64, 1e5, **finite)),
        decode_query_width=draw(st.one_of(st.none(), st.floats(64, 1e5, **finite))),
        kv_groups=tuple(draw(st.lists(kv_groups, min_size=1, max_size=3))),
        interactivity_tps=draw(st.one_of(st.just({}), st.builds(lambda v: {"wse3": v}, st.floats(10, 5000, **finite)))),
        speculative=draw(
            st.one_of(st.just({}), st.dictionaries(st.sampled_from(["wse3", "random", "b200"]), speculations))
        ),
    )


@st.composite
def hardware(draw, catalog):
    if draw(st.booleans()):
        return catalog.get_hardware(draw(st.sampled_from(sorted(catalog.hardware))))
    kind = draw(st.sampled_from(["wafer", "gpu", "sram_chip"]))
    return Hardware(
        name="wse3" if kind == "wafer" else "random",
        kind=kind,
        memory_gb=draw(st.floats(0.1, 500, **finite)),
        memory_bw_tbs=draw(st.floats(0.5, 30000, **finite)),
        bf16_tflops=draw(st.floats(10, 20000, **finite)),
        fp8_tflops=draw(st.one_of(st.none(), st.floats(10, 40000, **finite))),
        fp4_tflops=draw(st.one_of(st.none(), st.floats(10, 80000, **finite))),
        power_kw=draw(st.floats(0.1, 30, **finite)),
        capex_usd=draw(st.floats(1e3, 5e6, **finite)),
        scaleup_domain=draw(st.one_of(st.none(), st.sampled_from([1, 8, 72]))),
        scaleup_link_gbs_per_dir=draw(st.one_of(st.none(), st.floats(10, 2000, **finite))),
        usd_per_hour=draw(
            st.fixed_dictionaries(
                {}, optional={"on_demand": st.floats(0.1, 100, **finite), "spot": st.floats(0.1, 50, **finite)}
            )
        ),
    )


def axis(values, min_size=1, max_size=3):
    return st.lists(values, min_size=min_size, max_size=max_size)


# Contexts from one token to 1e8, with the window edges of the catalog represented.
contexts = st.one_of(
    st.sampled_from([1.0, 127.0, 128.0, 129.0, 1023.0, 1024.0, 1025.0, 96.3e3, 1e6, 1e8]),
    st.floats(1, 1e8, **finite),
)
concurrencies = st.one_of(st.just(1.0), st.integers(1, 100_000).map(float))
weight_bits = st.one_of(st.sampled_from([4.0, 4.25, 4.5, 4.51, 8.0, 8.5, 8.51, 16.0]), st.floats(1, 32, **finite))
kv_bits = st.one_of(st.sampled_from([4.0, 8.0, 16.0]), st.floats(1, 32, **finite))


def parameter_values(name):
    """Any value the registry accepts for a numeric assumption (usable memory kept where units fit int64)."""
    a = AXES[name]
    if name == "replica_units":
        return st.one_of(st.just(0), st.integers(1, 16), st.integers(1, int(a.high)))
    if name == "usable_memory_fraction":
        return st.one_of(st.just(0.0), st.floats(0.05, 1, **finite))
    if a.integer:
        return st.integers(int(a.low), int(a.high))
    if name in ("scaleout_bw_gbs", "host_cache_bw_gbs"):
        return st.floats(0.1, a.high, **finite)
    return st.floats(a.low, a.high, exclude_min=a.low_open, **finite)


#: Random assumptions over every parameter of the registry, every price mode and cache tier.
assumption_sets = st.builds(
    Assumptions,
    **{name: parameter_values(name) for name in NUMERIC_PARAMETERS},
    **{name: st.sampled_from(AXES[name].choices) for name in CHOICE_PARAMETERS},
)
