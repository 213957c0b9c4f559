"""The scalar assumptions of one evaluation, as a frozen pydantic record built from the axis registry.

Every field, its bounds, default, units and meaning come from :data:`engine.axes.AXES`
(roles ``parameter`` and ``choice``), so a new assumption is declared once. Any numeric
assumption may be overridden per sweep (``parameters:``), per point (``--set``) or made
a sweep axis. Categorical assumptions have named integer codes (:class:`PriceMode`,
:class:`CacheTier`) that the kernels read from the parameter vector.

>>> Assumptions().memory_bw_efficiency
0.8
>>> Assumptions(price="spot").code("price") == PriceMode.spot
True
"""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from engine.axes import AXES, CHOICE_PARAMETERS, NUMERIC_PARAMETERS, PARAMETERS

#: Named codes of the categorical assumptions, in the registry's order of choices.
PriceMode = IntEnum("PriceMode", {c: i for i, c in enumerate(AXES["price"].choices)})
CacheTier = IntEnum("CacheTier", {c: i for i, c in enumerate(AXES["cache_tier"].choices)})
CODES: dict[str, type[IntEnum]] = {"price": PriceMode, "cache_tier": CacheTier}
assert set(CODES) == set(CHOICE_PARAMETERS), "every choice parameter needs its code enum"
_CHOICE_CODES = {name: {m.name: int(m) for m in enum} for name, enum in CODES.items()}


class _AssumptionsBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def code(self, name: str) -> int:
        """Integer code of a categorical assumption (as the kernels see it)."""
        return int(CODES[name][getattr(self, name)])

    def as_vector(self) -> list[float]:
        """Kernel layout: the numeric assumptions in registry order, then the choice codes."""
        return [float(getattr(self, n)) for n in NUMERIC_PARAMETERS] + [
            float(_CHOICE_CODES[n][getattr(self, n)]) for n in CHOICE_PARAMETERS
        ]


def _field(name: str):
    a = AXES[name]
    if a.role == "choice":
        return (Literal[a.choices], a.default)  # type: ignore[valid-type]
    bounds = {"gt" if a.low_open else "ge": a.low, "le": a.high}
    return (Annotated[float, Field(allow_inf_nan=False, description=a.long_name, **bounds)], a.default)


Assumptions = create_model(
    "Assumptions",
    __base__=_AssumptionsBase,
    __doc__="The scalar parameters of one evaluation (fields from the axis registry).",
    __module__=__name__,
    **{name: _field(name) for name in PARAMETERS},
)
