"""``tokensweep catalog``: the models, hardware and workload mixes known to the engine."""

from __future__ import annotations

from engine.interfaces.cli.common import add_catalog_option


def add_parser(sub) -> None:
    add_catalog_option(sub.add_parser("catalog", help="list catalog models, hardware and workloads"))


def run(args) -> int:
    from engine.model.catalog import load_catalog
    from engine.units import format_count

    cat = load_catalog(args.catalog)
    print(f"catalog {cat.fingerprint} ({', '.join(cat.files)})")
    print("models:")
    for m in cat.models.values():
        kv = m.kv_elements_per_token_full
        print(
            f"  {m.name:<24} {format_count(m.total_params):>6} params, {format_count(m.active_params):>6} active, "
            f"{m.layers:>3} layers, {m.attention}, {kv:,.0f} KV elements/token (full context)"
        )
    print("hardware:")
    for h in cat.hardware.values():
        rates = ", ".join(f"{k} ${v:g}/h" for k, v in h.usd_per_hour.items()) or "TCO-derived rate"
        print(f"  {h.name:<12} {h.kind:<9} {h.memory_gb:g} GB, {h.memory_bw_tbs:g} TB/s, {rates}")
    print("workloads:")
    for w in cat.workloads.values():
        print(
            f"  {w.name:<20} cache read {w.cache_read:g}, cache write {w.cache_write:g}, input {w.input:g}, output {w.output:g}"
        )
    return 0
