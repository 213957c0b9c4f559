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
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from engine.axes import AXES, CHOICE_PARAMETERS, NUMERIC_PARAMETERS, PARAMETERS
from engine.errors import UserError, describe_validation_error, did_you_mean
from engine.model.variables import SERVING_EFFICIENCY

#: Named codes of the categorical assumptions, in the registry's order of choices.
CODES: dict[str, type[IntEnum]] = {
    name: IntEnum("".join(w.title() for w in name.split("_")), {c: i for i, c in enumerate(AXES[name].choices)})
    for name in CHOICE_PARAMETERS
}
PriceMode, CacheTier, Parallelism, ContextLimit, PrefillModel, Speculative, Serving, PrefillHardware, WaferBatching = (
    CODES[n]
    for n in (
        "price", "cache_tier", "parallelism", "context_limit", "prefill_model", "speculative", "serving",
        "prefill_hardware", "wafer_batching",
    )
)  # fmt: skip
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
    kind = int if a.integer else float
    return (Annotated[kind, Field(allow_inf_nan=False, description=a.long_name, **bounds)], kind(a.default))


Assumptions = create_model(
    "Assumptions",
    __base__=_AssumptionsBase,
    __doc__="The scalar parameters of one evaluation (fields from the axis registry).",
    __module__=__name__,
    **{name: _field(name) for name in PARAMETERS},
)


def parse_assumptions(values: dict[str, Any], prefix: str) -> Assumptions:
    """Assumptions from human values (``50k``, ``spot``), errors as one line under ``prefix``.

    >>> parse_assumptions({"mfu_decode": "0.4", "price": "spot"}, "--set ").price
    'spot'
    """
    parsed = {}
    for key, value in values.items():
        if key not in PARAMETERS:
            where = prefix.strip().rstrip(".")
            raise UserError(f"{where}: unknown assumption '{key}' ({did_you_mean(key, PARAMETERS)})")
        axis = AXES[key]
        if axis.role == "choice":
            if str(value) not in axis.choices:
                raise UserError(f"{prefix}{key}: unknown value '{value}' ({did_you_mean(str(value), axis.choices)})")
            parsed[key] = str(value)
        else:
            parsed[key] = axis.parse(value, f"{prefix}{key}")
    try:
        return Assumptions(**parsed)
    except ValidationError as err:
        raise UserError(describe_validation_error(err, prefix=prefix)) from None


#: The roofline's values of the serving efficiencies: every efficiency at 1, every overhead,
#: latency and scheduler hold at its registry floor (0 s; a hold of 1 x the modelled TTFT)
#: (:data:`engine.model.variables.SERVING_EFFICIENCY`). The bound variables are the turn at
#: these values whatever the profile; ``at_peak`` gives the assumptions that reproduce them.
AT_PEAK: dict[str, float] = {
    name: (1.0 if name in ("memory_bw_efficiency", "mfu_decode", "mfu_prefill") else float(AXES[name].low))
    for name in sorted(SERVING_EFFICIENCY)
}


def at_peak(assumptions: Assumptions) -> Assumptions:
    """The same assumptions with every serving efficiency at its physical limit (:data:`AT_PEAK`).

    >>> at_peak(Assumptions(mfu_decode=0.3)).mfu_decode
    1.0
    """
    return assumptions.model_copy(update=AT_PEAK)
