"""Text panels: what ``tokensweep point`` prints for one point and for a comparison."""

from __future__ import annotations

from engine.model.point import Point
from engine.model.records import Model
from engine.model.variables import BOUND_BY
from engine.units import format_bytes, format_count, format_usd


def rate(value: float) -> str:
    """A rate with its digits: 1,234.5 or 12.3, and 1.7e-08 rather than a false 0.0."""
    if value != value:  # NaN: not served
        return "n/a"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 0.1:
        return f"{value:,.1f}"
    return f"{value:.3g}"


def osl_note(workload, isl: float, osl: float) -> str:
    """Where the OSL comes from when the workload mix derived it (nothing when it was given)."""
    if abs(osl - workload.output_length(isl)) > 1e-9 * max(1.0, osl):
        return ""
    return f" (from the {workload.name} mix: output is {workload.output:.2%} of tokens; --osl to set it)"


def format_panel(point: Point, values: dict) -> str:
    """The human panel printed by ``tokensweep point``: ``values`` from ``evaluate_point(point)``."""
    model, hardware = point.model, point.hardware
    concurrency, weight_bits, kv_bits = point.concurrency, point.weight_bits, point.kv_bits
    unit_word = hardware.units_word
    if hardware.scaleup_domain is None:
        domain = "no scale-up domain limits it"
    else:
        where = "within" if values["fits_domain"] else "spans more than"
        domain = f"{where} one scale-up domain of {hardware.scaleup_domain}"
    by_type = values["cost_per_mtok_by_type_usd"]
    lines = [
        f"{model.name} on {hardware.name}: ISL {format_count(values['isl'])} tokens, OSL {values['osl']:.0f} tokens"
        f"{osl_note(point.workload, values['isl'], values['osl'])}, {requests(concurrency)}, weights {weight_bits:g}-bit, "
        f"KV {kv_bits:g}-bit",
        "",
        "Memory",
        f"  weights                {format_bytes(values['weight_bytes'])}",
        f"  KV cache               {format_bytes(values['kv_bytes'])}  ({format_bytes(values['kv_bytes_per_request'])} per request)",
        f"  total                  {format_bytes(values['total_bytes'])}",
        f"  KV share               {values['kv_share'] * 100:.1f} %",
        "Fit",
        f"  {unit_word + ' needed':<22} {values['units_needed']} ({point.assumptions.parallelism} layout); "
        f"replica of {values['units_per_replica']} {unit_word.removesuffix('s') if values['units_per_replica'] == 1 else unit_word} ({domain})",
        *(
            [
                f"  requests held          {values['admitted_requests']:,} of {point.concurrency:,.0f} at once: the others wait "
                f"for a KV slot (in the TTFT and the turn)"
            ]
            if values.get("admitted_requests", point.concurrency) < point.concurrency
            else []
        ),
        f"  layers per unit        {values['layers_per_unit']:.3g} layers",
        f"  stranded memory        {values['stranded_fraction'] * 100:.1f} %",
        f"  capex                  {format_usd(values['capex_usd'])}",
        "Throughput (expected serving figures; beside them the roofline: the hardware at peak, any profile)",
        f"  interactivity          {rate(values['interactivity_tps'])} tokens/s per request "
        f"(roofline {rate(values['interactivity_bound_tps'])})",
        f"  time to first token    {values['ttft_s']:.4g} s (roofline {values['ttft_bound_s']:.4g} s)",
        f"  turn time              {values['turn_time_s']:.4g} s",
        f"  cluster throughput     {rate(values['throughput_tps'])} tokens/s ({rate(values['output_throughput_tps'])} output tokens/s)",
        f"  bound by               {bound_by_text(values['bound_by'])}",
        f"  serving                "
        f"{serving_text(point.assumptions, hardware.kind == 'wafer', model.speculative.get(hardware.name))}",
        "Cost",
        f"  hourly                 {format_usd(values['usd_per_hour'])}/h ({price_text(point)}){pool_text(point, values)}",
        f"  per Mtok (blended)     {format_usd(values['cost_per_mtok_usd'])}/Mtok",
        f"  per output Mtok        {format_usd(values['cost_per_mtok_output_usd'])}/Mtok "
        "(the whole turn's cost over its output tokens)",
        f"  per turn               {format_usd(values['cost_per_turn_usd'])}",
        "  by type (each type's share of the time, per Mtok of that type)  "
        + ", ".join(f"{t} {'n/a' if v is None else format_usd(v) + '/Mtok'}" for t, v in by_type.items()),
    ]
    return "\n".join(lines)


