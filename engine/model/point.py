"""One configuration of the cost model: the :class:`Point` record.

A point names everything one evaluation needs (model, hardware, lengths, load, bits,
workload mix and assumptions). The compiled path (:func:`engine.model.evaluate.evaluate_point`),
the reference oracle, the comparison and the CLI all take one, so no nine-argument lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from engine.axes import AXES
from engine.model.assumptions import Assumptions
from engine.model.records import Hardware, Model, Workload

#: The published WSE-3 calculator's default view: where `tokensweep point` starts (model,
#: hardware, mix, ISL), where the explorer opens and which slice a figure draws when the cube
#: holds it (else the nearest values). The one place this point is written.
CALCULATOR_POINT = {
    "model": "gpt-oss-120b",
    "hardware": "wse3",
    "workload": "agentic-coding",
    "isl": AXES["isl"].point_default,  # 96.3k, the calculator's median input length
    "concurrency": 250,
    "weight_bits": 4,
    "kv_bits": 16,
}


@dataclass(frozen=True)
class Point:
    """One grid point. ``osl`` defaults to the length derived from the workload mix.

    >>> from engine.model.catalog import load_catalog
    >>> cat = load_catalog()
    >>> p = Point(cat.model("gpt-oss-120b"), cat.get_hardware("wse3"), cat.workload("agentic-coding"), isl=96.3e3)
    >>> p.osl  # 96,300 x 0.0022 / 0.9978 = 212.3, to a whole token
    212.0
    """

    model: Model
    hardware: Hardware
    workload: Workload
    isl: float = AXES["isl"].point_default
    osl: float | None = None
    concurrency: float = AXES["concurrency"].default[0]
    weight_bits: float = AXES["weight_bits"].default[0]
    kv_bits: float = AXES["kv_bits"].default[0]
    assumptions: Assumptions = field(default_factory=Assumptions)

    def __post_init__(self):
        if self.osl is None:
            object.__setattr__(self, "osl", self.workload.output_length(self.isl))

    @property
    def osl_derived(self) -> bool:
        """True when OSL comes from the workload mix rather than being given."""
        return self.osl == self.workload.output_length(self.isl)

    def on(self, hardware: Hardware) -> Point:
        """The same point on other hardware."""
        return replace(self, hardware=hardware)

    def at(self, **changes) -> Point:
        """A copy with some fields changed (OSL re-derived if it was derived and ISL changes)."""
        if "isl" in changes and "osl" not in changes and self.osl_derived:
            changes["osl"] = None
        return replace(self, **changes)
