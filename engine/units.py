"""Human units in, base units out (and back).

The engine stores plain numbers in base units (tokens, parameters, bytes, USD, seconds);
people type `96.3k`, `1M` or `120B`. Decimal multipliers throughout (SPEC "Units").
"""

from __future__ import annotations

import functools
import math
import re

from engine.errors import UserError

_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
_NUMBER = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)\s*([kmbgt]?)\s*$", re.I)


def parse_quantity(text: str | float | int, field: str = "value") -> float:
    """Parse ``96.3k``, ``1M``, ``120B``, ``4T`` or a plain number into a float.

    >>> parse_quantity("96.3k")
    96300.0
    >>> parse_quantity("120B")
    120000000000.0
    """
    if isinstance(text, bool):
        raise UserError(f"{field}: expected a number, got {text!r}")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        match = _NUMBER.match(str(text))
        if not match:
            raise UserError(
                f"{field}: cannot read {text!r} as a number "
                "(allowed: plain numbers or a k/M/B/T suffix, e.g. 96.3k, 1M, 120B)"
            )
        value = float(match.group(1)) * _SUFFIX[match.group(2).lower()]
    if not math.isfinite(value):
        raise UserError(f"{field}: must be a finite number, got {text!r}")
    return value


def parse_bytes(text: str | float | int, field: str = "size") -> float:
    """A byte size: ``50MB``, ``2GB``, ``500kB``, ``1e8`` (decimal multiples; ``B`` optional).

    >>> parse_bytes("50MB")
    50000000.0
    """
    raw = str(text).strip()
    if raw[-1:] in ("B", "b") and raw[-2:-1].lower() not in ("", "e"):  # "50MB", "500 B"; not "1e9"
        raw = raw[:-1]
    value = parse_quantity(raw, field)
    if value <= 0:
        raise UserError(f"{field}: must be above 0, got {text!r}")
    return value


def _scaled(value: float, steps: list[tuple[float, str]], digits: int) -> str:
    for scale, suffix in steps:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g}{suffix}"
    return f"{value:.{digits}g}"


def format_count(value: float, digits: int = 4) -> str:
    """``120e9`` -> ``120B``; tokens and parameters."""
    return _scaled(value, [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")], digits)


def format_bytes(value: float, digits: int = 4) -> str:
    """Decimal bytes: ``1.84e12`` -> ``1.84 TB``."""
    return _scaled(value, [(1e15, " PB"), (1e12, " TB"), (1e9, " GB"), (1e6, " MB"), (1e3, " kB")], digits) + (
        "" if abs(value) >= 1e3 else " B"
    )


def format_usd(value: float) -> str:
    """``42e6`` -> ``$42.0M``; small amounts keep cents or more digits."""
    if abs(value) >= 1e6:
        return f"${value / 1e6:,.3g}M"
    if abs(value) >= 100:
        return f"${value:,.0f}"
    return f"${value:.4g}"


def cf_attrs(units: str, long_name: str) -> dict:
    """CF attributes for a value with tokensweep ``units``: booleans as flags, labels without units.

    >>> cf_attrs("bool", "fits")
    {'long_name': 'fits', 'flag_values': [0, 1], 'flag_meanings': 'false true'}
    >>> cf_attrs("", "model")
    {'long_name': 'model'}
    """
    if units == "bool":
        return {"long_name": long_name, "flag_values": [0, 1], "flag_meanings": "false true"}
    if units.startswith("flags:"):  # an integer code with named meanings (CF flag_values)
        meanings = units.removeprefix("flags:").split()
        return {"long_name": long_name, "flag_values": list(range(len(meanings))), "flag_meanings": " ".join(meanings)}
    if not units:
        return {"long_name": long_name}
    return {"units": units, "long_name": long_name}


def units_of(variable) -> str:
    """The units of a cube variable or coordinate as tokensweep shows them (``bool`` for flags)."""
    attrs = variable.attrs
    if attrs.get("flag_meanings") == "false true":
        return "bool"
    if "flag_meanings" in attrs:
        return "flags:" + str(attrs["flag_meanings"])
    return str(attrs.get("units", ""))


def unit_registry():
    """A pint registry that parses every ``units`` attribute of a cube (tokens, requests, USD, ...).

    The definitions ship as ``engine/data/units.txt``; with pint-xarray:
    ``ds.pint.quantify(unit_registry=unit_registry())``.

    >>> ureg = unit_registry()
    >>> str(ureg.Quantity(0.6, "USD/Mtok").to("USD/token"))
    '6e-07 USD / token'
    """
    return _registry()


def udunits_database(folder, standard=None):
    """Write a UDUNITS-2 database (standard units plus tokensweep's) into ``folder``; returns its path.

    ``standard`` is the standard ``udunits2.xml`` (default: the one cf_units ships). Set
    ``UDUNITS2_XML_PATH`` to the result before importing cf_units, and every ``units``
    attribute of a cube parses there as well as in pint.
    """
    from importlib.resources import files
    from pathlib import Path

    if standard is None:
        import importlib.util

        spec = importlib.util.find_spec("cf_units")
        if spec is None or spec.origin is None:
            raise UserError("udunits: no standard database given and cf_units is not installed")
        standard = Path(spec.origin).parent / "etc" / "share" / "udunits2.xml"
    template = (files("engine") / "data" / "udunits2-tokensweep.xml").read_text()
    target = Path(folder) / "udunits2-tokensweep.xml"
    target.write_text(template.replace("{standard}", str(Path(standard).resolve())))
    return target


@functools.lru_cache(maxsize=1)
def _registry():
    from importlib.resources import files

    import pint

    registry = pint.UnitRegistry(force_ndarray_like=True)  # what pint-xarray needs
    registry.load_definitions(str(files("engine") / "data" / "units.txt"))
    return registry