def format_intervals(found: dict, note: str) -> str:
    """The prediction-interval block of a point's panel (engine.analysis.uncertainty)."""
    if not found.get("intervals"):
        return f"Uncertainty\n  {note}"
    words = {
        "interactivity_tps": ("interactivity", lambda v: f"{rate(v)} tokens/s"),
        "ttft_s": ("time to first token", lambda v: f"{v:.4g} s"),
        "throughput_tps": ("cluster throughput", lambda v: f"{rate(v)} tokens/s"),
        "cost_per_mtok_usd": ("per Mtok (blended)", lambda v: f"{format_usd(v)}/Mtok"),
        "cost_per_mtok_output_usd": ("per output Mtok", lambda v: f"{format_usd(v)}/Mtok"),
    }
    lines = [f"Uncertainty: {note}"]
    for name, (label, show) in words.items():
        if name in found["intervals"]:
            lo, hi = found["intervals"][name]
            lines.append(f"  {label:<22} {show(lo)} to {show(hi)}")
    return "\n".join(lines)


def format_drawn(drawn: dict) -> str:
    """The drawn-figures block of a point's panel: median and interval over the draws."""
    from engine.model.variables import BY_NAME

    low, _, high = drawn["levels"]
    lines = [f"Drawn: {drawn['description']}", f"  {'figure':<28} {'median':>14}   {low:.0%} to {high:.0%}"]
    for name, (lo, mid, hi) in drawn["quantiles"].items():
        units = BY_NAME[name].units

        def show(v):
            return "missing" if v is None else f"{v:.4g}"

        lines.append(f"  {name:<28} {show(mid):>14}   {show(lo)} to {show(hi)} {units}")
    if not drawn["quantiles"]:
        lines.append("  no figure moves with these draws")
    if drawn.get("served_draws", drawn.get("draws")) != drawn.get("draws"):
        lines.append(f"  a replica serves the point in {drawn['served_draws']:,} of {drawn['draws']:,} draws; "
                     "the figures are over those draws")  # fmt: skip
    return "\n".join(lines)


def price_text(point: Point) -> str:
    """Where the hourly rate comes from: the scenario's rental rate, or TCO where none is listed."""
    from engine.model.pricing import price_source

    a = point.assumptions
    if price_source(point.hardware, a.price) == "rental":
        return f"{a.price} rental rate"
    if a.price == "tco":
        return "TCO rate"
    return f"TCO rate: no {a.price} rate listed for {point.hardware.name}"


def cube_price_note(ds) -> str | None:
    """One line when a cube's price scenario fell back to TCO for some hardware (its coordinates say)."""
    import numpy as np

    from engine.sweep.cube import CubeInfo

    price = CubeInfo.of(ds).assumptions.get("price")
    if "price_source" not in ds.coords or price in (None, "tco"):
        return None
    sources = np.asarray(ds["price_source"].values).reshape(-1)
    names = np.asarray(ds["hardware"].values).reshape(-1)
    from engine.model.pricing import fallback_note

    return fallback_note(price, [str(n) for n, src in zip(names, sources) if str(src) == "tco"])


def requests(n) -> str:
    """``1 concurrent request``, ``250 concurrent requests``."""
    return f"{n:g} concurrent request{'' if n == 1 else 's'}"


def bound_by_text(code) -> str:
    """The resource a ``bound_by`` code names (what sets the turn time)."""
    if code is None or code < 0:
        return "not served"
    return BOUND_BY[int(code)].replace("_", " ")


def serving_text(assumptions, wafer: bool = True, listed=None) -> str:
    """Which serving model produced the figures: the wafer batching mode, speculative decoding,
    the prefill model. ``assumptions``: an Assumptions record or a cube's assumptions mapping;
    ``listed``: the catalog's speculative setting for the point's model and hardware, if known."""
    a = assumptions if isinstance(assumptions, dict) else assumptions.model_dump()
    parts = []
    if wafer:
        parts.append(f"wafer_batching {a.get('wafer_batching', '?')}")
    drafted = a.get("spec_draft_tokens", 0) or 0
    if drafted > 0:
        parts.append(
            f"speculative decoding on every hardware: {drafted:g} drafted tokens, acceptance "
            f"{a.get('spec_acceptance', 0):g}, draft {a.get('spec_draft_ratio', 0):g} of the active parameters"
        )
    elif a.get("speculative") == "catalog":
        if listed is not None:
            parts.append(
                f"speculative decoding as the catalog lists it: {listed.draft_tokens} drafted tokens, acceptance "
                f"{listed.acceptance:g}, draft {listed.draft_ratio:g} of the active parameters"
            )
        else:
            parts.append("speculative decoding where the catalog lists it (speculative: catalog)")
    else:
        parts.append("speculative decoding off")
    parts.append(f"prefill_model {a.get('prefill_model', '?')}")
    if a.get("serving") == "disaggregated":
        unit = a.get("prefill_hardware", "same")
        size = f"{a['prefill_units']:g} units" if a.get("prefill_units") else "the fewest units that hold it"
        pool = f"{a['prefill_replicas']:g}" if a.get("prefill_replicas") else "as many as keep it fed"
        parts.append(
            f"disaggregated: prompts prefilled on {'its own kind of unit' if unit == 'same' else unit} "
            f"(replicas of {size}; {pool} per decode replica), KV sent over"
        )
    return ", ".join(parts)


