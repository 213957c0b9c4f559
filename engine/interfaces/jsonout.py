"""JSON on stdout that is always valid JSON: NaN and infinities become null."""

from __future__ import annotations

import json
import math


def finite(value):
    """``value`` with every non-finite float (NaN, inf) replaced by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalars
        return finite(value.item())
    return value


def dumps(value, **options) -> str:
    """``json.dumps`` refusing NaN/Infinity tokens (strict JSON), non-finite numbers as null."""
    return json.dumps(finite(value), allow_nan=False, **options)