def pool_text(point: Point, values: dict) -> str:
    """A disaggregated point's bill split: the decode replica's units, the rest the prefill pool's."""
    from engine.model.pricing import unit_usd_per_hour

    total = values.get("usd_per_hour")
    if point.assumptions.serving != "disaggregated" or total is None:
        return ""
    decode = values["units_per_replica"] * unit_usd_per_hour(point.hardware, point.assumptions)
    return f": the decode replica {format_usd(decode)}/h, the prefill pool {format_usd(total - decode)}/h"


def cube_serving_text(ds) -> str:
    """:func:`serving_text` for a cube: its recorded assumptions, and whether it has a wafer."""
    import numpy as np

    from engine.sweep.cube import CubeInfo

    kinds = set(np.asarray(ds["kind"].values).reshape(-1).tolist()) if "kind" in ds.coords else set()
    return serving_text(CubeInfo.of(ds).assumptions, "wafer" in kinds or not kinds)


def format_comparison(model: Model, comparison: dict, workload=None) -> str:
    """Two hardware side by side (``workload``: the mix, to say where a derived OSL comes from)."""
    names = list(comparison["hardware"])
    a, b = (comparison["hardware"][n] for n in names)
    rows = [
        ("units needed", lambda s: f"{s['units_needed']}"),
        ("units per replica", lambda s: f"{s['units_per_replica']}"),
        ("interactivity", lambda s: f"{rate(s['interactivity_tps'])} tok/s"),
        ("time to first token", lambda s: f"{s['ttft_s']:.4g} s"),
        ("cluster throughput", lambda s: f"{rate(s['throughput_tps'])} tok/s"),
        ("hourly cost", lambda s: f"{format_usd(s['usd_per_hour'])}/h"),
        ("cost per Mtok", lambda s: f"{format_usd(s['cost_per_mtok_usd'])}/Mtok"),
        ("cost per output Mtok", lambda s: f"{format_usd(s['cost_per_mtok_output_usd'])}/Mtok"),
    ]
    lines = [
        f"{model.name}: ISL {format_count(comparison['isl'])} tokens, OSL {comparison['osl']:.0f} tokens"
        f"{osl_note(workload, comparison['isl'], comparison['osl']) if workload is not None else ''}, "
        f"{requests(comparison['concurrency'])}, weights {comparison['weight_bits']:g}-bit, "
        f"KV {comparison['kv_bits']:g}-bit",
        "",
        f"  {'':<22} {names[0]:>18} {names[1]:>18}",
    ]
    lines += [f"  {label:<22} {fmt(a):>18} {fmt(b):>18}" for label, fmt in rows]
    lines.append(f"  ({names[1]}: {'the fewest units that hold it' if not comparison.get('other_units') else str(comparison['other_units']) + ' units'}; "
                 "--units sets the first side, --vs-units the second)")  # fmt: skip
    lines.append(f"  cost ratio {names[0]}/{names[1]}: {comparison['cost_ratio']:.3g}")
    lo, hi = comparison["concurrency_searched"]
    lines.append(f"Break-even concurrency (searched {lo} to {hi}, powers of two):")
    for label, value in comparison["break_even_concurrency"].items():
        lines.append(f"  {label:<40} {'never' if value is None else value}")
    lines.append("Break-even price per unit (where this side would cost what the other does, all else equal):")
    for unit, price in comparison.get("break_even_price", {}).items():
        capex = price["capex_usd_per_unit"]
        system = (
            "no system price (power alone costs more)" if capex is None else f"a system price of {format_usd(capex)}"
        )
        lines.append(
            f"  {unit:<12} {format_usd(price['usd_per_hour_per_unit'])}/h per unit, or {system} at TCO"
            + (" (priced here at its rental rate)" if price["price_source"] == "rental" else "")
        )
    return "\n".join(lines)
